"""The `search` group: query retrieval and a personalised search ranker, learnt from logged search sessions.

    search_catalogue, search_user_signals            what the API searches and knows about shoppers (today)
    search_training_set -> search_ranker_model       lessons from searches after the split's cut-off -> LightGBM
                        -> search_evaluation         BM25 / BM25 + popularity / personalised on held-out searches
    popular_query_results                            the most frequent queries' results, precomputed
    checks: zero_result_rate_check (catalogue), query_distribution_check (query log)

A source without search sessions (MovieLens, Steam, most folders of files) still gets a searchable
catalogue; the learnt parts materialise as "not applicable: <reason>" and the run goes on.
"""

import dagster as dg
import polars as pl

from recs_assets.contract import LIST_N, METRIC_K
from recs_assets.defs.common import preview
from recs_assets.profiling import markdown_table
from recs_assets.search.checks import query_counts, query_distribution, zero_result_rate
from recs_assets.search.bm25 import BM25Index
from recs_assets.search.engine import SearchEngine, popular_query_results as build_popular_results
from recs_assets.search.evaluation import evaluate_searches
from recs_assets.search.features import SearchFeaturizer, search_catalogue as build_catalogue, user_signals
from recs_assets.search.pipeline import HELD_OUT, TRAIN, NotApplicable, search_lessons
from recs_assets.search.ranker import examination_propensities, fit_search_ranker
from recs_assets.search.sessions import search_queries
from recs_assets.defs.models import graded_version_tags
from recs_assets.tracking import log_ranker_run
from recs_assets.training.splits import split_from_frame
from resources.marketplace_source import MarketplaceSource

GROUP = "search"
SEARCH_RANKER_ASSET = "search_ranker_model"
RECOMMENDER_ASSET = "ease_model"  # the user-item affinity the search ranker reads


def _not_applicable(reason: str) -> dict:
    return {"note": dg.MetadataValue.text(f"not applicable: {reason}"), "applicable": dg.MetadataValue.bool(False)}


@dg.asset(group_name=GROUP, kinds={"parquet", "duckdb"})
def search_catalogue(items: pl.DataFrame, item_features: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Everything a shopper can search: each item's title, category, brand and condition, its demand, and whether it is for sale.

    The API builds its BM25 index from this table; a sold one-of-a-kind listing is kept (its past
    searches are still graded) but marked not sellable, so no search ever returns it.
    """
    catalogue = build_catalogue(items, item_features)
    fields = [c for c in ("title", "category", "brand", "condition") if catalogue[c].is_not_null().any()]
    return dg.Output(catalogue, metadata={
        "rows": dg.MetadataValue.int(catalogue.height),
        "sellable": dg.MetadataValue.int(int(catalogue["is_sellable"].sum())),
        "searchable_fields": dg.MetadataValue.json(fields),
        "preview": preview(catalogue),
    })


@dg.asset(group_name=GROUP, ins={"recommender": dg.AssetIn(RECOMMENDER_ASSET)}, kinds={"parquet", "duckdb"})
def search_user_signals(
    user_item_interactions: pl.DataFrame,
    items: pl.DataFrame,
    user_features: pl.DataFrame,
    user_category_affinity: pl.DataFrame,
    recommender,
) -> dg.Output[pl.DataFrame]:
    """What search knows about each shopper today: favourite categories and brands, usual price level, and the items EASE expects them to like."""
    signals = user_signals(user_item_interactions, items, user_features, user_category_affinity, recommender)
    return dg.Output(signals, metadata={
        "rows": dg.MetadataValue.int(signals.height),
        "users": dg.MetadataValue.int(signals["user_id"].n_unique()),
        "rows_by_signal": dg.MetadataValue.json(dict(signals.group_by("signal").len().sort("signal").iter_rows())),
    })


class SearchSetConfig(dg.Config):
    """The last `holdout_fraction` of the searches after the cut-off (by time) is held out for grading;
    `affinity_items` is how many of EASE's top items per shopper count as their user-item affinity."""

    holdout_fraction: float = 0.4
    affinity_items: int = 50


@dg.asset(group_name=GROUP, ins={"recommender": dg.AssetIn(RECOMMENDER_ASSET)}, kinds={"parquet", "duckdb"})
def search_training_set(
    config: SearchSetConfig,
    events: pl.DataFrame,
    items: pl.DataFrame,
    train_test_split: pl.DataFrame,
    training_interactions: pl.DataFrame,
    training_user_features: pl.DataFrame,
    training_item_features: pl.DataFrame,
    training_user_category_affinity: pl.DataFrame,
    recommender,
) -> dg.Output[pl.DataFrame]:
    """Every logged search after the cut-off, item by item: what it showed, in which slot, what the shopper did, and the ranker's features.

    Labels: purchase 3 > add to cart 2 > view 1 > shown only 0. Features are measured at the split's
    cut-off, so no lesson sees its own outcome; the latest searches (`part` = held_out) are kept for grading.
    """
    split = split_from_frame(train_test_split)
    known = {"interactions": training_interactions, "user_features": training_user_features,
             "item_features": training_item_features, "user_category_affinity": training_user_category_affinity}
    try:
        lessons, described = search_lessons(events, items, split.cutoff, known, recommender,
                                            holdout_fraction=config.holdout_fraction, n_affinity=config.affinity_items)
    except NotApplicable as reason:
        return dg.Output(pl.DataFrame(schema={"search_id": pl.String, "item_id": pl.String, "label": pl.Int32, "part": pl.String}),
                         metadata=_not_applicable(str(reason)))
    return dg.Output(lessons, metadata={
        "rows": dg.MetadataValue.int(lessons.height),
        **{k: dg.MetadataValue.int(v) if isinstance(v, int) else dg.MetadataValue.json(v) if isinstance(v, dict)
           else dg.MetadataValue.text(str(v)) for k, v in described.items()},
        "preview": preview(lessons.select("search_id", "user_id", "query", "item_id", "position", "label", "bm25", "part")),
    })


class SearchRankerConfig(dg.Config):
    """LightGBM's settings (None = the ranker's default) and the position-bias correction: `ipw` weights
    engaged rows by 1 / examination propensity of their slot; `none` learns from the raw outcome."""

    position_correction: str = "ipw"
    n_estimators: int | None = None
    learning_rate: float | None = None
    num_leaves: int | None = None
    min_child_samples: int | None = None
    seed: int | None = None


@dg.asset(group_name=GROUP, io_manager_key="model_io_manager", required_resource_keys={"mlflow"}, kinds={"lightgbm", "mlflow"})
def search_ranker_model(context: dg.AssetExecutionContext, config: SearchRankerConfig, search_training_set: pl.DataFrame):
    """Orders search results for the shopper who asked (LightGBM LambdaRank), learnt from what shoppers did with past results.

    Reads the query match, the item's demand and price, and the shopper's tastes and price level; a
    shopper without history gets the same model without the personal features.
    """
    if config.position_correction not in ("ipw", "none"):
        raise dg.Failure(description=f"position_correction must be 'ipw' or 'none'; got {config.position_correction!r}")
    train = search_training_set.filter(pl.col("part") == TRAIN) if "part" in search_training_set.columns else search_training_set
    if train.height == 0 or int((train["label"] > 0).sum()) == 0:
        reason = "no search lessons" if train.height == 0 else "no shopper engaged with a search result in the lessons"
        return dg.Output(None, metadata={"trained": dg.MetadataValue.bool(False), **_not_applicable(reason)})
    settings = {k: v for k, v in config.model_dump().items() if v is not None and k != "position_correction"}
    propensities = examination_propensities(train) if config.position_correction == "ipw" else {}
    ranker = fit_search_ranker(train, propensities, **settings)
    run_id, version = log_ranker_run(
        context.resources.mlflow, SEARCH_RANKER_ASSET, ranker, {"fit_seconds": ranker.fit_seconds},
        {"position_correction": config.position_correction, "lessons": train.height},
        version_tags=graded_version_tags(context),
    )
    return dg.Output(ranker, metadata={
        "fit_seconds": dg.MetadataValue.float(float(ranker.fit_seconds or 0.0)),
        "params": dg.MetadataValue.json(ranker.params()),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "model_version": dg.MetadataValue.int(version),
        "trained": dg.MetadataValue.bool(True),
        "position_correction": dg.MetadataValue.text(config.position_correction),
        "examination_propensity_by_slot": dg.MetadataValue.json({str(k): round(v, 4) for k, v in propensities.items()}),
        "feature_importance": dg.MetadataValue.json(dict(list(ranker.importance().items())[:12])),
    })


class SearchEvaluationConfig(dg.Config):
    """The metric cut-off k, the popularity weight of the BM25 + popularity baseline, and the seeded bootstrap."""

    k: int = METRIC_K
    popularity_weight: float = 0.5
    bootstrap_seed: int = 42
    n_resamples: int = 500


def _true_affinity(source: MarketplaceSource):
    """The simulator's hidden truth (P(purchase | view)) for lesson rows, or None for real data."""
    if source.kind != "simulator":
        return None
    shop = source.simulation()

    def affinity(rows: pl.DataFrame):
        import numpy as np

        day = shop.day_of(rows["searched_at"]).clip(0, shop.config.n_days - 1).to_numpy()
        out = np.empty(rows.height)
        for d in np.unique(day):
            at = np.flatnonzero(day == d)
            out[at] = shop.true_affinity(rows["user_id"].gather(at).to_list(), rows["item_id"].gather(at).to_list(), int(d))
        return out

    return affinity


@dg.asset(group_name=GROUP, ins={"search_ranker_model": dg.AssetIn(SEARCH_RANKER_ASSET)}, kinds={"parquet", "duckdb"})
def search_evaluation(
    config: SearchEvaluationConfig,
    source: MarketplaceSource,
    search_training_set: pl.DataFrame,
    training_interactions: pl.DataFrame,
    search_ranker_model,
) -> dg.Output[pl.DataFrame]:
    """How much better is personalised search? NDCG@10 and MRR on held-out searches for BM25, BM25 + popularity and the search ranker, with 95% intervals, per shopper segment.

    Graded against what shoppers did with the results they were shown; on the simulator also against
    the simulated shoppers' true purchase chances (`simulated_ndcg@10`).
    """
    held = search_training_set.filter(pl.col("part") == HELD_OUT) if "part" in search_training_set.columns else search_training_set
    if held.height == 0:
        return dg.Output(pl.DataFrame(schema={"ranker": pl.String, "segment": pl.String, "metric": pl.String, "mean": pl.Float64}),
                         metadata=_not_applicable("no held-out searches to grade (see search_training_set)"))
    table, per_search = evaluate_searches(
        held, search_ranker_model, training_interactions["user_id"].unique().to_list(),
        true_affinity=_true_affinity(source), k=config.k, popularity_weight=config.popularity_weight,
        seed=config.bootstrap_seed, n_resamples=config.n_resamples,
    )
    headline = table.filter((pl.col("segment") == "all") & (pl.col("metric") == f"ndcg@{config.k}"))
    summary = table.with_columns(pl.format("{} [{}, {}]", pl.col("mean").round(4), pl.col("ci_low").round(4),
                                           pl.col("ci_high").round(4)).alias("value")).select("segment", "ranker", "metric", "value", "searches", "p_vs_bm25")
    return dg.Output(table, metadata={
        "rows": dg.MetadataValue.int(table.height),
        "searches_graded": dg.MetadataValue.int(per_search["search_id"].n_unique()),
        **{f"ndcg@{config.k} {r}": dg.MetadataValue.float(float(m)) for r, m in headline.select("ranker", "mean").iter_rows()},
        "results": dg.MetadataValue.md(markdown_table(summary, rows=summary.height, width=60)),
    })


class PopularQueriesConfig(dg.Config):
    """How many of the most frequent queries get precomputed results, and how many results each."""

    top_queries: int = 100
    n: int = LIST_N


@dg.asset(group_name=GROUP, ins={"search_ranker_model": dg.AssetIn(SEARCH_RANKER_ASSET)}, kinds={"parquet", "duckdb"})
def popular_query_results(
    context: dg.AssetExecutionContext,
    config: PopularQueriesConfig,
    events: pl.DataFrame,
    search_catalogue: pl.DataFrame,
    search_user_signals: pl.DataFrame,
    search_ranker_model,
) -> dg.Output[pl.DataFrame]:
    """The results of the most frequent queries, ready to serve (not personalised), versioned by the search ranker's registered version."""
    counts = query_counts(search_queries(events))
    if counts.height == 0:
        return dg.Output(pl.DataFrame(schema={"query": pl.String, "rank": pl.Int32, "item_id": pl.String}),
                         metadata=_not_applicable("the source logged no search queries"))
    engine = SearchEngine(SearchFeaturizer(search_catalogue, search_user_signals), search_ranker_model)
    results = build_popular_results(engine, counts, n=config.n, top_queries=config.top_queries)
    version = None
    if search_ranker_model is not None:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(SEARCH_RANKER_ASSET))
        meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
        version = meta["model_version"].value if "model_version" in meta else None
    results = results.with_columns(pl.lit(SEARCH_RANKER_ASSET if version is not None else None, dtype=pl.String).alias("model"),
                                   pl.lit(version, dtype=pl.Int64).alias("model_version"))
    return dg.Output(results, metadata={
        "rows": dg.MetadataValue.int(results.height),
        "queries": dg.MetadataValue.int(results["query"].n_unique()),
        "model_version": dg.MetadataValue.text(str(version)),
        "preview": dg.MetadataValue.md(markdown_table(results, rows=10)),
    })


def _emit(context, outcome):
    """The check's result, or nothing (SKIPPED in the UI) with the reason logged."""
    if outcome.passed is None:
        context.log.warning(f"skipped: {outcome.description}")
        return
    yield dg.AssetCheckResult(
        passed=outcome.passed, severity=dg.AssetCheckSeverity.WARN, description=outcome.description,
        metadata={k: (dg.MetadataValue.float(float(v)) if isinstance(v, float) else dg.MetadataValue.int(v) if isinstance(v, int)
                      else dg.MetadataValue.text(str(v))) for k, v in outcome.values.items()},
    )


class ZeroResultConfig(dg.Config):
    """Warn when more than `max_rate` of the last `window_days` of searches find no sellable item."""

    max_rate: float = 0.05
    window_days: float = 7.0


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("zero_result_rate_check", asset="search_catalogue", additional_deps=["events"], blocking=False,
                             description="Share of recent searches the current catalogue answers with nothing for sale.")],
    ins={"search_catalogue": dg.AssetIn("search_catalogue"), "events": dg.AssetIn("events")},
    can_subset=True,
)
def zero_result_rate_check(context, config: ZeroResultConfig, search_catalogue: pl.DataFrame, events: pl.DataFrame):
    outcome = zero_result_rate(search_queries(events), BM25Index.from_catalogue(search_catalogue),
                               window_days=config.window_days, max_rate=config.max_rate)
    yield from _emit(context, outcome)


class QueryDistributionConfig(dg.Config):
    """Warn when the query mix of the last `window_days` moved from the span before by more than `max_tvd`."""

    window_days: float = 7.0
    max_tvd: float = 0.3
    min_searches: int = 50


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("query_distribution_check", asset="popular_query_results", additional_deps=["events"], blocking=False,
                             description="Is the mix of what shoppers search for shifting? Latest week against the week before.")],
    ins={"events": dg.AssetIn("events")},
    can_subset=True,
)
def query_distribution_check(context, config: QueryDistributionConfig, events: pl.DataFrame):
    outcome = query_distribution(search_queries(events), window_days=config.window_days, max_tvd=config.max_tvd,
                                 min_searches=config.min_searches)
    yield from _emit(context, outcome)


SEARCH_ASSETS = [search_catalogue, search_user_signals, search_training_set, search_ranker_model, search_evaluation,
                 popular_query_results]
SEARCH_CHECKS = [zero_result_rate_check, query_distribution_check]
