"""The stakeholder report: what changed, how much better the champion is in money, how sure we are, and the risks.

Written for a product manager with two minutes: plain sentences first, numbers beside them, the
charts after. The same blocks render as Markdown (the Dagster UI, MLflow) and as self-contained
HTML (images embedded), so the two never say different things. `facts` holds every number the text
was built from; the next run reads them to say what changed.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from recs_assets.experiments.plots import data_uri

NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report speaks about; a missing part is None with the reason it does not apply."""

    source: str
    data: dict[str, Any]  # rows, users, items, first_day, last_day
    champion: dict[str, Any]  # champion, version, promoted, reason, primary_metric, score, baseline_score
    leaderboard: pl.DataFrame | None
    ab: pl.DataFrame | None = None  # ab_test_results comparisons
    ab_reason: str | None = None  # why there is no A/B test
    ab_plot: bytes | None = None
    agreement: dict[str, Any] | None = None  # kendall_tau, discordant [(a, b)], models
    bandit: pl.DataFrame | None = None
    bandit_reason: str | None = None
    bandit_plot: bytes | None = None
    ope: pl.DataFrame | None = None
    ope_reason: str | None = None
    ope_plot: bytes | None = None
    risks: dict[str, Any] = field(default_factory=dict)  # coverage, cold_start_share, drift
    previous: dict[str, Any] | None = None  # the previous report's facts


@dataclass(frozen=True)
class Report:
    markdown: str
    html: str
    decision: str
    headline: str
    facts: dict[str, Any]


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def _confidence(row: dict) -> str:
    """How sure we are, in words a non-statistician can act on."""
    p = row["p_value"]
    if row["lift_low"] > 0 or row["lift_high"] < 0:
        return f"we are confident the change is real (95% interval {_pct(row['lift_low'])} to {_pct(row['lift_high'])}, p={p:.2g})"
    return (f"we cannot tell it apart from no change (95% interval {_pct(row['lift_low'])} to {_pct(row['lift_high'])}); "
            f"this test could only detect changes of about {_pct(row['mde'], signed=False)} or more")


def _blocks(r: ReportInputs) -> tuple[list[tuple], dict[str, Any], str, str]:
    blocks: list[tuple] = []
    facts: dict[str, Any] = {"source": r.source, "data": r.data, "champion": {k: r.champion.get(k) for k in ("champion", "version", "promoted", "score")}}
    champ = r.champion.get("champion", "?")
    decision, headline = NOT_APPLICABLE, f"{champ} serves; no simulated A/B test on this source ({r.ab_reason})"
    main = None
    if r.ab is not None and r.ab.height:
        main = r.ab.row(0, named=True)  # champion vs challenger
        vs_base = r.ab.filter((pl.col("control") == "popularity") & (pl.col("treatment") == champ))
        decision = main["decision"]
        metric = main["primary_metric"].replace("_", " ")
        headline = (f"Decision: {decision.upper()} {main['treatment']} in place of {main['control']}: "
                    f"{metric} {_pct(main['lift'])}; {_confidence(main)}.")
        facts["ab"] = {k: main[k] for k in ("control", "treatment", "decision", "primary_metric", "lift", "lift_low", "lift_high", "p_value", "mde")}
        if vs_base.height:
            facts["champion_vs_baseline"] = {k: vs_base.row(0, named=True)[k] for k in ("lift", "lift_low", "lift_high", "p_value", "decision")}
    blocks.append(("h1", "Recommendations: stakeholder report"))
    blocks.append(("p", headline))

    # What changed.
    changed = []
    prev = r.previous or {}
    pdata, pchamp = prev.get("data") or {}, prev.get("champion") or {}
    rows = r.data.get("rows")
    if not prev:
        changed.append("First report for this home: nothing to compare with yet.")
    else:
        if rows is not None and pdata.get("rows") is not None:
            changed.append(f"Data: {rows:,} events ({rows - pdata['rows']:+,} since the last run), {r.data.get('first_day')} to {r.data.get('last_day')}.")
        if pchamp.get("champion") != champ or pchamp.get("version") != r.champion.get("version"):
            changed.append(f"Champion: {pchamp.get('champion')} v{pchamp.get('version')} -> {champ} v{r.champion.get('version')}.")
        else:
            changed.append(f"Champion unchanged: {champ} v{r.champion.get('version')}.")
        pab = prev.get("ab") or {}
        if pab and "ab" in facts:
            changed.append(f"A/B lift on {pab['primary_metric'].replace('_', ' ')} was {_pct(pab['lift'])} ({pab['decision']}); now {_pct(facts['ab']['lift'])} ({decision}).")
    blocks += [("h2", "What changed since the last run"), ("ul", changed)]

    # How much better.
    blocks.append(("h2", "How much better is the champion?"))
    better = [f"{champ} v{r.champion.get('version')} serves ({'newly promoted' if r.champion.get('promoted') else 'kept'}): {r.champion.get('reason')}."]
    score, base = r.champion.get("score"), r.champion.get("baseline_score")
    if score is not None and base:
        better.append(f"Offline ({r.champion.get('primary_metric')}): {score:.4f} against {base:.4f} for the popularity baseline, {_pct(score / base - 1)} relative.")
    if "champion_vs_baseline" in facts:
        cb = facts["champion_vs_baseline"]
        better.append(f"Simulated A/B test against popularity (the current internal baseline): {main['primary_metric'].replace('_', ' ')} {_pct(cb['lift'])} "
                      f"(95% interval {_pct(cb['lift_low'])} to {_pct(cb['lift_high'])}), decision: {cb['decision']}.")
    if r.ab is None:
        better.append(f"Simulated A/B test: {NOT_APPLICABLE}: {r.ab_reason}.")
    blocks.append(("ul", better))
    if r.ab is not None:
        table = r.ab.select(
            pl.format("{} vs {}", "treatment", "control").alias("test"), "decision",
            pl.col("lift").map_elements(_pct, return_dtype=pl.String).alias("lift"),
            pl.format("{} to {}", pl.col("lift_low").map_elements(_pct, return_dtype=pl.String),
                      pl.col("lift_high").map_elements(_pct, return_dtype=pl.String)).alias("95% interval"),
            pl.col("p_value").round(4).alias("p"), pl.col("mde").map_elements(lambda x: _pct(x, False), return_dtype=pl.String).alias("detectable lift"),
            pl.format("{} / {}", "users_control", "users_treatment").alias("users"),
            pl.when(pl.col("srm_mismatch")).then(pl.lit("MISMATCH")).otherwise(pl.lit("ok")).alias("split"),
        )
        blocks.append(("table", table))
        if r.ab_plot:
            blocks.append(("img", r.ab_plot, "A/B effects with 95% intervals"))
    if r.agreement:
        tau, pairs = r.agreement["kendall_tau"], r.agreement["discordant"]
        facts["agreement"] = {"kendall_tau": tau, "discordant": [list(p) for p in pairs]}
        text = f"Offline and online orders agree with Kendall's tau = {tau:.2f} over {len(r.agreement.get('models', []))} models (1 = same order)."
        text += (" Pairs ranked differently offline and online: " + "; ".join(f"{a} above {b} offline, below online" for a, b in pairs) + "."
                 if pairs else " No pair of models is ordered differently.")
        blocks += [("h3", "Does the offline leaderboard predict the A/B result?"), ("p", text)]

    # Bandits and OPE.
    blocks.append(("h2", "What the bandit and off-policy results mean"))
    items = []
    if r.bandit is not None:
        best = r.bandit.sort("regret").row(0, named=True)
        uniform = r.bandit.filter(pl.col("policy") == "uniform")
        extra = f" ({_pct(best['total_reward'] / uniform['total_reward'][0] - 1)} purchases against picking a model at random)" if uniform.height and uniform["total_reward"][0] else ""
        items.append(f"Letting a bandit choose which model fills each feed, {best['policy']} lost the least against the best choice per session "
                     f"(regret {best['regret']:.0f} purchases over {best['rounds']:,} sessions){extra}; it mostly chose {best['most_played_arm']}.")
        facts["bandit"] = r.bandit.select("policy", "regret", "total_reward").to_dicts()
    else:
        items.append(f"Bandits: {NOT_APPLICABLE}: {r.bandit_reason}.")
    if r.ope is not None:
        dr = r.ope.filter(pl.col("estimator") == "DR").row(0, named=True)
        items.append(f"Off-policy estimate of {dr['target_policy']}'s click rate from the logs of {dr['logging_policy']}: DR {dr['estimate']:.4f} "
                     f"(95% interval {dr['ci_low']:.4f} to {dr['ci_high']:.4f}) against the true {dr['truth']:.4f}, an error of {_pct(dr['relative_error'], False)}. "
                     "When the interval holds the truth, logged data can screen new ideas before an A/B test.")
        facts["ope"] = r.ope.select("estimator", "estimate", "truth", "relative_error").to_dicts()
    else:
        items.append(f"Off-policy estimates: {NOT_APPLICABLE}: {r.ope_reason}.")
    blocks.append(("ul", items))
    if r.bandit_plot:
        blocks.append(("img", r.bandit_plot, "Bandit regret"))
    if r.ope is not None:
        blocks.append(("table", r.ope.select("estimator", *(pl.col(c).round(4) for c in ("estimate", "ci_low", "ci_high", "truth", "relative_error")))))
        if r.ope_plot:
            blocks.append(("img", r.ope_plot, "Off-policy estimates against the truth"))

    # Risks.
    risks = []
    for key, label in (("drift", "Drift"), ("coverage", "Catalogue coverage"), ("cold_start_share", "Cold-start share")):
        value = r.risks.get(key)
        if value is None:
            risks.append(f"{label}: not measured in this run.")
        elif isinstance(value, float):
            risks.append(f"{label}: {_pct(value, signed=False)}" + {"coverage": " of the catalogue is ever shown by the champion.",
                                                                     "cold_start_share": " of test users had no history, so they got the popularity fallback."}.get(key, "."))
        else:
            risks.append(f"{label}: {value}")
    if main is not None and main.get("srm_mismatch"):
        risks.append("The A/B split is off (sample ratio mismatch): fix the assignment before trusting any effect.")
    blocks += [("h2", "Risks"), ("ul", risks)]
    if r.leaderboard is not None and r.leaderboard.height:
        metric = next((c for c in r.leaderboard.columns if c.startswith("ndcg@")), None)
        if metric:
            blocks += [("h2", "Offline leaderboard"), ("table", r.leaderboard.select("model", pl.col(metric).round(4)))]
    facts["decision"] = decision
    return blocks, facts, decision, headline


def _markdown_table(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def render_markdown(blocks: list[tuple], images: bool = True) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            out.append(_markdown_table(block[1]))
        elif kind == "img" and images:
            out.append(f"![{block[2]}]({data_uri(block[1])})")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[tuple]) -> str:
    e = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f'<p class="lead">{e(block[1])}</p>' if not body[1:] else f"<p>{e(block[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            frame = block[1]
            head = "".join(f"<th>{e(c)}</th>" for c in frame.columns)
            rows = "".join("<tr>" + "".join(f"<td>{e('' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<img alt="{e(block[2])}" src="{data_uri(block[1])}">')
    style = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:90%}"
             "th{background:#f3f3f3}img{max-width:100%}.lead{font-size:120%;font-weight:600}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stakeholder report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def build_report(inputs: ReportInputs) -> Report:
    """The report in Markdown and HTML, its decision, headline and the facts it was built from."""
    blocks, facts, decision, headline = _blocks(inputs)
    return Report(markdown=render_markdown(blocks), html=render_html(blocks), decision=decision, headline=headline, facts=facts)


def summary_markdown(report: Report, blocks_plot: bytes | None = None) -> str:
    """The short version for the asset's page: the headline and the key chart."""
    text = report.headline
    if blocks_plot:
        text += f"\n\n![key chart]({data_uri(blocks_plot)})"
    return text
