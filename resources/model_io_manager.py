"""Dagster IO manager for trained models: each model saved in the home folder under its asset name."""

import shutil
from pathlib import Path

from recs_assets.layout import HomeLayout
import dagster as dg

from recs_assets.models.storage import load_model_folder, save_model_folder


NOT_TRAINED = "NOT_TRAINED"


class ModelIOManager(dg.ConfigurableIOManager):
    """Saves a model into `$RECS_HOME/models/<asset>/` (atomically) and loads it back for downstream assets."""

    home: str

    def _folder(self, key: dg.AssetKey) -> Path:
        return HomeLayout(self.home).model_dir(key.to_python_identifier())

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        folder = self._folder(context.asset_key)
        marker = folder / NOT_TRAINED
        if obj is None:
            # The asset decided there was nothing to learn from (its metadata says why): downstream
            # assets receive None and go on without this model, rather than a stale one.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            marker.write_text("not trained in the latest run; see the asset's metadata for why\n")
            return
        marker.unlink(missing_ok=True)
        save_model_folder(obj, folder)
        context.add_output_metadata({"model_path": dg.MetadataValue.path(str(folder))})

    def load_input(self, context: dg.InputContext):
        folder = self._folder(context.asset_key)
        if (folder / NOT_TRAINED).exists():
            return None
        if not (folder / "model.json").exists():
            raise FileNotFoundError(f"{context.asset_key.to_user_string()} has not been trained yet (no {folder})")
        return load_model_folder(folder)
