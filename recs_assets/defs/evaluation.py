"""The `evaluation` group: every model's held-out lists built once, graded alike, ranked, and the gate to serving.

    evaluation_users -> holdout_recommendations -> model_metrics -> model_leaderboard -> champion_model (+ champion_beats_baseline)
"""

import datetime as dt
import time

import dagster as dg
import polars as pl

from recs_assets.contract import METRIC_K
from recs_assets.defs.common import (
    image,
    leaderboard_chart,
    metadata_history,
    percent,
    preview,
    rounded,
    significant,
    trend_chart,
)
from recs_assets.defs.models import GENERATOR_ASSETS, RANKER_ASSET
from recs_assets.evaluation.grading import grade_holdout
from recs_assets.evaluation.leaderboard import (
    baseline_verdict,
    decide_champion_from_board,
    leaderboard,
    served_generators,
    with_relative_lifts,
    with_session_columns,
)
from recs_assets.evaluation.pipeline import holdout_lists, lists_by_model
from recs_assets.evaluation.session_protocol import SESSION_K, NoSessions, best_session_model, evaluate_sessions
from recs_assets.profiling import markdown_table
from recs_assets.defs.training import RankingSetConfig
from recs_assets.models import MODELS
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.tracking import (
    REFIT,
    RUN_TAG,
    STAGE_TAG,
    current_champion,
    log_metrics_to_run,
    log_model_run,
    log_ranker_run,
    move_champion_alias,
    move_production_alias,
    registered_run_id,
)
from recs_assets.training.refit import refit_champion
from recs_assets.training.splits import NO_PROTOCOL, graded_users, split_from_frame, split_protocol
from resources.candidate_models import CandidateModels

MODEL_ASSETS = [*GENERATOR_ASSETS.values(), RANKER_ASSET]
PRIMARY_METRIC = f"ndcg@{METRIC_K}"


class EvaluationUsersConfig(dg.Config):
    """How many test users are graded at most (None: all of them), and the seed of the sample."""

    max_users: int | None = 30_000
    seed: int = 42


@dg.asset(group_name="evaluation", kinds={"parquet", "duckdb"})
def evaluation_users(config: EvaluationUsersConfig, train_test_split: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The test users every model is graded on: all of them, or a fixed random sample when there are very many.

    One list for every grade, so all models face the same users. Below `max_users` test users (ml-100k,
    Steam, a 10k-user shop) it is all of them; at 100k users a sample keeps grading linear in the data
    and its intervals narrow (about +-0.002 nDCG@10 at 30,000 users).
    """
    split = split_from_frame(train_test_split)
    chosen = graded_users(split, config.max_users, config.seed)
    total = split.truth["user_id"].n_unique()
    frame = pl.DataFrame({"user_id": chosen}, schema={"user_id": pl.String})
    return dg.Output(frame, metadata={
        "graded_users": dg.MetadataValue.int(len(chosen)),
        "test_users": dg.MetadataValue.int(total),
        "sampled": dg.MetadataValue.bool(len(chosen) < total),
    })


class HoldoutConfig(dg.Config):
    """How long each graded list is (the metric cut-off k), and the seeded bootstrap behind every interval."""

    k: int = METRIC_K
    bootstrap_seed: int = 42


@dg.asset(
    group_name="evaluation",
    required_resource_keys={"candidate_models"},
    ins={name: dg.AssetIn(name) for name in MODEL_ASSETS},
    kinds={"parquet", "duckdb"},
)
def holdout_recommendations(
    context: dg.AssetExecutionContext,
    config: HoldoutConfig,
    evaluation_users: pl.DataFrame,
    training_user_features: pl.DataFrame,
    training_item_features: pl.DataFrame,
    training_user_category_affinity: pl.DataFrame,
    **models,
) -> dg.Output[pl.DataFrame]:
    """What each model would have shown every graded test user: each generator's proposals and the re-ranker's top k over them.

    Built once per run; every grade (overall, by segment, the re-ranker's lift over its inputs) reads these rows.
    """
    users = evaluation_users["user_id"].to_list()
    known = {
        "user_features": training_user_features,
        "item_features": training_item_features,
        "user_category_affinity": training_user_category_affinity,
    }
    generators = {name: models[asset] for name, asset in GENERATOR_ASSETS.items()}
    lists = holdout_lists(
        generators, models[RANKER_ASSET], users, known,
        n_candidates=context.resources.candidate_models.n_candidates, N=config.k,
    )
    return dg.Output(
        lists,
        metadata={
            "rows": dg.MetadataValue.int(lists.height),
            "test_users": dg.MetadataValue.int(len(users)),
            "models": dg.MetadataValue.json(lists["model"].unique(maintain_order=True).to_list()),
            "preview": preview(lists.filter(pl.col("model") == "ranker")),
        },
    )


def _mlflow_run_ids(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Each model asset's MLflow run, read from its latest materialisation (this run's, in a full run)."""
    run_ids = {}
    for asset in MODEL_ASSETS:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "mlflow_run_id" in metadata:
            run_ids[asset.removesuffix("_model")] = metadata["mlflow_run_id"].value
    return run_ids


@dg.asset(group_name="evaluation", required_resource_keys={"home"}, kinds={"parquet", "duckdb", "mlflow"})
def model_metrics(
    context: dg.AssetExecutionContext,
    config: HoldoutConfig,
    holdout_recommendations: pl.DataFrame,
    train_test_split: pl.DataFrame,
    evaluation_users: pl.DataFrame,
    training_interactions: pl.DataFrame,
    training_item_features: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Every model graded alike on the held-out data: accuracy at k, catalogue coverage, novelty, diversity, popularity bias.

    One row per model and user segment ("all", then cold to heavy users by training history, and new
    items); the ranker is graded on its full pipeline (the generators propose, the ranker orders).
    The "all" figures are also logged on each model's own MLflow run.
    """
    split = split_from_frame(train_test_split).with_test_users(evaluation_users["user_id"])
    if split.protocol == NO_PROTOCOL or holdout_recommendations.height == 0:
        # Too little data to hold anything out: models are trained and served, but nobody is graded.
        empty = pl.DataFrame(schema={"model": pl.String, "segment": pl.String, "users": pl.Int64, "protocol": pl.String,
                                     "protocol_reason": pl.String, "cutoff": pl.String})
        return dg.Output(empty, metadata={"rows": dg.MetadataValue.int(0), "protocol": dg.MetadataValue.text(split.protocol),
                                          "note": dg.MetadataValue.text(split.reason or "no held-out data")})
    home = context.resources.home.root
    lists = lists_by_model(holdout_recommendations, config.k)
    holder = current_champion(home, [f"{m}_model" for m in lists])
    table = grade_holdout(
        lists, split, training_interactions, training_item_features, config.k,
        champion=holder.removesuffix("_model") if holder else None, seed=config.bootstrap_seed,
    )
    truth = split.truth
    overall = table.filter(pl.col("segment") == "all").drop("segment", "protocol", "protocol_reason", "cutoff")
    for model, run_id in _mlflow_run_ids(context).items():
        row = overall.filter(pl.col("model") == model)
        if row.height:
            log_metrics_to_run(home, run_id, {k: v for k, v in row.row(0, named=True).items() if isinstance(v, (int, float))})
    segments = table.filter(pl.col("model") == next(iter(lists))).select("segment", "users")
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "protocol": dg.MetadataValue.text(split.protocol),
            "protocol_reason": dg.MetadataValue.text(split.reason or ""),
            "test_users": dg.MetadataValue.int(truth["user_id"].n_unique()),
            "users_per_segment": dg.MetadataValue.json(dict(segments.iter_rows())),
            "overall": dg.MetadataValue.md(markdown_table(overall.with_columns(pl.selectors.float().round(4)), rows=20)),
        },
    )


class SessionProtocolConfig(dg.Config):
    """The session protocol's list length k (HR@k, MRR@k), how many held-out visits at most, and the seed."""

    k: int = SESSION_K
    max_sessions: int = 5_000
    seed: int = 42


@dg.asset(group_name="evaluation", ins={name: dg.AssetIn(name) for name in GENERATOR_ASSETS.values()},
          kinds={"parquet", "duckdb"})
def session_metrics(config: SessionProtocolConfig, train_test_split: pl.DataFrame, **models) -> dg.Output[pl.DataFrame]:
    """How well each model guesses a visit's next item from the visit so far, for shoppers with and without an account.

    Every visit after the cut-off is replayed: each next item is predicted from the items before it
    (HR@20, MRR@20, 95% intervals over visits, paired test against popularity), for the session models
    and for popularity and item-kNN (the last item's neighbours). Skipped, with the reason, when the
    split has no single cut-off or the events have no sessions.
    """
    split = split_from_frame(train_test_split)
    generators = {name: models[asset] for name, asset in GENERATOR_ASSETS.items()}
    try:
        table = evaluate_sessions(generators, split, k=config.k, max_sessions=config.max_sessions, seed=config.seed)
    except NoSessions as reason:
        empty = pl.DataFrame(schema={"model": pl.String, "segment": pl.String, "sessions": pl.Int64, "predictions": pl.Int64})
        return dg.Output(empty, metadata={"rows": dg.MetadataValue.int(0), "skipped": dg.MetadataValue.text(str(reason))})
    overall = table.filter(pl.col("segment") == "all")
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "sessions": dg.MetadataValue.int(int(overall["sessions"][0])),
            "predictions": dg.MetadataValue.int(int(overall["predictions"][0])),
            "segments": dg.MetadataValue.json(dict(table.select("segment", "sessions").unique(maintain_order=True).iter_rows())),
            "table": dg.MetadataValue.md(markdown_table(table.drop("protocol").with_columns(pl.selectors.float().round(4)), rows=30)),
        },
    )


class LeaderboardConfig(dg.Config):
    primary_metric: str = PRIMARY_METRIC


TREND_KEYS = ("leader", "leader_score", "leader_ci_low", "leader_ci_high")


def _leaderboard_figures(board: pl.DataFrame, metric: str) -> dict[str, dg.MetadataValue]:
    """The leader's score and interval and popularity's score as numbers: Dagster plots them run after run."""
    top = board.row(0, named=True)
    score = float(top[metric])
    low, high = top.get(f"{metric}_ci_low"), top.get(f"{metric}_ci_high")
    figures = {"leader_score": dg.MetadataValue.float(significant(score)),
               "leader_ci_low": dg.MetadataValue.float(significant(score if low is None else low)),
               "leader_ci_high": dg.MetadataValue.float(significant(score if high is None else high))}
    base = board.filter(pl.col("model") == "popularity")[metric]
    if base.len() and base[0] is not None:
        figures["baseline_score"] = dg.MetadataValue.float(significant(base[0]))
    return figures


def _short_table(board: pl.DataFrame, metric: str) -> str:
    """Position, model, score with its interval, relative lift and p-value against popularity, users."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    rows = [{"#": r["position"], "model": r["model"], metric: f"{r[metric]:.4g}",
             "95% CI": f"{r[low]:.4g} to {r[high]:.4g}" if r.get(low) is not None and r.get(high) is not None else "",
             "vs popularity": "" if r["model"] == "popularity" else percent(r.get("lift_vs_popularity")),
             "p": "" if r.get("p_vs_popularity") is None else ("<0.001" if r["p_vs_popularity"] < 0.001 else f"{r['p_vs_popularity']:.3g}"),
             "users": r.get("evaluable_users") or r.get("users")}
            for r in board.iter_rows(named=True)]
    return markdown_table(pl.DataFrame(rows), rows=len(rows))


@dg.asset(group_name="evaluation", required_resource_keys={"mlflow"}, kinds={"parquet", "duckdb", "mlflow"})
def model_leaderboard(
    context: dg.AssetExecutionContext, config: LeaderboardConfig, model_metrics: pl.DataFrame, session_metrics: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """The models ranked by the primary metric (NDCG@10 by default), with the split protocol written beside the numbers.

    Beside them, the session protocol's HR@20 and MRR@20 (`session_*` columns) for the models it grades. Also logged to this run's MLflow run as `model_leaderboard.json`, beside the models' own runs.
    """
    if model_metrics.height == 0:
        return dg.Output(model_metrics.drop("segment"), metadata={"rows": dg.MetadataValue.int(0),
                         "note": dg.MetadataValue.text("no leaderboard: too little held-out data to grade models")})
    board = leaderboard(model_metrics.filter(pl.col("segment") == "all").drop("segment"), config.primary_metric)
    board = with_relative_lifts(with_session_columns(board, session_metrics), config.primary_metric)
    context.resources.mlflow.log_table(board.to_pandas(), "model_leaderboard.json")
    protocol = board["protocol"][0]
    cutoff = board["cutoff"][0]
    metric = config.primary_metric
    figures = _leaderboard_figures(board, metric)
    # The trend is this asset's own history (no other server to run, works offline); the current point last.
    trend = metadata_history(context.instance, "model_leaderboard", TREND_KEYS, optional=("baseline_score",), limit=19)
    trend.append({"timestamp": time.time(), "leader": board["model"][0], "baseline_score": None,
                  **{k: v.value for k, v in figures.items()}})
    return dg.Output(
        board,
        metadata={
            "rows": dg.MetadataValue.int(board.height),
            "primary_metric": dg.MetadataValue.text(metric),
            "protocol": dg.MetadataValue.text(f"{protocol} split" + (f", test from {cutoff}" if cutoff else "")),
            "leader": dg.MetadataValue.text(board["model"][0]),
            "chart": image(leaderboard_chart(board, metric), f"{metric} per model with 95% intervals"),
            "table": dg.MetadataValue.md(_short_table(board, metric)),
            "trend": (image(trend_chart(trend, metric), f"{metric} of the leader over the last runs") if len(trend) > 1
                      else dg.MetadataValue.text("first graded run in this home: the trend across runs appears from the next one")),
            **figures,
            "all_columns": dg.MetadataValue.md(markdown_table(rounded(board), rows=20)),
        },
    )


class ChampionConfig(dg.Config):
    """A challenger must beat the champion by this relative margin on the primary metric, and the gain must be
    significant in a paired test over users at level `alpha`."""

    primary_metric: str = PRIMARY_METRIC
    margin: float = 0.02
    alpha: float = 0.05


@dg.asset(group_name="evaluation", required_resource_keys={"home", "mlflow"}, kinds={"mlflow"})
def champion_model(context: dg.AssetExecutionContext, config: ChampionConfig, model_leaderboard: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The model that serves: a challenger replaces the champion only if it wins by the configured margin.

    The MLflow registry alias `champion` moves with it, and the reason is recorded on the model version.
    """
    home = context.resources.home.root
    if model_leaderboard.height == 0:
        # No leaderboard (too little data to grade): popularity serves, and says why.
        decision_reason = "no leaderboard (too little held-out data to grade models): the popularity baseline serves"
        version = move_champion_alias(home, "popularity_model", ["popularity_model"], decision_reason, context.run.run_id)
        table = pl.DataFrame({"champion": ["popularity"], "registered_model": ["popularity_model"], "version": [version],
                              "promoted": [False], "primary_metric": [config.primary_metric], "score": [None],
                              "baseline_score": [None], "p_vs_baseline": [None], "alpha": [config.alpha],
                              "graded": [False], "reason": [decision_reason]},
                             schema_overrides={"score": pl.Float64, "baseline_score": pl.Float64, "p_vs_baseline": pl.Float64})
        return dg.Output(table, metadata={"champion": dg.MetadataValue.text(f"popularity_model v{version}"),
                                          "promoted": dg.MetadataValue.bool(False), "reason": dg.MetadataValue.text(decision_reason)})
    scores = dict(model_leaderboard.select("model", config.primary_metric).iter_rows())
    names = [f"{m}_model" for m in scores]
    holder = current_champion(home, names)
    decision = decide_champion_from_board(
        model_leaderboard, config.primary_metric, holder.removesuffix("_model") if holder else None,
        margin=config.margin, alpha=config.alpha,
    )
    version = move_champion_alias(home, f"{decision.champion}_model", names, decision.reason, context.run.run_id)
    context.resources.mlflow.set_tags(
        {"champion": f"{decision.champion}_model v{version}", "champion_reason": decision.reason}
    )
    p_vs_baseline = dict(model_leaderboard.select("model", "p_vs_popularity").iter_rows())
    table = pl.DataFrame(
        {
            "champion": [decision.champion],
            "registered_model": [f"{decision.champion}_model"],
            "version": [version],
            "promoted": [decision.promoted],
            "primary_metric": [config.primary_metric],
            "score": [scores[decision.champion]],
            "baseline_score": [scores.get("popularity")],
            "p_vs_baseline": [p_vs_baseline.get(decision.champion)],
            "alpha": [config.alpha],
            "graded": [True],
            "reason": [decision.reason],
        },
        schema_overrides={"p_vs_baseline": pl.Float64, "baseline_score": pl.Float64},
    )
    return dg.Output(
        table,
        metadata={
            "champion": dg.MetadataValue.text(f"{decision.champion}_model v{version}"),
            "promoted": dg.MetadataValue.bool(decision.promoted),
            "reason": dg.MetadataValue.text(decision.reason),
            config.primary_metric: dg.MetadataValue.float(float(scores[decision.champion])),
        },
    )


def champion_check_result(champion_model: pl.DataFrame) -> dg.AssetCheckResult | None:
    """The verdict of champion_beats_baseline, or None when nothing was graded (then the check is skipped)."""
    row = champion_model.row(0, named=True)
    if not row.get("graded", True):
        return None
    passed, description = baseline_verdict(
        row["champion"], row["score"], row["baseline_score"],
        p_value=row.get("p_vs_baseline"), metric=row["primary_metric"], alpha=row.get("alpha", 0.05),
    )
    return dg.AssetCheckResult(passed=passed, description=description)


CHAMPION_CHECK_DESCRIPTION = (
    "The serving model must beat the popularity baseline significantly: anything worse never reaches serving. "
    "When no model beats popularity, popularity itself serves and the check says so; 0.0 against 0.0 never "
    "passes. Skipped, with the reason, when there was too little data to grade: popularity then serves."
)


# A multi-asset check only so that it may report nothing: Dagster then shows it SKIPPED (not a PASS that
# checked nothing), and, blocking or not, a check without a result does not stop the assets downstream.
@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("champion_beats_baseline", asset="champion_model", blocking=True,
                             description=CHAMPION_CHECK_DESCRIPTION)],
    ins={"champion_model": dg.AssetIn("champion_model")},
    can_subset=True,
)
def champion_beats_baseline(context: dg.AssetCheckExecutionContext, champion_model: pl.DataFrame):
    result = champion_check_result(champion_model)
    if result is None:
        context.log.warning(f"skipped: {champion_model['reason'][0]}")
        return
    yield result


# ---------------------------------------------------------------------------------------------
# The champion refitted on all data: what the API serves
# ---------------------------------------------------------------------------------------------
REFIT_ASSETS = {name: f"refit_{asset}" for name, asset in GENERATOR_ASSETS.items()}
REFIT_RANKER_ASSET = f"refit_{RANKER_ASSET}"
# The generators that can personalise a live visit (they learn from visits in order).
SESSION_MODELS = [name for name, cls in MODELS.items() if getattr(cls, "uses_sequences", False)]


def serving_session_model(session_metrics: pl.DataFrame) -> tuple[str, str]:
    """The session model the API scores live visits with, and why: the best graded one, else the first."""
    chosen = best_session_model(session_metrics)
    if chosen is not None:
        return chosen, f"best MRR@{SESSION_K} of the session models on the held-out visits"
    return SESSION_MODELS[0], "the session protocol graded no session model (no held-out visits): the default session model serves"


class RefitConfig(RankingSetConfig):
    """The re-ranker's lessons for the refit, made as for the graded ranker (the same settings and defaults)."""


def _refit_tags(context: dg.AssetExecutionContext, champion: dict, evaluated_run: str | None) -> dict[str, str]:
    """Lineage of a refitted version: the graded version it stands for and the figures the gate judged."""
    tags = {
        RUN_TAG: context.run.run_id,
        STAGE_TAG: REFIT,
        "refit_of": f"{champion['registered_model']} v{champion['version']}",
        "gate_reason": str(champion["reason"])[:4000],
    }
    if evaluated_run:
        tags["evaluated_run_id"] = evaluated_run
    for key in ("primary_metric", "score", "baseline_score", "p_vs_baseline"):
        if champion.get(key) is not None:
            tags[f"gated_{key}"] = str(champion[key])
    return tags


@dg.multi_asset(
    outs={
        **{
            asset: dg.AssetOut(
                group_name="evaluation", io_manager_key="model_io_manager", kinds={"python", "mlflow"},
                description=f"The {name} model refitted on all data up to now, with the graded one's settings: what serving uses.",
            )
            for name, asset in REFIT_ASSETS.items()
        },
        REFIT_RANKER_ASSET: dg.AssetOut(
            group_name="evaluation", io_manager_key="model_io_manager", kinds={"lightgbm", "mlflow"},
            description="The re-ranker refitted on lessons from the newest days (None when the champion is a single model).",
        ),
        "served_model": dg.AssetOut(
            group_name="evaluation", kinds={"parquet", "mlflow"},
            description="Which registered version the API serves, and which graded version it was refitted from.",
        ),
    },
    # Only the split's protocol: the whole table is every event again (1.7 GB at 10M events).
    ins={"ranker_model": dg.AssetIn(RANKER_ASSET), "train_test_split": dg.AssetIn(metadata={"columns": ["protocol"]})},
    required_resource_keys={"home", "mlflow", "candidate_models", "interaction_weights"},
    can_subset=False,
)
def champion_refit(
    context: dg.AssetExecutionContext,
    config: RefitConfig,
    champion_model: pl.DataFrame,
    train_test_split: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    user_item_interactions: pl.DataFrame,
    item_features: pl.DataFrame,
    session_sequences: pl.DataFrame,
    model_leaderboard: pl.DataFrame,
    session_metrics: pl.DataFrame,
    ranker_model,
):
    """The champion's pipeline fitted again on everything up to now, so the newest days reach the users.

    The gate judged models that never saw the test window; the refit sees it. Same hyper-parameters as
    the graded models, each registered as a new MLflow version tagged with the graded version, run and
    figures it stands for; the MLflow alias `production` points at what serves.
    """
    home = context.resources.home.root
    models: CandidateModels = context.resources.candidate_models
    champion = champion_model.row(0, named=True)
    ranker_params = ranker_model.params() if ranker_model is not None else {}
    # Only what users are served is refitted: the ranker's whole pipeline, or one model plus the ones
    # behind "more like this" and the live-visit path.
    served = served_generators(
        champion["champion"], list(GENERATOR_ASSETS), model_leaderboard["model"].to_list() if model_leaderboard.height else [],
        serving_session_model(session_metrics)[0],
    )
    refit = refit_champion(
        champion["champion"], models.build_all, lambda: LightGBMRanker(**ranker_params),
        {"interactions": user_item_interactions, "item_features": item_features, "session_sequences": session_sequences},
        events, items, users,
        protocol=split_protocol(train_test_split), weights=context.resources.interaction_weights.params(),
        n_candidates=models.n_candidates, lesson_options=config.model_dump(), only=served,
    )
    tags = _refit_tags(context, champion, registered_run_id(home, champion["registered_model"], champion["version"]))
    versions: dict[str, int] = {}
    for name in GENERATOR_ASSETS:
        if name not in refit.generators:
            why = f"not refitted: {champion['champion']} serves, and no served list comes from {name}"
            yield dg.Output(None, REFIT_ASSETS[name], metadata={"trained": dg.MetadataValue.bool(False),
                                                                "note": dg.MetadataValue.text(why)})
            continue
        model = refit.generators[name]
        _, versions[name] = log_model_run(
            context.resources.mlflow, REFIT_ASSETS[name], model, {"fit_seconds": model.fit_seconds},
            registered_name=GENERATOR_ASSETS[name], version_tags=tags,
        )
        yield dg.Output(model, REFIT_ASSETS[name], metadata={
            "fit_seconds": dg.MetadataValue.float(float(model.fit_seconds or 0.0)),
            "model_version": dg.MetadataValue.int(versions[name]),
            "users": dg.MetadataValue.int(model.n_users), "items": dg.MetadataValue.int(model.n_items),
        })
    served_ranker, note = refit.ranker, refit.note
    ranker_metadata = {}
    if refit.ranker is not None:
        _, versions["ranker"] = log_ranker_run(
            context.resources.mlflow, REFIT_RANKER_ASSET, refit.ranker, {"fit_seconds": refit.ranker.fit_seconds},
            registered_name=RANKER_ASSET, version_tags=tags,
        )
        ranker_metadata = {"fit_seconds": dg.MetadataValue.float(float(refit.ranker.fit_seconds or 0.0)),
                           "model_version": dg.MetadataValue.int(versions["ranker"])}
    elif champion["champion"] == "ranker":
        # No lesson in the newest days: the graded ranker keeps serving over the refitted generators.
        served_ranker, versions["ranker"] = ranker_model, int(champion["version"])
    yield dg.Output(served_ranker, REFIT_RANKER_ASSET, metadata={
        **ranker_metadata,
        "trained": dg.MetadataValue.bool(refit.ranker is not None),
        "note": dg.MetadataValue.text(note),
        "lessons": dg.MetadataValue.json(refit.lessons.get("windows", [])),
    })
    served_version = versions[champion["champion"]]
    move_production_alias(home, champion["registered_model"], served_version, [f"{m}_model" for m in (*GENERATOR_ASSETS, "ranker")])
    served = pl.DataFrame({
        "champion": [champion["champion"]],
        "registered_model": [champion["registered_model"]],
        "version": [served_version],
        "evaluated_version": [int(champion["version"])],
        "refitted": [served_version != int(champion["version"])],
        "trained_through": [events["event_at"].max() if "event_at" in events.columns else None],
        "refitted_at": [dt.datetime.now(dt.UTC)],
        "note": [note],
    })
    yield dg.Output(served, "served_model", metadata={
        "serves": dg.MetadataValue.text(f"{champion['registered_model']} v{served_version}"),
        "refit_of": dg.MetadataValue.text(f"{champion['registered_model']} v{champion['version']} (graded)"),
        "note": dg.MetadataValue.text(note),
    })
