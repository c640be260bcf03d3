"""The `experiments` group: does the champion make money? Simulated A/B tests, bandits and off-policy estimates.

    holdout_recommendations + model_leaderboard + champion_model -> ab_test_results, offline_online_agreement
    holdout_recommendations -> bandit_simulation
    events (+ the champion's lists) -> off_policy_estimates

Where an experiment cannot apply (no simulator to run an A/B test in, no propensities to weight by),
its asset still materialises, with a one-row table saying "not applicable" and why.
"""


import json

import dagster as dg
import polars as pl

from recs_assets.contract import METRIC_K
from recs_assets.defs.common import percent, preview, rounded, significant
from recs_assets.evaluation.pipeline import lists_by_model
from recs_assets.experiments import ab_test
from recs_assets.experiments.environment import SimulatorEnvironment
from recs_assets.experiments.plots import markdown_image
from recs_assets.experiments.suite import ab_suite, bandit_suite, challenger_of, open_bandit_ope, simulator_ope
from recs_assets.profiling import markdown_table
from recs_assets.training.splits import split_from_frame
from resources.marketplace_source import MarketplaceSource

NOT_APPLICABLE = "not applicable"


def not_applicable(reason: str) -> dg.Output[pl.DataFrame]:
    return dg.Output(pl.DataFrame({"status": [NOT_APPLICABLE], "reason": [reason]}),
                     metadata={"status": dg.MetadataValue.text(f"{NOT_APPLICABLE}: {reason}"),
                               "note": dg.MetadataValue.text(NOT_APPLICABLE)})


def _simulator_reason(source: MarketplaceSource, leaderboard: pl.DataFrame | None = None) -> str | None:
    if source.kind != "simulator":
        return f"source {source.label} has no simulator: real shoppers cannot be replayed, so only the simulated shop runs A/B tests and bandits"
    if leaderboard is not None and leaderboard.height == 0:
        return "no leaderboard (too little held-out data to grade models), so there is no champion or challenger to test"
    return None


def _environment(source: MarketplaceSource) -> SimulatorEnvironment:
    return SimulatorEnvironment.from_market(source.simulation(), slots=METRIC_K)


class ABTestConfig(dg.Config):
    """Size, seed and salt of the simulated A/B test; the primary metric it decides on; its guardrails."""

    sessions_per_arm: int = ab_test.ExperimentConfig.sessions_per_arm
    seed: int = 42
    salt: str = "experiment-1"
    primary_metric: str = "revenue_per_session"
    alpha: float = 0.05
    target_lift: float = 0.03  # the power reported is for this relative lift
    agreement_sessions: int = 30_000  # sessions per model for the offline-versus-online order
    min_coverage_ratio: float = 0.5
    max_latency_ms: float = 50.0


@dg.multi_asset(
    group_name="experiments",
    required_resource_keys={"source"},
    outs={
        "ab_test_results": dg.AssetOut(description=(
            "Champion against challenger, and each against popularity, in a simulated A/B test: revenue, conversion, "
            "CTR, GMV and basket size with 95% intervals, a sample-ratio check, guardrails, power and a ship decision."),
            kinds={"parquet", "duckdb"}),
        "offline_online_agreement": dg.AssetOut(description=(
            "Does the offline leaderboard order the models as the simulated shoppers do? Every model's offline and "
            "online score, Kendall's tau and the pairs that disagree."), kinds={"parquet", "duckdb"}),
    },
)
def ab_test_results(context: dg.AssetExecutionContext, config: ABTestConfig, holdout_recommendations: pl.DataFrame,
                    model_leaderboard: pl.DataFrame, champion_model: pl.DataFrame):
    source: MarketplaceSource = context.resources.source
    reason = _simulator_reason(source, model_leaderboard)
    if reason:
        return not_applicable(reason), not_applicable(reason)
    experiment = ab_test.ExperimentConfig(sessions_per_arm=config.sessions_per_arm, seed=config.seed, salt=config.salt,
                                          primary=config.primary_metric, alpha=config.alpha, target_lift=config.target_lift)
    primary = champion_model["primary_metric"][0]
    champion = champion_model["champion"][0]
    lists = lists_by_model(holdout_recommendations, METRIC_K)
    offline = dict(model_leaderboard.select("model", primary).iter_rows())
    suite = ab_suite(_environment(source), lists, offline, champion, challenger_of(model_leaderboard, champion),
                     experiment, agreement_sessions=config.agreement_sessions,
                     guardrails=ab_test.Guardrails(config.min_coverage_ratio, config.max_latency_ms))
    main = suite.comparisons.row(0, named=True)
    shown = _in_percent(suite.comparisons).select("treatment", "control", "decision", "lift", "95% CI", "p_value", "mde", "srm_p")
    comparisons = suite.comparisons.with_columns(status=pl.lit("ok"))
    agreement = suite.online.with_columns(kendall_tau=pl.lit(suite.kendall_tau), kendall_p=pl.lit(suite.kendall_p),
                                          discordant_pairs=pl.lit("; ".join(f"{a} above {b} offline, below online" for a, b in suite.discordant)),
                                          discordant_json=pl.lit(json.dumps(suite.discordant)),
                                          offline_metric=pl.lit(primary), online_metric=pl.lit(config.primary_metric), status=pl.lit("ok"))
    return (
        dg.Output(comparisons, metadata={
            "note": dg.MetadataValue.text(f"{main['decision']}: {main['treatment']} vs {main['control']}, "
                                          f"{main['primary_metric'].replace('_', ' ')} {main['lift']:+.1%}"),
            "decision": dg.MetadataValue.text(f"{main['decision']}: {main['treatment']} vs {main['control']}"),
            "reason": dg.MetadataValue.text(main["reason"]),
            "lift": dg.MetadataValue.float(significant(float(main["lift"]))),
            "effect_plot": dg.MetadataValue.md(markdown_image(suite.plot, "A/B effects with 95% intervals")),
            "comparisons": dg.MetadataValue.md(markdown_table(shown, rows=10)),
            "sessions_per_arm": dg.MetadataValue.int(config.sessions_per_arm),
            "all_metrics": dg.MetadataValue.md(markdown_table(_in_percent(suite.effects).select("treatment", "control", "metric", *(c for c in ("control_value", "treatment_value", "lift", "95% CI", "p_value") if c in suite.effects.columns or c == "95% CI")), rows=20)),
        }),
        dg.Output(agreement, metadata={
            "note": dg.MetadataValue.text(f"Kendall tau {suite.kendall_tau:.2f}, {len(suite.discordant)} pair(s) disagree"),
            "kendall_tau": dg.MetadataValue.float(suite.kendall_tau),
            "discordant_pairs": dg.MetadataValue.text("; ".join(f"{a} above {b} offline, below online" for a, b in suite.discordant) or "none"),
            "table": dg.MetadataValue.md(markdown_table(suite.online.with_columns(pl.selectors.float().round(4)), rows=20)),
        }),
    )


def _in_percent(table: pl.DataFrame) -> pl.DataFrame:
    """Relative lifts as people read them ("+3.4%", the interval "+1.0% to +5.8%"); other floats to 4 digits."""
    pct = lambda c, show=percent: pl.col(c).map_elements(show, return_dtype=pl.String)  # noqa: E731
    size = [pct("mde", lambda x: percent(x).lstrip("+"))] if "mde" in table.columns else []  # a size, not a change
    return rounded(table).with_columns(
        pct("lift"), *size,
        pl.format("{} to {}", pct("lift_low"), pct("lift_high")).alias("95% CI"),
    )


class BanditConfig(dg.Config):
    """How many simulated sessions the bandits learn over, their seed and their exploration settings."""

    rounds: int = 10_000
    seed: int = 42
    epsilon: float = 0.1
    linucb_alpha: float = 0.5


@dg.asset(group_name="experiments", required_resource_keys={"source"}, kinds={"parquet", "duckdb"})
def bandit_simulation(context: dg.AssetExecutionContext, config: BanditConfig, holdout_recommendations: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Could the shop learn online which model's list to show? Thompson sampling and LinUCB against epsilon-greedy and random choice.

    Each simulated session, the bandit picks which model fills the feed and learns from whether the
    shopper bought; regret is what it lost against the best choice for that shopper.
    """
    source: MarketplaceSource = context.resources.source
    reason = _simulator_reason(source)
    if reason or holdout_recommendations.height == 0:
        return not_applicable(reason or "no held-out lists to choose between")
    suite = bandit_suite(_environment(source), lists_by_model(holdout_recommendations, METRIC_K), config.rounds, config.seed,
                         epsilon=config.epsilon, linucb_alpha=config.linucb_alpha)
    best = suite.summary.sort("regret").row(0, named=True)
    curves = suite.curves.join(suite.summary.select("policy", "most_played_arm", "best_arm_share"), on="policy", how="left")
    return dg.Output(curves.with_columns(status=pl.lit("ok")), metadata={
        "note": dg.MetadataValue.text(f"least regret: {best['policy']}"),
        "best_policy": dg.MetadataValue.text(f"{best['policy']} (regret {best['regret']:.1f} over {best['rounds']:,} sessions)"),
        "regret_plot": dg.MetadataValue.md(markdown_image(suite.plot, "bandit regret")),
        "summary": dg.MetadataValue.md(markdown_table(suite.summary.with_columns(pl.selectors.float().round(4)), rows=10)),
    })


class OPEConfig(dg.Config):
    """Simulator: the target is the champion's top-N, mixed with the logging policy (epsilon) so both share support.
    Open Bandit: which logged policy is the target and which one's logs estimate it."""

    epsilon: float = 0.3
    top_n: int = METRIC_K
    logging_policy: str = "random"
    target_policy: str = "bts"


@dg.asset(group_name="experiments", required_resource_keys={"source"}, kinds={"parquet", "duckdb"})
def off_policy_estimates(context: dg.AssetExecutionContext, config: OPEConfig, events: pl.DataFrame,
                         holdout_recommendations: pl.DataFrame, champion_model: pl.DataFrame,
                         train_test_split: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """What would a new policy's click rate be? IPS, SNIPS, DM and DR estimates from logged impressions, checked against the truth.

    In the simulator the truth is the shoppers' own response model; on the Open Bandit Dataset it is
    the click rate the target policy really got in its own logs.
    """
    source: MarketplaceSource = context.resources.source
    has_logs = events.filter((pl.col("event_type") == "impression") & pl.col("propensity").is_not_null()).height > 0
    if not has_logs:
        return not_applicable(f"source {source.label} logs no impressions with propensities, so nothing can be reweighted")
    if source.kind == "open_bandit":
        suite = open_bandit_ope(events, logging=config.logging_policy, target=config.target_policy)
    elif source.kind == "simulator" and holdout_recommendations.height:
        champion = champion_model["champion"][0]
        lists = lists_by_model(holdout_recommendations, METRIC_K)[champion]
        split = split_from_frame(train_test_split)
        suite = simulator_ope(_environment(source), events, lists, champion, config.epsilon, config.top_n, after=split.cutoff)
    else:
        return not_applicable(f"source {source.label} has propensities but no known target policy to evaluate")
    table = suite.table.with_columns(status=pl.lit("ok"))
    dr = table.filter(pl.col("estimator") == "DR").row(0, named=True)
    return dg.Output(table, metadata={
        "note": dg.MetadataValue.text(f"DR {dr['estimate']:.4f} vs true {dr['truth']:.4f} ({dr['relative_error']:.1%} off)"),
        "dr_estimate": dg.MetadataValue.text(f"{dr['estimate']:.4f} [{dr['ci_low']:.4f}, {dr['ci_high']:.4f}] vs true {dr['truth']:.4f}"),
        "relative_errors": dg.MetadataValue.json({r["estimator"]: round(r["relative_error"], 4) for r in table.iter_rows(named=True)}),
        "ope_plot": dg.MetadataValue.md(markdown_image(suite.plot, "OPE estimates vs truth")),
        "table": dg.MetadataValue.md(markdown_table(table.select("estimator", *(pl.col(c).round(5) for c in ("estimate", "ci_low", "ci_high", "truth", "relative_error", "effective_sample_size"))), rows=10)),
    })


EXPERIMENT_ASSETS = [ab_test_results, bandit_simulation, off_policy_estimates]
