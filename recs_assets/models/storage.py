"""Save a trained model to a folder, and load it back without knowing its type in advance."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from importlib import import_module
from pathlib import Path
from typing import Any


def save_model_folder(model: Any, folder: Path) -> None:
    """Write `model.pkl`-style state (the model's own `save`) and `model.json` naming its class, atomically."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    try:
        model.save(staging / "model.bin")
        cls = type(model)
        (staging / "model.json").write_text(json.dumps({"class": f"{cls.__module__}.{cls.__qualname__}"}))
        previous = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
        if folder.exists():
            os.replace(folder, previous)
        os.replace(staging, folder)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_model_folder(folder: Path) -> Any:
    """Load what `save_model_folder` wrote."""
    folder = Path(folder)
    if not (folder / "model.json").exists():
        raise FileNotFoundError(f"no saved model in {folder}")
    module, _, name = json.loads((folder / "model.json").read_text())["class"].rpartition(".")
    return getattr(import_module(module), name).load(folder / "model.bin")
