"""One contract every model passes, on the checkerboard (tests/models/conftest.py), whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from recs_assets.models import (
    REGISTRY,
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
)
from tests.models.conftest import (
    CATEGORIES,
    INTERACTIONS,
    ITEMS,
    ITEMS_PER_GROUP,
    SEEN,
    USERS,
    group_of,
    missing_items,
    popularity_order,
    same,
)

class ModelContract:
    """Every model passes these. Subclasses say how to build the model for tiny data."""

    personalised = True

    def make_model(self) -> Recommender:
        raise NotImplementedError

    def fitted(self, **fit_kwargs) -> Recommender:
        fit_kwargs.setdefault("item_categories", CATEGORIES)
        return self.make_model().fit(INTERACTIONS, **fit_kwargs)

    # the known right answer

    def test_recommends_the_unseen_items_of_the_users_own_block(self):
        model = self.fitted()
        ids, scores = model.recommend(USERS, 2)
        for user, row in zip(USERS, ids, strict=True):
            if self.personalised:
                expected = missing_items(group_of(user), int(user[1:]))
            else:
                expected = set([i for i in popularity_order(INTERACTIONS) if i not in SEEN[user]][:2])
            assert set(row) == expected, user

    def test_similar_items_excludes_the_item_itself_and_stays_in_its_block(self):
        model = self.fitted()
        ids, scores = model.similar_items(ITEMS, 3)
        assert ids.shape == (len(ITEMS), 3)
        for item, row in zip(ITEMS, ids, strict=True):
            assert item not in row
            assert all(other is not None and other[0] == item[0] for other in row), (item, row)

    def test_similar_items_of_an_unknown_item_is_padding(self):
        ids, scores = self.fitted().similar_items(["nope", "A1"], 2)
        assert list(ids[0]) == [None, None] and np.isnan(scores[0]).all()
        assert ids[1, 0] is not None

    # shapes, ordering, padding

    @pytest.mark.parametrize("N", [1, 3, 5])
    def test_list_length_dtypes_and_best_first(self, N):
        ids, scores = self.fitted().recommend(USERS, N)
        assert ids.shape == scores.shape == (len(USERS), N)
        assert ids.dtype == object and scores.dtype == np.float64
        assert all(isinstance(i, str) for i in ids.ravel())
        assert (np.diff(scores, axis=1) <= 0).all()

    def test_pads_with_none_and_nan_when_items_run_out(self):
        n_items = len(ITEMS)
        ids, scores = self.fitted().recommend(["a0"], n_items + 3)
        n_left = n_items - len(SEEN["a0"])
        assert all(isinstance(i, str) for i in ids[0, :n_left])
        assert list(ids[0, n_left:]) == [None] * (n_items + 3 - n_left)
        assert np.isnan(scores[0, n_left:]).all() and np.isfinite(scores[0, :n_left]).all()

    def test_rows_follow_the_requested_users_in_order(self):
        model = self.fitted()
        forward = model.recommend(["a1", "b2", "a3"], 3)
        backward = model.recommend(["a3", "b2", "a1"], 3)
        assert np.array_equal(forward[0], backward[0][::-1])

    # what may be shown

    def test_seen_items_are_excluded(self):
        ids, _ = self.fitted().recommend(USERS, len(ITEMS))
        for user, row in zip(USERS, ids, strict=True):
            assert not SEEN[user] & set(row)

    def test_seen_items_are_included_when_asked(self):
        ids, scores = self.fitted().recommend(USERS, len(ITEMS), exclude_seen=False)
        for user, row in zip(USERS, ids, strict=True):
            assert set(row) == set(ITEMS), user
        if self.personalised:
            # the user's own block fills the top of the list
            for user, row in zip(USERS, ids, strict=True):
                assert {i[0] for i in row[:ITEMS_PER_GROUP]} == {group_of(user)}, (user, row)

    def test_unavailable_items_are_never_returned(self):
        unavailable = {"A0", "A3", "B5"}
        available = [i for i in ITEMS if i not in unavailable] + ["brand_new"]
        model = self.fitted(available_item_ids=available)
        assert model.n_unseen_available_items == 1  # "brand_new" was never interacted with
        for exclude_seen in (True, False):
            ids, _ = model.recommend(USERS + ["nobody"], len(ITEMS), exclude_seen=exclude_seen)
            assert not unavailable & set(ids.ravel())
            assert "brand_new" not in set(ids.ravel())
        sims, _ = model.similar_items(ITEMS, len(ITEMS))
        assert not unavailable & set(sims.ravel())

    def test_availability_can_change_without_refitting(self):
        model = self.fitted()
        before = model.recommend(USERS, 3)
        model.set_available_items([i for i in ITEMS if i != "A0"])
        ids, _ = model.recommend(USERS, 3)
        assert "A0" not in set(ids.ravel())
        model.set_available_items(None)
        assert same(model.recommend(USERS, 3), before)

    # cold users

    def test_unknown_users_get_the_popularity_fallback(self):
        model = self.fitted(available_item_ids=[i for i in ITEMS if i != "A2"])
        ids, scores = model.recommend(["nobody", "a1", "nobody_else"], 4)
        expected = popularity_order(INTERACTIONS, allowed=set(ITEMS) - {"A2"})[:4]
        assert list(ids[0]) == expected and list(ids[2]) == expected
        assert np.isfinite(scores[0]).all()
        assert model.is_known_user(["nobody", "a1", "nobody_else"]).tolist() == [False, True, False]

    # input checks

    @pytest.mark.parametrize("N", [0, -2, 2.5, True, None, "3"])
    def test_bad_N_is_a_value_error_naming_N(self, N):
        model = self.fitted()
        with pytest.raises(ValueError, match="N"):
            model.recommend(["a0"], N)
        with pytest.raises(ValueError, match="N"):
            model.similar_items(["A0"], N)

    def test_empty_user_list(self):
        ids, scores = self.fitted().recommend([], 5)
        assert ids.shape == scores.shape == (0, 5)

    def test_a_single_string_is_not_a_list_of_users(self):
        with pytest.raises(TypeError, match="single string"):
            self.fitted().recommend("a0", 3)

    def test_unfitted_model_says_so(self):
        with pytest.raises(RuntimeError, match="fit"):
            self.make_model().recommend(["a0"], 3)

    # reproducibility and persistence

    def test_two_fits_give_identical_output(self):
        first, second = self.fitted(), self.fitted()
        assert same(first.recommend(USERS + ["nobody"], 5), second.recommend(USERS + ["nobody"], 5))
        assert same(first.similar_items(ITEMS, 3), second.similar_items(ITEMS, 3))

    def test_input_row_order_does_not_matter(self):
        shuffled = INTERACTIONS.sample(fraction=1.0, shuffle=True, seed=5)
        first = self.fitted()
        second = self.make_model().fit(shuffled, item_categories=CATEGORIES)
        assert same(first.recommend(USERS, 5), second.recommend(USERS, 5))

    def test_duplicate_pairs_are_summed(self):
        halves = pl.concat(
            [INTERACTIONS.with_columns(pl.col("strength") / 2), INTERACTIONS.with_columns(pl.col("strength") / 2)]
        )
        first = self.fitted()
        second = self.make_model().fit(halves, item_categories=CATEGORIES)
        assert np.array_equal(first.recommend(USERS, 5)[0], second.recommend(USERS, 5)[0])

    def test_save_and_load_round_trip(self, tmp_path):
        model = self.fitted(available_item_ids=[i for i in ITEMS if i != "B1"])
        path = tmp_path / "models" / f"{model.name}.npz"
        model.save(path)
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
        for loader in (type(model), Recommender):
            loaded = loader.load(path)
            assert type(loaded) is type(model)
            assert loaded.params() == model.params()
            assert loaded.fit_seconds == model.fit_seconds
            assert loaded.training_loss == model.training_loss
            assert loaded.fit_notes == model.fit_notes
            for exclude_seen in (True, False):
                users = USERS + ["nobody"]
                assert same(loaded.recommend(users, 6, exclude_seen), model.recommend(users, 6, exclude_seen))
            assert same(loaded.similar_items(ITEMS + ["nope"], 4), model.similar_items(ITEMS + ["nope"], 4))

    def test_small_batches_give_the_same_answer(self, monkeypatch):
        model = self.fitted()
        expected = model.recommend(USERS, 4), model.similar_items(ITEMS, 3)
        monkeypatch.setattr(type(model), "batch_size", 3)
        assert same(model.recommend(USERS, 4), expected[0])
        assert same(model.similar_items(ITEMS, 3), expected[1])

    def test_dense_score_blocks_stay_within_the_cell_budget(self, monkeypatch):
        model = self.fitted()
        expected = model.recommend(USERS, 4)
        cells = 2 * model.n_items  # room for two users per block
        monkeypatch.setattr(type(model), "score_block_cells", cells)
        sizes = []
        score_users = type(model)._score_users

        def recording(self, user_idx):
            block = score_users(self, user_idx)
            sizes.append(block.size)
            return block

        monkeypatch.setattr(type(model), "_score_users", recording)
        assert same(model.recommend(USERS, 4), expected)
        assert sizes and max(sizes) <= cells

    # metadata

    def test_name_params_and_fit_time(self):
        model = self.fitted()
        assert REGISTRY[model.name] is type(model)
        params = model.params()
        assert params and all(isinstance(v, (int, float, str)) for v in params.values())
        assert type(model)(**params).params() == params
        assert model.fit_seconds is not None and model.fit_seconds > 0
        assert isinstance(model.fit_notes, dict) and json.loads(json.dumps(model.fit_notes)) == model.fit_notes


class TestPopularity(ModelContract):
    personalised = False

    def make_model(self):
        return PopularityRecommender()


class TestItemKNN(ModelContract):
    def make_model(self):
        return ItemKNNRecommender()


class TestEASE(ModelContract):
    def make_model(self):
        return EASERecommender(l2=10.0)


class TestALS(ModelContract):
    def make_model(self):
        return ALSRecommender(factors=8, regularization=0.1, alpha=1.0, iterations=15, seed=3)


class TestBPR(ModelContract):
    def make_model(self):
        return BPRRecommender(factors=8, learning_rate=0.05, regularization=0.01, iterations=300, seed=3)


class TestEASEApproximated(ModelContract):
    """EASE above max_dense_items: exact on the 4 most popular items, first-order sparse for the rest."""

    def make_model(self):
        return EASERecommender(l2=10.0, max_dense_items=4)



class TestSessionKNN(ModelContract):
    """V-SKNN: without sequences each user's items are one visit, so the checkerboard's blocks are its answer."""

    def make_model(self):
        from recs_assets.models.session_knn import SessionKNNRecommender

        return SessionKNNRecommender(k=20)


class TestSKNN(ModelContract):
    def make_model(self):
        from recs_assets.models.session_knn import SessionKNNRecommender

        return SessionKNNRecommender(k=20, decay="none")


class TestGRU4Rec(ModelContract):
    def make_model(self):
        from recs_assets.models.sequence_gru import GRU4RecRecommender

        return GRU4RecRecommender(factors=16, epochs=25, batch_size=16, learning_rate=0.1, n_negatives=12, seed=3)


class TestContent(ModelContract):
    """Category is the checkerboard's only attribute: the content profile is the user's block."""

    def make_model(self):
        from recs_assets.models.content import ContentRecommender

        return ContentRecommender()


class TestTwoTower(ModelContract):
    def make_model(self):
        from recs_assets.models.two_tower import TwoTowerRecommender

        return TwoTowerRecommender(dim=16, epochs=30, batch_size=16, learning_rate=0.02, seed=3, threads=1)
