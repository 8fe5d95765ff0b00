"""One place for settings.

Each setting is read from the environment when asked for, so a test (or a user)
can point the app elsewhere without restarting Python.

| setting      | variable            | default                    |
|--------------|---------------------|----------------------------|
| data root    | ``CNN_STUDIO_DATA`` | ``<project>/data``         |
| runs root    | ``CNN_STUDIO_RUNS`` | ``<project>/runs``         |
| shipped models | ``CNN_STUDIO_MODELS`` | ``<project>/assets/models`` |
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_ENV = "CNN_STUDIO_DATA"
RUNS_ENV = "CNN_STUDIO_RUNS"
MODELS_ENV = "CNN_STUDIO_MODELS"

# Where each data set lives under the data root.
DATASETS = {
    "mnist": "mnist",
    "flowers": "flowers",
    "imagenet": "imagenet",
}


def _path_setting(env: str, default: Path) -> Path:
    value = os.environ.get(env, "").strip()
    path = Path(value).expanduser() if value else default
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return path.resolve()


def data_root() -> Path:
    """Folder holding ``mnist/``, ``flowers/``, ``imagenet/`` (may not exist)."""
    return _path_setting(DATA_ENV, PROJECT_ROOT / "data")


def runs_root() -> Path:
    """Folder for user-trained runs, one subfolder per run (may not exist yet)."""
    return _path_setting(RUNS_ENV, PROJECT_ROOT / "runs")


def models_dir() -> Path:
    """Folder of the models the app ships, each ``NAME.keras`` with ``NAME.card.json``."""
    return _path_setting(MODELS_ENV, PROJECT_ROOT / "assets" / "models")


def dataset_dir(name: str) -> Path:
    """Folder of one named data set under the data root."""
    return data_root() / DATASETS[name]
