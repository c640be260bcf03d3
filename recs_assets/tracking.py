"""MLflow in the home folder: a SQLite tracking database and artifacts beside it, no server needed."""

from __future__ import annotations

from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import pandas as pd

from recs_assets.layout import HomeLayout
from recs_assets.settings import mlflow_tracking_uri

EXPERIMENT = "recs_assets"


def tracking_uri(home: Path) -> str:
    """The home's SQLite database, or RECS_MLFLOW_TRACKING_URI (PostgreSQL, a remote server) when set."""
    uri = mlflow_tracking_uri()
    if uri is None:
        return f"sqlite:///{HomeLayout(Path(home).resolve()).mlflow_db}"
    scheme, rest = uri.split("://", 1) if "://" in uri else (uri, "")
    if scheme in ("postgresql", "postgres"):
        # psycopg2 named outright: SQLAlchemy 2.1 would otherwise pick psycopg 3, which is not installed.
        return "postgresql+psycopg2://" + rest
    return uri


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


# Registry version tags: which Dagster run trained a version, and whether it was graded or refitted to serve.
RUN_TAG = "dagster_run_id"
STAGE_TAG = "stage"
EVALUATED = "evaluated"
REFIT = "refit"
# Set on the versions of a run that died before finishing: kept for inspection, never promoted.
ORPHAN_TAG = "orphan"


def log_model_run(mlflow_client_module, name: str, model, metrics: dict[str, float], extra_params: dict | None = None,
                  *, registered_name: str | None = None, version_tags: dict[str, str] | None = None):
    """One MLflow run for one trained model: parameters, metrics, the model itself, and a registry version.

    `mlflow_client_module` is the `mlflow` module or dagster-mlflow's resource (which proxies it and
    holds the Dagster run's parent MLflow run, so each model becomes a nested run under it). The version
    is registered under `registered_name` (default `name`) and carries `version_tags` (see RUN_TAG).
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
                registered_model_name=registered_name or name,
            )
        version = int(info.registered_model_version)
        _tag_version(registered_name or name, version, version_tags)
        return run.info.run_id, version


def log_ranker_run(mlflow_client_module, name: str, ranker, metrics: dict[str, float], extra_params: dict | None = None,
                   *, registered_name: str | None = None, version_tags: dict[str, str] | None = None):
    """As `log_model_run`, for the LightGBM re-ranker: its booster goes to MLflow's LightGBM flavour."""
    import mlflow.lightgbm

    with mlflow_client_module.start_run(run_name=name, nested=True) as run:
        mlflow.log_params({**ranker.params(), **(extra_params or {})})
        mlflow.log_metrics({_metric_key(k): v for k, v in metrics.items() if _finite(v)})
        mlflow.log_dict(ranker.importance(), "feature_importance.json")
        info = mlflow.lightgbm.log_model(
            ranker.booster, name=name, registered_model_name=registered_name or name, pip_requirements=_MODEL_REQUIREMENTS
        )
        version = int(info.registered_model_version)
        _tag_version(registered_name or name, version, version_tags)
        return run.info.run_id, version


def _tag_version(registered_name: str, version: int, tags: dict[str, str] | None) -> None:
    if tags:
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(registered_name, str(version), key, str(value))


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


def evaluated_version(client, name: str, run_id: str | None) -> int:
    """The graded version of `name` to promote: the one this Dagster run trained, else the newest graded one.

    Never a refit (those serve, they were not graded), and never another run's version when this run
    trained one: two runs on one home must not promote each other's models.
    """
    versions = [
        v for v in client.search_model_versions(f"name='{name}'")
        if v.tags.get(STAGE_TAG, EVALUATED) == EVALUATED and ORPHAN_TAG not in v.tags
    ]
    if not versions:
        raise ValueError(f"{name} has no registered graded version to promote")
    mine = [v for v in versions if run_id is not None and v.tags.get(RUN_TAG) == run_id]
    return max(int(v.version) for v in (mine or versions))


def move_champion_alias(home: Path, winner: str, model_names: list[str], reason: str, run_id: str | None = None) -> int:
    """Point the `champion` alias at the winner's graded version from run `run_id` (see `evaluated_version`)
    and nowhere else; record why. Returns the version."""
    client = mlflow.MlflowClient(tracking_uri(home))
    newest = evaluated_version(client, winner, run_id)
    for name in model_names:
        if name != winner:
            try:
                client.delete_registered_model_alias(name, CHAMPION_ALIAS)
            except mlflow.exceptions.MlflowException:
                pass  # that model never held the alias
    client.set_registered_model_alias(winner, CHAMPION_ALIAS, str(newest))
    client.set_model_version_tag(winner, str(newest), "champion_reason", reason)
    return newest


PRODUCTION_ALIAS = "production"


def move_production_alias(home: Path, registered_name: str, version: int, model_names: list[str]) -> None:
    """Point the `production` alias (what the API serves) at `version` of `registered_name`, and nowhere else."""
    client = mlflow.MlflowClient(tracking_uri(home))
    for name in model_names:
        if name != registered_name:
            try:
                client.delete_registered_model_alias(name, PRODUCTION_ALIAS)
            except mlflow.exceptions.MlflowException:
                pass  # that model never served
    client.set_registered_model_alias(registered_name, PRODUCTION_ALIAS, str(version))


def registered_run_id(home: Path, registered_name: str, version: int) -> str | None:
    """The MLflow run that produced a registered version (None if the version is unknown)."""
    client = mlflow.MlflowClient(tracking_uri(home))
    try:
        return client.get_model_version(registered_name, str(version)).run_id
    except mlflow.exceptions.MlflowException:
        return None



def close_killed_run(home: Path, dagster_run_id: str, reason: str) -> dict[str, int]:
    """Clean up after a Dagster run that died: its MLflow runs marked KILLED, its registry versions tagged orphan.

    The versions are kept (they may be inspected) but tagged `orphan` with the reason, and they are never
    promoted: `evaluated_version` only takes this run's own versions or the newest graded one.
    Returns how many MLflow runs were closed and versions tagged.
    """
    client = mlflow.MlflowClient(tracking_uri(home))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    closed = 0
    if experiment is not None:
        parents = client.search_runs([experiment.experiment_id], f"tags.{RUN_TAG} = '{dagster_run_id}'")
        for parent in parents:
            children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
            for run in [parent, *children]:
                if run.info.status == "RUNNING":
                    client.set_tag(run.info.run_id, "killed_reason", reason)
                    client.set_terminated(run.info.run_id, status="KILLED")
                    closed += 1
    tagged = 0
    for version in client.search_model_versions(f"tags.{RUN_TAG} = '{dagster_run_id}'"):
        client.set_model_version_tag(version.name, version.version, ORPHAN_TAG, reason)
        tagged += 1
    return {"mlflow_runs_closed": closed, "versions_tagged_orphan": tagged}
