"""User segments and new-item evaluation: hand-computed toys, every edge case by name."""

from __future__ import annotations

import math

import polars as pl
import pytest

from recs_assets.contract import ANONYMOUS_USER_PREFIX
from recs_assets.evaluation.metrics import evaluate
from recs_assets.evaluation.segments import (
    evaluate_by_segment,
    evaluate_on_new_items,
    new_item_truth_share,
    segment_labels,
    user_history_segments,
    users_per_segment,
)


def recs(rows: dict[str, list[str | None]]) -> pl.DataFrame:
    out = [(u, item, r) for u, items in rows.items() for r, item in enumerate(items, start=1)]
    schema = {"user_id": pl.String, "item_id": pl.String, "rank": pl.Int64}
    return pl.DataFrame(out, schema=schema, orient="row")


def pairs(rows: dict[str, list[str]]) -> pl.DataFrame:
    out = [(u, item) for u, items in rows.items() for item in items]
    return pl.DataFrame(out, schema={"user_id": pl.String, "item_id": pl.String}, orient="row")


def as_dict(segments: pl.DataFrame) -> dict[str, str]:
    return dict(zip(segments["user_id"].to_list(), segments["segment"].cast(pl.String).to_list()))


# --- segment labels and history segments ---------------------------------------------------------


def test_default_segment_labels():
    assert segment_labels() == ["new shopper", "1-4", "5-19", "20+"]


def test_segment_labels_for_single_count_bins():
    assert segment_labels((0, 1, 2, 3)) == ["new shopper", "1", "2", "3+"]
    assert segment_labels((0, 5)) == ["0-4", "5+"]


@pytest.mark.parametrize("bins", [(1, 5), (0, 5, 5), (0, 5, 3), ()])
def test_bad_bins_are_rejected(bins):
    with pytest.raises(ValueError, match="bins"):
        segment_labels(bins)


def test_segment_boundaries_fall_on_the_bin_edges():
    # u0 absent from training; u1 1 item; u4 4; u5 5; u19 19; u20 20 distinct items.
    counts = {"u1": 1, "u4": 4, "u5": 5, "u19": 19, "u20": 20}
    train = pairs({u: [f"i{j}" for j in range(n)] for u, n in counts.items()})
    seg = user_history_segments(train, ["u0", "u1", "u4", "u5", "u19", "u20"])
    assert as_dict(seg) == {
        "u0": "new shopper", "u1": "1-4", "u4": "1-4", "u5": "5-19", "u19": "5-19", "u20": "20+",
    }


def test_history_counts_distinct_items_not_interactions():
    train = pairs({"u": ["a"] * 7})
    assert as_dict(user_history_segments(train, ["u"])) == {"u": "1-4"}


def test_history_segments_keep_user_order_and_drop_repeats_and_nulls():
    train = pairs({"b": ["x"]})
    seg = user_history_segments(train, pl.Series(["b", "a", "b", None]))
    assert seg["user_id"].to_list() == ["b", "a"]
    assert seg.columns == ["user_id", "segment"]


def test_history_segment_is_an_ordered_enum():
    seg = user_history_segments(pairs({"h": [str(i) for i in range(25)]}), ["h", "c"])
    assert seg.schema["segment"] == pl.Enum(["anonymous", "new shopper", "1-4", "5-19", "20+"])
    assert seg.sort("segment")["user_id"].to_list() == ["c", "h"]


def test_anonymous_shoppers_are_their_own_segment_whatever_their_history():
    session = f"{ANONYMOUS_USER_PREFIX}s1"
    lookalike = "anonymous-fan"  # not the prefix: a registered user whose name merely starts alike
    train = pairs({session: ["a", "b"], lookalike: ["a"]})
    seg = user_history_segments(train, [session, f"{ANONYMOUS_USER_PREFIX}s2", lookalike, "new"])
    assert as_dict(seg) == {
        session: "anonymous", f"{ANONYMOUS_USER_PREFIX}s2": "anonymous", lookalike: "1-4", "new": "new shopper",
    }
    assert users_per_segment(seg) == {"anonymous": 2, "new shopper": 1, "1-4": 1}


def test_users_only_in_training_are_not_segmented():
    assert user_history_segments(pairs({"x": ["a"]}), ["y"])["user_id"].to_list() == ["y"]


def test_history_segments_with_custom_bins():
    train = pairs({"u": ["a", "b"]})
    assert as_dict(user_history_segments(train, ["u", "v"], bins=(0, 2))) == {"u": "2+", "v": "0-1"}


# --- evaluate_by_segment -------------------------------------------------------------------------

# Four users, k = 2. Training: u1 none, u2 and u3 two items, u4 five items.
TOY_TRAIN = pairs({"u2": ["p", "q"], "u3": ["p", "r"], "u4": ["p", "q", "r", "s", "t"]})
TOY_RECS = recs({"u1": ["a", "b"], "u2": ["a", "c"], "u3": ["b", "c"], "u4": ["d", "e"]})
# precision@2: u1 1 hit -> 0.5, u2 0 -> 0.0, u3 2 hits -> 1.0, u4 0 -> 0.0.
TOY_TRUTH = pairs({"u1": ["a"], "u2": ["x"], "u3": ["b", "c"], "u4": ["z"]})


def toy_segments() -> pl.DataFrame:
    return user_history_segments(TOY_TRAIN, ["u1", "u2", "u3", "u4"])


def test_evaluate_by_segment_hand_computed_precision():
    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, toy_segments(), k=2)
    assert out["segment"].to_list() == ["new shopper", "1-4", "5-19", "all"]
    assert out["users"].to_list() == [1, 2, 1, 4]
    assert out["precision@2"].to_list() == pytest.approx([0.5, 0.5, 0.0, 0.375])
    assert out["users_evaluated"].to_list() == [1, 2, 1, 4]


def test_evaluate_by_segment_all_row_matches_plain_evaluate():
    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, toy_segments(), k=2)
    overall = evaluate(TOY_RECS, TOY_TRUTH, 2)
    row = out.filter(pl.col("segment") == "all").row(0, named=True)
    assert all(row[name] == pytest.approx(value) for name, value in overall.items())


def test_the_all_row_can_cover_only_the_users_with_a_history():
    # u1 is a new shopper (no training history): graded in its own row, left out of the headline.
    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, toy_segments(), k=2, overall_users=["u2", "u3", "u4"])
    assert out["segment"].to_list() == ["new shopper", "1-4", "5-19", "all"]
    assert out["users"].to_list() == [1, 2, 1, 3]
    assert out["precision@2"].to_list() == pytest.approx([0.5, 0.5, 0.0, 1 / 3])


def test_evaluate_by_segment_takes_any_metric_function():
    seen = []

    def count_users(r: pl.DataFrame, t: pl.DataFrame) -> dict[str, float]:
        seen.append(sorted(r["user_id"].unique().to_list()))
        return {"truth_rows": float(t.height)}

    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, toy_segments(), k=2, metric_fn=count_users)
    assert out.columns == ["segment", "users", "truth_rows"]
    assert out["truth_rows"].to_list() == [1.0, 3.0, 1.0, 5.0]
    assert seen[1] == ["u2", "u3"]


def test_evaluate_by_segment_leaves_out_unsegmented_users():
    seg = pl.DataFrame({"user_id": ["u1", "u3"], "segment": ["one", "three"]})
    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, seg, k=2)
    assert out["segment"].to_list() == ["one", "three", "all"]  # first-appearance order for strings
    assert out["precision@2"].to_list() == pytest.approx([0.5, 1.0, 0.75])


def test_evaluate_by_segment_segment_without_truth_is_nan():
    seg = pl.DataFrame({"user_id": ["u1", "nobody"], "segment": ["a", "b"]})
    out = evaluate_by_segment(TOY_RECS, TOY_TRUTH, seg, k=2)
    row = out.filter(pl.col("segment") == "b").row(0, named=True)
    assert row["users"] == 1 and row["users_evaluated"] == 0 and math.isnan(row["precision@2"])


def test_evaluate_by_segment_rejects_a_user_in_two_segments():
    seg = pl.DataFrame({"user_id": ["u1", "u1"], "segment": ["a", "b"]})
    with pytest.raises(ValueError, match="more than one segment"):
        evaluate_by_segment(TOY_RECS, TOY_TRUTH, seg, k=2)


def test_evaluate_by_segment_rejects_a_segment_called_all():
    seg = pl.DataFrame({"user_id": ["u1"], "segment": ["all"]})
    with pytest.raises(ValueError, match="reserved"):
        evaluate_by_segment(TOY_RECS, TOY_TRUTH, seg, k=2)


# --- new items -----------------------------------------------------------------------------------


def test_new_item_truth_share_counts_pairs_on_unseen_items():
    truth = pairs({"u1": ["old", "new1"], "u2": ["new2", "old"]})
    assert new_item_truth_share(truth, ["old", "other"]) == pytest.approx(2 / 4)


def test_new_item_truth_share_counts_duplicate_pairs_once():
    truth = pairs({"u1": ["new", "new", "old"]})
    assert new_item_truth_share(truth, pl.Series(["old"])) == pytest.approx(1 / 2)


def test_new_item_truth_share_is_zero_when_everything_was_seen():
    assert new_item_truth_share(pairs({"u": ["a"]}), ["a"]) == 0.0


def test_new_item_truth_share_of_empty_truth_is_nan():
    assert math.isnan(new_item_truth_share(pairs({}), ["a"]))


def test_evaluate_on_new_items_only_counts_truth_on_new_items():
    # u1 wanted old "a" (shown) and new "n" (shown 2nd); u2 wanted only old items -> not evaluated.
    r = recs({"u1": ["a", "n"], "u2": ["a", "b"]})
    truth = pairs({"u1": ["a", "n"], "u2": ["a"]})
    out = evaluate_on_new_items(r, truth, ["a", "b"], k=2)
    assert out["users_evaluated"] == 1
    assert out["precision@2"] == pytest.approx(0.5)
    assert out["recall@2"] == pytest.approx(1.0)
    assert out["mrr@2"] == pytest.approx(0.5)


def test_evaluate_on_new_items_is_nan_when_no_user_has_new_truth():
    out = evaluate_on_new_items(recs({"u1": ["a"]}), pairs({"u1": ["a"]}), ["a"], k=2)
    assert out["users_evaluated"] == 0
    assert all(math.isnan(v) for name, v in out.items() if name != "users_evaluated")


def test_evaluate_on_new_items_keeps_the_gain_column():
    r = recs({"u1": ["n1", "n2"]})
    truth = pl.DataFrame({"user_id": ["u1", "u1"], "item_id": ["n2", "n1"], "gain": [3.0, 1.0]})
    out = evaluate_on_new_items(r, truth, [], k=2)
    assert out["ndcg@2"] == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
