"""Shared fixtures: every test writes into its own temporary home, never into the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The real datasets (never copied into the project): RECS_DATASETS_DIR, else ../shared/datasets."""
    override = os.environ.get("RECS_DATASETS_DIR")
    return Path(override) if override else CHECKOUT.parent / "shared" / "datasets"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RECS_HOME (and Dagster home inside it) for one test."""
    home = tmp_path / "recs_home"
    monkeypatch.setenv("RECS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True)
    return home


@pytest.fixture(autouse=True)
def nothing_written_into_the_checkout():
    """Fail the test that leaves MLflow's default `./mlruns` in the checkout or the working directory."""
    places = {CHECKOUT / "mlruns", Path.cwd() / "mlruns"}
    before = {p for p in places if p.exists()}
    yield
    appeared = sorted(str(p) for p in places if p.exists() and p not in before)
    assert not appeared, f"this test wrote {appeared}: MLflow was used before the home's experiment was set up"
