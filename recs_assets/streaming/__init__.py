"""Live events through a broker: the API publishes them, the warehouse consumer lands them as Parquet.

`broker` (the interface, the record's fields, `live_event_records` for rebuilding sessions),
`redis_streams` (Redis Streams with a consumer group: the implementation), `embedded` (a loopback
redis-server started and stopped by `make serve` and the tests) and `landing` (read, write Parquet,
acknowledge; the landed rows as a raw table). Pure: no Dagster, no serving, no models.
"""
