"""Save a trained model to a folder, and load it back without knowing its kind in advance.

The folder holds `model.bin` (the model's own `save`: numpy arrays, or LightGBM's text format for
the ranker; never pickle) and `model.json` naming its kind from models/registry.py. Loading only
ever picks a registered class, so whoever can write to $RECS_HOME/models cannot make us import code.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from recs_assets.models.registry import REGISTRY, model_class, registered_name

_FOLDER_FORMAT = 1


def save_model_folder(model: Any, folder: Path) -> None:
    """Write `model.bin` (the model's own `save`) and `model.json` naming its kind, atomically."""
    folder = Path(folder)
    name = registered_name(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    try:
        model.save(staging / "model.bin")
        (staging / "model.json").write_text(json.dumps({"format": _FOLDER_FORMAT, "model": name}))
        previous = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
        if folder.exists():
            os.replace(folder, previous)
        os.replace(staging, folder)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_model_folder(folder: Path) -> Any:
    """Load what `save_model_folder` wrote (ValueError if model.json names no registered model)."""
    folder = Path(folder)
    if not (folder / "model.json").exists():
        raise FileNotFoundError(f"no saved model in {folder}")
    try:
        description = json.loads((folder / "model.json").read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder / 'model.json'} is not valid JSON: {error}") from None
    if not isinstance(description, dict):
        raise ValueError(f"{folder / 'model.json'} must hold a JSON object naming the model")
    try:
        cls = model_class(_saved_name(description))
    except ValueError as error:
        raise ValueError(f"{folder / 'model.json'}: {error}") from None
    return cls.load(folder / "model.bin")


def _saved_name(description: dict) -> object:
    if "model" in description:
        return description["model"]
    # Folders written before the registry named a "module.Class" path; matched as text, never imported.
    dotted = {f"{cls.__module__}.{cls.__qualname__}": name for name, cls in REGISTRY.items()}
    legacy = description.get("class")
    return dotted.get(legacy, legacy) if isinstance(legacy, str) else legacy
