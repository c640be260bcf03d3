"""Serving: what the shop shows each shopper, computed ahead of time and served from memory.

`snapshots` builds the lists (pure); the API reads them: `store` (snapshots in memory), `sessions`
(live shopper state), `rerank` (the list a shopper gets), `events` (posted events, stored durably),
`request_log` (one line per request, read back by monitoring), `middleware`, and `api` (the app).
"""
