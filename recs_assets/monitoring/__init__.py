"""Monitoring: do users behave differently lately, do we recommend differently, is the API healthy?

Pure functions (no Dagster), each returning a `result.MonitorResult` (passed, failed, or skipped with the
reason there was nothing to compare): `window_features` (per-user features per time window, from the
feature store's SQL), `drift` (feature drift with Evidently, prediction drift between snapshots) and
`health` (serving latency and errors from the request log). The Dagster checks call them.
"""
