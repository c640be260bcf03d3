"""MLflow in the home folder: a SQLite tracking database and artifacts beside it, no server needed."""

from __future__ import annotations

from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import pandas as pd

from recs_assets.layout import HomeLayout

EXPERIMENT = "recs_assets"


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{HomeLayout(Path(home).resolve()).mlflow_db}"


def artifact_root(home: Path) -> Path:
    return HomeLayout(Path(home).resolve()).mlflow_artifacts


def ensure_experiment(home: Path, name: str = EXPERIMENT) -> str:
    """Create the experiment with its artifacts under the home folder (idempotent); return its id.

    Created here, before dagster-mlflow's resource calls `set_experiment`: that call would otherwise
    create it with MLflow's default artifact location, `./mlruns` in whatever directory the run started.
    """
    Path(home).mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri(home))
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        root = artifact_root(home)
        root.mkdir(parents=True, exist_ok=True)
        return client.create_experiment(name, artifact_location=root.as_uri())
    if not experiment.artifact_location.startswith(artifact_root(home).as_uri()):
        raise RuntimeError(
            f"MLflow experiment {name!r} stores artifacts at {experiment.artifact_location}, outside "
            f"{home}; delete {HomeLayout(home).mlflow_db} to start afresh"
        )
    return experiment.experiment_id


# Packages a registered model needs to be loaded elsewhere (the project's code travels with it),
# pinned to the versions installed here, so the pins in pyproject.toml stay the only ones written down.
_MODEL_PACKAGES = ("numpy", "scipy", "polars", "pandas", "implicit", "lightgbm")
_MODEL_REQUIREMENTS = [f"{name}=={package_version(name)}" for name in _MODEL_PACKAGES]
_PACKAGE_DIR = Path(__file__).resolve().parent


def _recommender_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "user_id")]),
        outputs=Schema(
            [ColSpec("string", "user_id"), ColSpec("string", "item_id"), ColSpec("integer", "rank"), ColSpec("double", "score")]
        ),
        params=ParamSchema([ParamSpec("N", "long", 10)]),
    )


_RECOMMENDER_SIGNATURE = _recommender_signature()


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """A trained recommender as an MLflow model: give it user ids, get back their top-N items.

    Input: a frame with a `user_id` column; params: `N` (default 10). Output: user_id, item_id, rank, score.
    """

    def load_context(self, context) -> None:
        from recs_assets.models.storage import load_model_folder

        self.model = load_model_folder(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from recs_assets.models.lists import recommendations_frame

        n = int((params or {}).get("N", 10))
        users = [str(u) for u in model_input["user_id"].tolist()]
        item_ids, scores = self.model.recommend(users, n)
        return pd.DataFrame(recommendations_frame(users, item_ids, scores).to_dict(as_series=False))


def log_model_run(mlflow_client_module, name: str, model, metrics: dict[str, float], extra_params: dict | None = None):
    """One MLflow run for one trained model: parameters, metrics, the model itself, and a registry version.

    `mlflow_client_module` is the `mlflow` module or dagster-mlflow's resource (which proxies it and
    holds the Dagster run's parent MLflow run, so each model becomes a nested run under it).
    Returns (run_id, registered version).
    """
    import tempfile

    from recs_assets.models.storage import save_model_folder

    with mlflow_client_module.start_run(run_name=name, nested=True) as run:
        mlflow.log_params({**model.params(), **(extra_params or {})})
        mlflow.log_metrics({_metric_key(k): v for k, v in metrics.items() if _finite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            save_model_folder(model, folder)
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=RecommenderModel(),
                signature=_RECOMMENDER_SIGNATURE,
                artifacts={"model_dir": str(folder)},
                code_paths=[str(_PACKAGE_DIR)],
                pip_requirements=_MODEL_REQUIREMENTS,
                registered_model_name=name,
            )
        return run.info.run_id, int(info.registered_model_version)


def log_ranker_run(mlflow_client_module, name: str, ranker, metrics: dict[str, float], extra_params: dict | None = None):
    """As `log_model_run`, for the LightGBM re-ranker: its booster goes to MLflow's LightGBM flavour."""
    import mlflow.lightgbm

    with mlflow_client_module.start_run(run_name=name, nested=True) as run:
        mlflow.log_params({**ranker.params(), **(extra_params or {})})
        mlflow.log_metrics({_metric_key(k): v for k, v in metrics.items() if _finite(v)})
        mlflow.log_dict(ranker.importance(), "feature_importance.json")
        info = mlflow.lightgbm.log_model(
            ranker.booster, name=name, registered_model_name=name, pip_requirements=_MODEL_REQUIREMENTS
        )
        return run.info.run_id, int(info.registered_model_version)


def log_metrics_to_run(home: Path, run_id: str, metrics: dict[str, float]) -> None:
    """Add held-out metrics to a model's existing MLflow run (graded after the model was logged)."""
    client = mlflow.MlflowClient(tracking_uri(home))
    for key, value in metrics.items():
        if _finite(value):
            client.log_metric(run_id, _metric_key(key), float(value))


def _metric_key(key: str) -> str:
    # MLflow metric names allow letters, digits, _ - . / and spaces; "ndcg@10" becomes "ndcg_at_10".
    return key.replace("@", "_at_")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")


CHAMPION_ALIAS = "champion"


def current_champion(home: Path, model_names: list[str]) -> str | None:
    """The registered model (one of `model_names`) whose version carries the `champion` alias, if any."""
    client = mlflow.MlflowClient(tracking_uri(home))
    for name in model_names:
        try:
            client.get_model_version_by_alias(name, CHAMPION_ALIAS)
        except mlflow.exceptions.MlflowException:
            continue
        return name
    return None


def move_champion_alias(home: Path, winner: str, model_names: list[str], reason: str) -> int:
    """Point the `champion` alias at the winner's newest version (and nowhere else); record why. Returns the version."""
    client = mlflow.MlflowClient(tracking_uri(home))
    versions = client.search_model_versions(f"name='{winner}'")
    if not versions:
        raise ValueError(f"{winner} has no registered version to promote")
    newest = max(int(v.version) for v in versions)
    for name in model_names:
        if name != winner:
            try:
                client.delete_registered_model_alias(name, CHAMPION_ALIAS)
            except mlflow.exceptions.MlflowException:
                pass  # that model never held the alias
    client.set_registered_model_alias(winner, CHAMPION_ALIAS, str(newest))
    client.set_model_version_tag(winner, str(newest), "champion_reason", reason)
    return newest
