"""The stakeholder report says the decision and the numbers it was built from, in both formats, and what does not apply."""

from __future__ import annotations

import polars as pl

from recs_assets.experiments.plots import effect_plot
from recs_assets.reports.stakeholder import ReportInputs, build_report

AB = pl.DataFrame({
    "control": ["ease", "popularity", "popularity"], "treatment": ["als", "ease", "als"],
    "decision": ["ship", "ship", "ship"], "reason": ["r"] * 3, "primary_metric": ["revenue_per_session"] * 3,
    "lift": [0.0612, 0.2034, 0.2770], "lift_low": [0.0213, 0.15, 0.2], "lift_high": [0.1011, 0.25, 0.35],
    "p_value": [0.003, 0.0001, 0.0001], "mde": [0.041, 0.04, 0.04], "users_control": [1500, 1490, 1490],
    "users_treatment": [1510, 1500, 1510], "srm_mismatch": [False] * 3, "coverage_control": [0.31, 0.05, 0.05],
})
CHAMPION = {"champion": "ease", "version": 3, "promoted": False, "reason": "kept: challenger not significantly better",
            "primary_metric": "ndcg@10", "score": 0.0412, "baseline_score": 0.0300}
DATA = {"rows": 1_000_000, "users": 3000, "items": 500, "first_day": "2026-09-01", "last_day": "2026-09-30"}


def inputs(**overrides) -> ReportInputs:
    base = dict(source="simulator:games", data=DATA, champion=CHAMPION,
                leaderboard=pl.DataFrame({"model": ["ease", "als"], "ndcg@10": [0.0412, 0.0400]}),
                ab=AB, ab_plot=effect_plot(AB, "revenue per session"),
                agreement={"kendall_tau": 0.6, "models": ["ease", "als", "popularity"], "discordant": [("ease", "als")]},
                bandit_reason="test", ope_reason="no propensities", risks={"coverage": 0.31, "cold_start_share": 0.12})
    return ReportInputs(**{**base, **overrides})


def test_report_states_the_decision_and_its_numbers_in_markdown_and_html():
    report = build_report(inputs())
    assert report.decision == "ship"
    for text in (report.markdown, report.html):
        assert "SHIP als in place of ease" in text
        assert "+6.1%" in text and "+2.1% to +10.1%" in text  # the lift and its interval
        assert "+20.3%" in text  # champion against popularity
        assert "+37.3%" in text  # offline ndcg against popularity, relative
        assert "tau = 0.60" in text and "ease above als offline, below online" in text
        assert "31.0%" in text and "12.0%" in text  # coverage and cold-start share
        assert "data:image/png;base64," in text
    assert report.facts["ab"]["lift"] == 0.0612
    assert report.html.startswith("<!doctype html>")


def test_parts_that_do_not_apply_say_so_with_their_reason():
    report = build_report(inputs(ab=None, ab_plot=None, agreement=None, ab_reason="source steam_200k has no simulator"))
    assert report.decision == "not applicable"
    assert "not applicable: source steam_200k has no simulator" in report.markdown
    assert "Off-policy estimates: not applicable: no propensities" in report.markdown


def test_what_changed_compares_with_the_previous_facts():
    first = build_report(inputs())
    second = build_report(inputs(data={**DATA, "rows": 1_000_500}, champion={**CHAMPION, "champion": "als", "version": 1},
                                 previous=first.facts))
    assert "First report" in first.markdown
    assert "+500 since the last run" in second.markdown
    assert "ease v3 -> als v1" in second.markdown
