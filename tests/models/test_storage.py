"""One registry of model kinds; saved model folders name a kind from it and can never pick code to import."""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl
import pytest

from recs_assets.models import MODELS, REGISTRY, EASERecommender, ItemKNNRecommender, LightGBMRanker, Recommender, model_class
from recs_assets.models.storage import load_model_folder, save_model_folder
from tests.models.conftest import INTERACTIONS, USERS, same


def test_models_are_the_candidate_generators_of_the_registry_in_order():
    assert list(MODELS)[:5] == ["popularity", "item_knn", "ease", "als", "bpr"]
    assert {"content", "two_tower"} <= set(MODELS)
    assert all(REGISTRY[name] is cls for name, cls in MODELS.items())
    assert REGISTRY["ranker"] is LightGBMRanker
    assert all(cls.name == name for name, cls in REGISTRY.items())
    with pytest.raises(TypeError):
        MODELS["mine"] = ItemKNNRecommender  # a read-only view: registering happens in registry.py


def test_an_unknown_name_is_a_clear_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'knn'; known models: popularity, item_knn"):
        model_class("knn")


def test_a_model_folder_round_trips_and_names_its_kind(tmp_path):
    model = ItemKNNRecommender(k=3).fit(INTERACTIONS)
    save_model_folder(model, tmp_path / "item_knn_model")
    assert json.loads((tmp_path / "item_knn_model" / "model.json").read_text()) == {"format": 1, "model": "item_knn"}
    loaded = load_model_folder(tmp_path / "item_knn_model")
    assert type(loaded) is ItemKNNRecommender and loaded.params() == model.params()
    assert same(loaded.recommend(USERS, 4), model.recommend(USERS, 4))


def test_folders_written_before_the_registry_still_load(tmp_path):
    folder = tmp_path / "ease_model"
    save_model_folder(EASERecommender(l2=10.0).fit(INTERACTIONS), folder)
    (folder / "model.json").write_text(json.dumps({"class": "recs_assets.models.ease.EASERecommender"}))
    assert type(load_model_folder(folder)) is EASERecommender


@pytest.mark.parametrize(
    "description",
    [{"class": "tests.models.evil.Payload"}, {"model": "os.system"}, {"model": None}, ["ease"]],
)
def test_a_tampered_model_json_is_refused_without_importing_anything(tmp_path, description):
    folder = tmp_path / "model"
    save_model_folder(EASERecommender(l2=10.0).fit(INTERACTIONS), folder)
    (folder / "model.json").write_text(json.dumps(description))
    before = set(sys.modules)
    with pytest.raises(ValueError, match="model"):
        load_model_folder(folder)
    assert set(sys.modules) - before == set()


def test_an_unregistered_class_cannot_be_saved(tmp_path):
    class Homemade(ItemKNNRecommender):
        name = "homemade"

    with pytest.raises(ValueError, match="not a registered model"):
        save_model_folder(Homemade().fit(INTERACTIONS), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_loading_a_model_as_the_wrong_class_is_refused(tmp_path):
    path = tmp_path / "knn.npz"
    ItemKNNRecommender().fit(INTERACTIONS).save(path)
    with pytest.raises(TypeError, match="item_knn"):
        EASERecommender.load(path)
    assert type(Recommender.load(path)) is ItemKNNRecommender


# --- the LightGBM re-ranker: LightGBM's own text format, no pickle --------------------------------------


def ranking_frame(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, per_user = 60, 20
    signal = rng.random(n_users * per_user)
    return pl.DataFrame(
        {
            "user_id": np.repeat([f"u{u}" for u in range(n_users)], per_user),
            "item_id": np.tile([f"i{i}" for i in range(per_user)], n_users),
            "signal": signal,
            "noise": rng.random(n_users * per_user),
            "label": (signal > 0.8).astype(np.int32),
        }
    )


def test_the_ranker_is_saved_as_json_with_lightgbms_text_model_and_scores_identically(tmp_path):
    frame = ranking_frame()
    ranker = LightGBMRanker(n_estimators=20, min_child_samples=5).fit(frame)
    save_model_folder(ranker, tmp_path / "ranker_model")
    saved = json.loads((tmp_path / "ranker_model" / "model.bin").read_text())
    assert saved["lightgbm_model"].startswith("tree\n")  # LightGBM's own text format
    assert saved["features"] == ["signal", "noise"] and saved["params"] == ranker.params()
    loaded = load_model_folder(tmp_path / "ranker_model")
    assert type(loaded) is LightGBMRanker and loaded.features == ranker.features
    assert np.array_equal(loaded.score(frame), ranker.score(frame))
    assert loaded.importance() == ranker.importance()


def test_a_ranker_file_that_is_not_a_saved_ranker_is_refused(tmp_path):
    path = tmp_path / "ranker.bin"
    path.write_bytes(b"\x80\x04\x95 a pickle, not a ranker")
    with pytest.raises(ValueError, match="not a saved ranker"):
        LightGBMRanker.load(path)
    path.write_text(json.dumps({"format": 99, "name": "ranker"}))
    with pytest.raises(ValueError, match="format"):
        LightGBMRanker.load(path)


def test_an_unfitted_ranker_cannot_be_saved(tmp_path):
    with pytest.raises(RuntimeError, match="fitted"):
        LightGBMRanker().save(tmp_path / "r.bin")


def test_no_pickle_anywhere_in_the_models_package():
    from pathlib import Path

    import recs_assets.models as package

    for source in Path(package.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text and "pickle.load" not in text, source.name
