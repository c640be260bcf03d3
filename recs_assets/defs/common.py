"""Shared by the Dagster layer: plain summaries turned into UI metadata, and clear failures instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import polars as pl

from recs_assets.profiling import events_profile, markdown_table


# Four significant digits tell models and items apart; the 15 a float prints only hide the point.
SIGNIFICANT_DIGITS = 4
# Which columns of a table name an item, and the prefix its title and category get beside it.
ITEM_ID_COLUMNS = {"item_id": "", "similar_item_id": "similar_"}


def rounded(df: pl.DataFrame, digits: int = SIGNIFICANT_DIGITS) -> pl.DataFrame:
    """Every float column rounded to `digits` significant digits (for people; the stored table keeps all)."""
    return df.with_columns(pl.col(c).round_sig_figs(digits) for c, dtype in df.schema.items() if dtype.is_float())


def with_item_labels(df: pl.DataFrame, items: pl.DataFrame | None) -> pl.DataFrame:
    """Each item id column followed by that item's title and category, where the catalogue has them.

    A source without titles or categories (an events-only folder) adds no empty columns; an id missing
    from the catalogue gets nulls, never a dropped row.
    """
    if items is None:
        return df
    labels = [c for c in ("title", "category") if c in items.columns and items[c].null_count() < items.height]
    if not labels:
        return df
    catalogue = items.select("item_id", *labels).unique("item_id", keep="first")
    order = list(df.columns)
    for column, prefix in ITEM_ID_COLUMNS.items():
        if column not in df.columns:
            continue
        named = {label: f"{prefix}{label}" for label in labels}
        added = [name for name in named.values() if name not in df.columns]
        if not added:
            continue
        joined = catalogue.rename({"item_id": column, **named}).select(column, *added)
        df = df.join(joined.with_columns(pl.col(column).cast(df.schema[column])), on=column, how="left", maintain_order="left")
        at = order.index(column) + 1
        order[at:at] = added
    return df.select(order)


def significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """A number cut to `digits` significant digits: 0.11905237474682832 -> 0.1191."""
    return float(f"{value:.{digits}g}")


def percent(value: float | None, digits: int = 1) -> str:
    """A relative change as people read it: 0.106 -> "+10.6%" (n/a when unknown)."""
    if value is None or value != value:
        return "n/a"
    return f"{100 * value:+.{digits}f}%"


def preview(df: pl.DataFrame, rows: int = 5, items: pl.DataFrame | None = None) -> dg.MetadataValue:
    """The first rows as a Markdown table: items named by title and category (given the catalogue), floats to 4 digits."""
    return dg.MetadataValue.md(markdown_table(rounded(with_item_labels(df.head(rows), items)), rows))


def image(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline on the asset page (Markdown with a data URI: no file server needed)."""
    from recs_assets.experiments.plots import markdown_image

    return dg.MetadataValue.md(markdown_image(png, alt))


def leaderboard_chart(board: pl.DataFrame, metric: str, baseline: str = "popularity") -> bytes:
    """Each model's primary metric with its 95% interval (whiskers), best at the top, against the baseline's score."""
    from recs_assets.experiments.plots import plt, to_png

    rows = list(board.iter_rows(named=True))
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(rows)))
    base = next((r[metric] for r in rows if r["model"] == baseline), None)
    if base is not None:
        ax.axvline(base, color="#9e9e9e", linestyle="--", linewidth=1, label=f"{baseline} {base:.4g}")
    for y, row in enumerate(rows):
        value = row[metric]
        if value is None:
            continue
        colour = "#2e7d32" if y == 0 else "#757575" if row["model"] == baseline else "#1565c0"
        has_ci = row.get(low) is not None and row.get(high) is not None
        xerr = [[value - row[low]], [row[high] - value]] if has_ci else None
        ax.errorbar([value], [y], xerr=xerr, fmt="o", color=colour, capsize=4)
        lift = f"  {percent(value / base - 1)}" if base and row["model"] != baseline else ""
        ax.annotate(f"{value:.4g}{lift}", (row[high] if has_ci else value, y), xytext=(6, -3),
                    textcoords="offset points", fontsize=8, color=colour)
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.invert_yaxis()
    users = rows[0].get("evaluable_users") or rows[0].get("users")
    ax.set_xlabel(f"{metric} (95% CI" + (f", {users:,} test users)" if users else ")"))
    ax.set_title(f"Leaderboard: {metric} per model, best first")
    ax.margins(x=0.3)
    if base is not None:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6 / len(rows) - 0.12), frameon=False)
    return to_png(fig)


def metadata_history(instance: dg.DagsterInstance, asset: str, keys: tuple[str, ...], optional: tuple[str, ...] = (),
                     limit: int = 30) -> list[dict]:
    """The given metadata of an asset's latest materialisations, oldest first.

    Materialisations lacking one of `keys` (written before the key existed, or with nothing to show)
    are left out; a missing `optional` key reads None.
    """
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=limit).records
    history = []
    for record in reversed(records):
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if all(k in metadata for k in keys):
            history.append({"timestamp": record.timestamp, "run_id": record.run_id,
                            **{k: metadata[k].value if k in metadata else None for k in (*keys, *optional)}})
    return history


def trend_chart(points: list[dict], metric: str) -> bytes:
    """The leader's score run after run (with its interval) beside the baseline's: is the shop getting better?

    `points`: oldest first, each with `timestamp`, `leader`, `leader_score`, `leader_ci_low`,
    `leader_ci_high` and `baseline_score` (None when the baseline was not graded).
    """
    from datetime import datetime, timezone

    from recs_assets.experiments.plots import plt, to_png

    fig, ax = plt.subplots(figsize=(7, 2.8))
    runs = list(range(1, len(points) + 1))
    scores = [p["leader_score"] for p in points]
    errors = [[s - p["leader_ci_low"] for s, p in zip(scores, points)], [p["leader_ci_high"] - s for s, p in zip(scores, points)]]
    ax.errorbar(runs, scores, yerr=errors, fmt="-o", color="#2e7d32", capsize=3, label="leader (95% CI)")
    baseline = [p["baseline_score"] for p in points]
    if any(b is not None for b in baseline):
        ax.plot(runs, [float("nan") if b is None else b for b in baseline], "--s", color="#9e9e9e", label="popularity")
    for x, p in zip(runs, points):
        ax.annotate(p["leader"], (x, p["leader_ci_high"]), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(runs, [datetime.fromtimestamp(p["timestamp"], timezone.utc).strftime("%m-%d %H:%M") for p in points],
                  rotation=30, fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of the leader over the last {len(points)} runs")
    ax.legend(fontsize=8)
    return to_png(fig)


def events_metadata(events: pl.DataFrame) -> dict[str, dg.RawMetadataValue]:
    """Rows, users, items, sessions, event-type mix, date range and a preview."""
    profile = events_profile(events)
    return {
        "rows": dg.MetadataValue.int(profile["rows"]),
        "users": dg.MetadataValue.int(profile["users"]),
        "items": dg.MetadataValue.int(profile["items"]),
        "sessions": dg.MetadataValue.int(profile["sessions"]),
        "event_type_mix": dg.MetadataValue.json(profile["event_type_mix"]),
        "first_event_at": dg.MetadataValue.text(str(profile["first_event_at"])),
        "last_event_at": dg.MetadataValue.text(str(profile["last_event_at"])),
        "preview": preview(events),
    }


def schema_check_result(schema, df: pl.DataFrame, table: str) -> dg.AssetCheckResult:
    """Run a Pandera schema on a table; on failure, name each column and rule, with counts and sample rows."""
    # Imported here so that the presentation helpers above stay cheap to import.
    from recs_assets.validation.quarantine import schema_failures
    from recs_assets.validation.report import failing_rows, failures_by_rule

    failures = schema_failures(schema, df)
    if failures.height == 0:
        return dg.AssetCheckResult(
            passed=True,
            description=f"{table}: all {df.height:,} rows obey every rule",
            metadata={"rows_checked": dg.MetadataValue.int(df.height), "rules_broken": dg.MetadataValue.int(0)},
        )
    by_rule = failures_by_rule(failures)
    worst = by_rule.row(0, named=True)
    return dg.AssetCheckResult(
        passed=False,
        description=(
            f"{table}: {failures['_row'].n_unique()} row(s) break {by_rule.height} rule(s); "
            f"worst: {worst['rule']} ({worst['rows']} rows, e.g. {worst['example']})"
        ),
        metadata={
            "rows_checked": dg.MetadataValue.int(df.height),
            "rules_broken": dg.MetadataValue.int(by_rule.height),
            "failures_by_rule": dg.MetadataValue.md(markdown_table(by_rule, rows=20, width=80)),
            "sample_rows": dg.MetadataValue.md(markdown_table(failing_rows(failures, df), rows=5)),
        },
    )


def load_or_fail(table: str, load: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Call a source loader; a bad or missing input file fails the step with the loader's message."""
    try:
        return load()
    except (ValueError, FileNotFoundError) as error:
        raise dg.Failure(description=f"{table} could not be loaded: {error}") from None
