"""Monitoring: feature drift, prediction drift and serving health (pure functions in `drift`, Dagster checks in `checks`)."""
