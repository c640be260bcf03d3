"""The experiment charts as PNG images (Matplotlib, no display needed), ready for Markdown or HTML as data URIs."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: the charts are files and data URIs, never windows

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

_COLOURS = {"ship": "#2e7d32", "don't ship": "#c62828", "inconclusive": "#757575"}


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}]({data_uri(png)})"


def effect_plot(results: pl.DataFrame, metric_label: str) -> bytes:
    """Each comparison's relative lift on the primary metric with its 95% interval, coloured by the decision."""
    rows = list(results.iter_rows(named=True))
    fig, ax = plt.subplots(figsize=(7, 0.7 + 0.6 * len(rows)))
    for y, row in enumerate(rows):
        colour = _COLOURS.get(row["decision"], "#1565c0")
        ax.errorbar([100 * row["lift"]], [y], xerr=[[100 * (row["lift"] - row["lift_low"])], [100 * (row["lift_high"] - row["lift"])]],
                    fmt="o", color=colour, capsize=4)
        ax.annotate(f"{100 * row['lift']:+.1f}%  {row['decision']}", (100 * row["lift_high"], y), xytext=(6, -3),
                    textcoords="offset points", fontsize=8, color=colour)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['treatment']} vs {r['control']}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"relative change in {metric_label} (%), 95% CI")
    ax.set_title("Simulated A/B tests")
    ax.margins(x=0.35)
    return to_png(fig)


def regret_plot(curves: pl.DataFrame) -> bytes:
    """Cumulative regret and reward per round for each bandit policy."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for policy in curves["policy"].unique(maintain_order=True).to_list():
        part = curves.filter(pl.col("policy") == policy)
        left.plot(part["round"], part["cumulative_regret"], label=policy)
        right.plot(part["round"], part["cumulative_reward"], label=policy)
    left.set(title="Cumulative regret (lower is better)", xlabel="sessions")
    right.set(title="Cumulative purchases", xlabel="sessions")
    left.legend(fontsize=8)
    return to_png(fig)


def ope_plot(table: pl.DataFrame, title: str) -> bytes:
    """Each estimator's value with its 95% interval, against the true value (band)."""
    rows = list(table.iter_rows(named=True))
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.5 * len(rows)))
    truth = rows[0]["truth"]
    if rows[0].get("truth_low") is not None:
        ax.axvspan(rows[0]["truth_low"], rows[0]["truth_high"], color="#c8e6c9", label="true value (95% CI)")
    ax.axvline(truth, color="#2e7d32")
    for y, row in enumerate(rows):
        ax.errorbar([row["estimate"]], [y], xerr=[[row["estimate"] - row["ci_low"]], [row["ci_high"] - row["estimate"]]], fmt="o", capsize=4, color="#1565c0")
    ax.set_yticks(range(len(rows)), [r["estimator"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("click rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return to_png(fig)
