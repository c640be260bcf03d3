"""Session models on hand-made visits whose next item is known by construction."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.models.popularity import PopularityRecommender
from recs_assets.models.sequence_gru import GRU4RecRecommender
from recs_assets.models.sequences import Sequences
from recs_assets.models.session_knn import SessionKNNRecommender


def visits(*patterns: tuple[list[str], int]) -> pl.DataFrame:
    """Sessions (session_id, user_id, started_at, item_ids): each pattern repeated n times, each by its own shopper."""
    rows, n = [], 0
    for items, times in patterns:
        for _ in range(times):
            rows.append({"session_id": f"s{n:03d}", "user_id": f"anonymous:s{n:03d}", "started_at": n, "item_ids": items})
            n += 1
    return pl.DataFrame(rows)


def interactions_of(sessions: pl.DataFrame) -> pl.DataFrame:
    return (
        sessions.select("user_id", pl.col("item_ids").alias("item_id")).explode("item_id").unique()
        .with_columns(strength=pl.lit(1.0))
    )


# Two families of visits (A -> B -> C, D -> E -> F) and a flood of single looks at a bestseller Z, so
# popularity answers Z while the visit's own items point elsewhere.
FAMILIES = visits((["A", "B", "C"], 6), (["D", "E", "F"], 6), (["Z"], 30), (["Z", "Y"], 4))

SESSION_MODELS = {
    "v-sknn": lambda: SessionKNNRecommender(k=20),
    "sknn": lambda: SessionKNNRecommender(k=20, decay="none"),
    "gru4rec": lambda: GRU4RecRecommender(factors=16, epochs=40, batch_size=8, learning_rate=0.05, n_negatives=4, seed=1),
}


@pytest.mark.parametrize("name", SESSION_MODELS)
def test_each_session_model_ranks_the_known_next_item_first(name: str) -> None:
    model = SESSION_MODELS[name]().fit(interactions_of(FAMILIES), sequences=FAMILIES)
    ids, scores = model.recommend_for_sequence([["A", "B"], ["D", "E"]], 3)
    assert ids[0, 0] == "C" and ids[1, 0] == "F", ids
    assert not {"A", "B"} & set(ids[0]) and np.isfinite(scores).all()
    # ... where popularity, which ignores the visit, does not.
    popular = PopularityRecommender().fit(interactions_of(FAMILIES))
    assert popular.recommend(["nobody"], 1)[0][0, 0] == "Z"


def test_the_gru_knows_order_where_session_knn_cannot() -> None:
    # P then Q leads to R; Q then P leads to S: the same set, two different next items.
    ordered = visits((["P", "Q", "R"], 8), (["Q", "P", "S"], 8))
    gru = SESSION_MODELS["gru4rec"]().fit(interactions_of(ordered), sequences=ordered)
    ids, _ = gru.recommend_for_sequence([["P", "Q"], ["Q", "P"]], 1)
    assert ids[:, 0].tolist() == ["R", "S"]
    knn = SessionKNNRecommender(k=20, decay="none").fit(interactions_of(ordered), sequences=ordered)
    tied, scores = knn.recommend_for_sequence([["P", "Q"], ["Q", "P"]], 2)
    assert scores[0, 0] == scores[0, 1]  # as a set, both visits look the same


def test_an_unknown_or_empty_sequence_gets_the_popularity_fallback() -> None:
    model = SessionKNNRecommender().fit(interactions_of(FAMILIES), sequences=FAMILIES)
    ids, _ = model.recommend_for_sequence([[], ["never-seen"]], 2)
    expected = PopularityRecommender().fit(interactions_of(FAMILIES)).recommend(["nobody"], 2)[0][0].tolist()
    assert expected[0] == "Z" and ids.tolist() == [expected, expected]
    assert model.score_sequence(["never-seen"]) is None


def test_a_known_user_is_recommended_what_follows_their_latest_visit() -> None:
    history = pl.DataFrame({
        "session_id": ["old", "new"], "user_id": ["u1", "u1"], "started_at": [1, 2], "item_ids": [["D", "E"], ["A"]],
    })
    # Rows given newest first: the model orders them by started_at.
    sessions = pl.concat([FAMILIES, history.reverse()], how="diagonal_relaxed")
    model = SessionKNNRecommender(max_history=1).fit(interactions_of(sessions), sequences=sessions)
    assert model.recent_items("u1") == ["A"]
    ids, _ = model.recommend(["u1"], 2)
    assert set(ids[0]) == {"B", "C"}


def test_back_to_back_repeats_count_once() -> None:
    repeated = visits((["A", "A", "B", "B", "C"], 5))
    model = SessionKNNRecommender(max_history=5).fit(interactions_of(repeated), sequences=repeated)
    assert model.recent_items("anonymous:s000") == ["A", "B", "C"]


def test_numpy_scoring_matches_the_torch_network() -> None:
    torch = pytest.importorskip("torch")
    model = SESSION_MODELS["gru4rec"]().fit(interactions_of(FAMILIES), sequences=FAMILIES)
    w = {k: torch.from_numpy(v) for k, v in model._weights.items()}
    gru = torch.nn.GRU(model.factors, model.factors, batch_first=True)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
            getattr(gru, name).copy_(w[key])
        index = model._items_index()
        seq = [index["A"], index["B"]]
        hidden = gru(w["embedding"][torch.tensor([seq])])[0][0, -1]
        expected = (hidden @ w["out_w"].T + w["out_b"]).double().numpy()
    got = model._score_sequences(Sequences.from_lists([seq]))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "sequences,error,match",
    [
        (pl.DataFrame({"user_id": ["u"]}), ValueError, "item_ids"),
        (pl.DataFrame({"user_id": ["u"], "item_ids": ["A"]}), ValueError, "list"),
        ({"user_id": ["u"]}, TypeError, "DataFrame"),
    ],
)
def test_bad_sequences_are_refused_naming_the_problem(sequences, error, match) -> None:
    with pytest.raises(error, match=match):
        SessionKNNRecommender().fit(interactions_of(FAMILIES), sequences=sequences)


def test_a_single_string_is_not_a_list_of_sequences() -> None:
    model = SessionKNNRecommender().fit(interactions_of(FAMILIES), sequences=FAMILIES)
    with pytest.raises(TypeError, match="single string"):
        model.recommend_for_sequence("AB", 2)
    with pytest.raises(TypeError, match="single string"):
        model.recommend_for_sequence(["AB"], 2)


def test_bad_hyper_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="decay"):
        SessionKNNRecommender(decay="exponential")
    with pytest.raises(ValueError, match="categories"):
        GRU4RecRecommender(categories=1)
    with pytest.raises(ValueError, match="factors"):
        GRU4RecRecommender(factors=0)


def test_recent_per_row_keeps_each_rows_entries_with_the_largest_columns():
    import scipy.sparse as sp

    from recs_assets.models.session_knn import recent_per_row

    m = sp.csr_matrix(np.array([[1, 0, 2, 3, 4], [0, 5, 0, 0, 0], [0, 0, 0, 0, 0], [6, 7, 0, 0, 8]], dtype=float))
    assert recent_per_row(m, 2).toarray().tolist() == [[0, 0, 0, 3, 4], [0, 5, 0, 0, 0], [0, 0, 0, 0, 0], [0, 7, 0, 0, 8]]
    assert recent_per_row(m, 3).toarray().tolist() == [[0, 0, 2, 3, 4], [0, 5, 0, 0, 0], [0, 0, 0, 0, 0], [6, 7, 0, 0, 8]]
    assert recent_per_row(m, None).toarray().tolist() == m.toarray().tolist() == recent_per_row(m, 4).toarray().tolist()


def test_a_visit_is_compared_only_with_the_most_recent_past_visits_of_its_items():
    # A -> B long ago (ten visits), then A -> C in the ten most recent: with a sample of the ten newest
    # visits per item, the old habit is out of reach (B scores 0); comparing every visit, B and C tie.
    history = visits((["A", "B"], 10), (["A", "C"], 10))
    recent = SessionKNNRecommender(k=50, sample_size=10).fit(interactions_of(history), sequences=history)
    ids, scores = recent.recommend_for_sequence([["A"]], 2)
    assert ids[0].tolist() == ["C", "B"] and scores[0, 0] > 0 and scores[0, 1] == 0
    everything = SessionKNNRecommender(k=50, sample_size=None).fit(interactions_of(history), sequences=history)
    ids, scores = everything.recommend_for_sequence([["A"]], 2)
    assert set(ids[0]) == {"B", "C"} and scores[0, 0] == scores[0, 1] > 0
    with pytest.raises(ValueError, match="sample_size"):
        SessionKNNRecommender(sample_size=0)
