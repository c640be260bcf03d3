"""Shared by the ingest assets: turn a source's refusal into a clear Dagster failure, not a traceback."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import polars as pl


def load_or_fail(table: str, load: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Call a source loader; a bad or missing input file fails the step with the loader's message."""
    try:
        return load()
    except (ValueError, FileNotFoundError) as error:
        raise dg.Failure(description=f"{table} could not be loaded: {error}") from None
