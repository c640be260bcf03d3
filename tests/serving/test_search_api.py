"""GET /search over a home folder the search assets would have written: ranking, fallbacks, bad input, logging."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from recs_assets.layout import HomeLayout
from recs_assets.models.storage import save_model_folder
from recs_assets.search.engine import SearchEngine, popular_query_results
from recs_assets.search.ranker import build_lessons, examination_propensities, fit_search_ranker
from recs_assets.serving.api import create_app
from recs_assets.serving.request_log import read_request_log
from recs_assets.settings import Settings
from tests.search.planted import planted_featurizer, planted_items, planted_tables


@pytest.fixture(scope="module")
def tables():
    catalogue, signals, impressions = planted_tables()
    featurizer, _ = planted_featurizer()
    ranker = fit_search_ranker(build_lessons(impressions, featurizer), examination_propensities(impressions))
    popular = popular_query_results(SearchEngine(featurizer, ranker), pl.DataFrame({"query": ["jacket"], "searches": [5]}), n=10)
    return catalogue, signals, ranker, popular.with_columns(pl.lit("search_ranker_model").alias("model"),
                                                            pl.lit(4, dtype=pl.Int64).alias("model_version"))


def home_with_search(root: Path, tables, *, inactive: tuple[str, ...] = ()) -> HomeLayout:
    layout = HomeLayout(root)
    layout.lake.mkdir(parents=True)
    catalogue, signals, ranker, popular = tables
    catalogue.write_parquet(layout.lake / "search_catalogue.parquet")
    signals.write_parquet(layout.lake / "search_user_signals.parquet")
    popular.write_parquet(layout.lake / "popular_query_results.parquet")
    save_model_folder(ranker, layout.model_dir("search_ranker_model"))
    planted_items().with_columns(
        pl.when(pl.col("item_id").is_in(list(inactive))).then(False).otherwise(pl.col("is_active")).alias("is_active")
    ).write_parquet(layout.lake / "items.parquet")
    return layout


def client_for(layout: HomeLayout) -> TestClient:
    return TestClient(create_app(Settings(home=layout.root, api_reload_interval=30, api_log_flush_interval=30)))


def test_search_ranks_for_the_shopper_and_reports_the_version(tmp_path, tables):
    layout = home_with_search(tmp_path / "home", tables)
    with client_for(layout) as client:
        a = client.get("/search", params={"q": "jackets", "user_id": "a01", "n": 5}).json()
        b = client.get("/search", params={"q": "jackets", "user_id": "b01", "n": 5}).json()
        anonymous = client.get("/search", params={"q": "jacket", "n": 5}).json()
        nobody = client.get("/search", params={"q": "jackets", "user_id": "never-seen", "n": 12}).json()
    assert a["ranking"] == "personalised" and a["model"] == "search_ranker_model" and a["model_version"] == 4
    assert [item["rank"] for item in a["items"]] == [1, 2, 3, 4, 5]
    assert all(item["item_id"].startswith("i0") for item in a["items"])  # segment A's brand first
    assert not any(item["item_id"].startswith("i0") for item in b["items"])
    assert a["items"][0]["score"] >= a["items"][-1]["score"] and "category" in a["items"][0]["matched"]
    assert anonymous["ranking"] == "ranked" and anonymous["source"] == "precomputed" and "without personal" in anonymous["reason"]
    assert nobody["ranking"] == "ranked" and nobody["source"] == "live" and len(nobody["items"]) == 12
    assert all(item["item_id"] != "sold1" for r in (a, b, anonymous, nobody) for item in r["items"])


def test_a_listing_sold_since_the_catalogue_never_comes_back(tmp_path, tables):
    _, _, _, popular = tables
    sold = popular["item_id"][0]
    layout = home_with_search(tmp_path / "home", tables, inactive=(sold,))
    with client_for(layout) as client:
        bodies = [client.get("/search", params={"q": "jacket", "n": n}).json() for n in (5, 10, 40)]
        personal = client.get("/search", params={"q": "jacket", "user_id": "a02", "n": 40}).json()
    for body in (*bodies, personal):
        assert sold not in [item["item_id"] for item in body["items"]]
    assert len(bodies[-1]["items"]) == 39  # 40 sellable jackets less the one sold since


@pytest.mark.parametrize(("params", "message"), [
    ({"q": ""}, "at least one letter or digit"),
    ({"q": "   "}, "at least one letter or digit"),
    ({"q": "?!"}, "at least one letter or digit"),
    ({}, "Field required"),
    ({"q": "jacket", "n": 0}, "greater than or equal to 1"),
    ({"q": "jacket", "n": 101}, "less than or equal to 100"),
    ({"q": "x" * 201}, "at most 200 characters"),
])
def test_bad_input_gets_a_422_that_says_what_is_wrong(tmp_path, tables, params, message):
    layout = home_with_search(tmp_path / "home", tables)
    with client_for(layout) as client:
        response = client.get("/search", params=params)
    assert response.status_code == 422 and message in response.text


def test_search_before_the_catalogue_exists_is_a_503_and_every_status_is_documented(tmp_path):
    layout = HomeLayout(tmp_path / "empty")
    layout.lake.mkdir(parents=True)
    with client_for(layout) as client:
        response = client.get("/search", params={"q": "jacket"})
        spec = client.get("/openapi.json").json()
    assert response.status_code == 503 and "not built yet" in response.json()["detail"]
    assert {"200", "422", "503"} <= set(spec["paths"]["/search"]["get"]["responses"])


def test_search_requests_are_logged_with_the_version_and_the_ranking(tmp_path, tables):
    layout = home_with_search(tmp_path / "home", tables)
    with client_for(layout) as client:
        client.get("/search", params={"q": "jackets", "user_id": "a01"})
        client.get("/search", params={"q": ""})
    records = [r for r in read_request_log(layout.request_log).records if r.path == "/search"]
    assert [(r.status, r.model_version, r.source) for r in records] == [(200, 4, "search:personalised"), (422, 4, None)]
    assert all(r.latency_ms >= 0 for r in records)
