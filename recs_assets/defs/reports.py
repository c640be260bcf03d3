"""The `reports` group: the stakeholder report, in Markdown and HTML, written under $RECS_HOME/reports/ and logged to MLflow."""

import json

import dagster as dg
import polars as pl

from recs_assets.experiments.ab_test import METRIC_LABELS
from recs_assets.experiments.plots import effect_plot, ope_plot, regret_plot
from recs_assets.layout import HomeLayout
from recs_assets.reports.stakeholder import ReportInputs, build_report, summary_markdown

REPORT_NAME = "stakeholder_report"


def _ok(frame: pl.DataFrame) -> tuple[pl.DataFrame | None, str | None]:
    """(the table, None) when the experiment ran; (None, its reason) when it did not apply."""
    if "status" in frame.columns and frame.height and frame["status"][0] != "ok":
        return None, frame["reason"][0] if "reason" in frame.columns else "not run"
    return frame, None


def _data_facts(events: pl.DataFrame) -> dict:
    at = events["event_at"].drop_nulls()
    return {"rows": events.height, "users": events["user_id"].n_unique(), "items": events["item_id"].drop_nulls().n_unique(),
            "first_day": str(at.min().date()) if at.len() else None, "last_day": str(at.max().date()) if at.len() else None}


def _cold_start_share(model_metrics: pl.DataFrame, champion: str) -> float | None:
    if model_metrics.height == 0 or "segment" not in model_metrics.columns:
        return None
    rows = model_metrics.filter(pl.col("model") == champion)
    total = rows.filter(pl.col("segment") == "all")["users"]
    cold = rows.filter(pl.col("segment") == "new shopper")["users"]
    return float(cold[0] / total[0]) if total.len() and cold.len() and total[0] else None


@dg.asset(group_name="reports", required_resource_keys={"home", "mlflow", "source"}, kinds={"html", "mlflow"})
def stakeholder_report(
    context: dg.AssetExecutionContext,
    ab_test_results: pl.DataFrame,
    offline_online_agreement: pl.DataFrame,
    bandit_simulation: pl.DataFrame,
    off_policy_estimates: pl.DataFrame,
    model_leaderboard: pl.DataFrame,
    model_metrics: pl.DataFrame,
    champion_model: pl.DataFrame,
    events: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """A two-minute read for product and commercial people: what changed, how much more the champion earns, how sure we are, the risks.

    Written as HTML and Markdown under the home's reports/ folder, logged to the run's MLflow run.
    """
    folder = HomeLayout(context.resources.home.root).reports
    folder.mkdir(parents=True, exist_ok=True)
    facts_path = folder / f"{REPORT_NAME}.json"
    previous = json.loads(facts_path.read_text()) if facts_path.exists() else None
    champion = champion_model.row(0, named=True)
    ab, ab_reason = _ok(ab_test_results)
    agreement, _ = _ok(offline_online_agreement)
    curves, bandit_reason = _ok(bandit_simulation)
    ope, ope_reason = _ok(off_policy_estimates)
    bandit_summary = None
    if curves is not None:
        last = curves.group_by("policy", maintain_order=True).agg(pl.all().last())
        bandit_summary = last.select("policy", pl.col("round").alias("rounds"), pl.col("cumulative_regret").alias("regret"),
                                     pl.col("cumulative_reward").alias("total_reward"), "most_played_arm")
    coverage = None
    if ab is not None:
        row = ab.filter(pl.col("control") == champion["champion"])
        coverage = float(row["coverage_control"][0]) if row.height else None
    inputs = ReportInputs(
        source=context.resources.source.label,
        data=_data_facts(events), champion=champion, leaderboard=model_leaderboard if model_leaderboard.height else None,
        ab=ab, ab_reason=ab_reason, ab_plot=effect_plot(ab, METRIC_LABELS.get(ab["primary_metric"][0], "")) if ab is not None else None,
        agreement=None if agreement is None else {"kendall_tau": float(agreement["kendall_tau"][0]), "models": agreement["model"].to_list(),
                                                  "discordant": _discordant(agreement)},
        bandit=bandit_summary, bandit_reason=bandit_reason, bandit_plot=regret_plot(curves) if curves is not None else None,
        ope=ope, ope_reason=ope_reason,
        ope_plot=ope_plot(ope, "Off-policy estimates against the truth") if ope is not None else None,
        risks={"coverage": coverage, "cold_start_share": _cold_start_share(model_metrics, champion["champion"]),
               "drift": "see the monitoring group's drift checks for this run"},
        previous=previous,
    )
    report = build_report(inputs)
    html_path, md_path = folder / f"{REPORT_NAME}.html", folder / f"{REPORT_NAME}.md"
    html_path.write_text(report.html)
    md_path.write_text(report.markdown)
    facts_path.write_text(json.dumps(report.facts, indent=2, default=str))
    mlflow = context.resources.mlflow
    mlflow.log_artifact(str(html_path), "reports")
    mlflow.log_artifact(str(md_path), "reports")
    key_plot = inputs.ab_plot or inputs.ope_plot or inputs.bandit_plot
    return dg.Output(
        pl.DataFrame({"decision": [report.decision], "headline": [report.headline], "html_path": [str(html_path)],
                      "markdown_path": [str(md_path)]}),
        metadata={
            "note": dg.MetadataValue.text(f"decision: {report.decision}; {html_path}"),
            "decision": dg.MetadataValue.text(report.decision),
            "report": dg.MetadataValue.path(str(html_path)),
            "report_url": dg.MetadataValue.url(html_path.as_uri()),
            "summary": dg.MetadataValue.md(summary_markdown(report, key_plot)),
        },
    )


def _discordant(agreement: pl.DataFrame) -> list[tuple[str, str]]:
    text = agreement["discordant_json"][0] if "discordant_json" in agreement.columns else "[]"
    return [tuple(pair) for pair in json.loads(text or "[]")]
