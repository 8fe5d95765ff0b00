"""One place for settings.

Each setting is read from the environment when asked for, so a test (or a user)
can point the app elsewhere without restarting Python.

| setting            | variable                        | default                        |
|--------------------|---------------------------------|--------------------------------|
| data root          | ``CNN_STUDIO_DATA``             | ``<project>/data``             |
| runs root          | ``CNN_STUDIO_RUNS``             | ``<project>/runs``             |
| shipped models     | ``CNN_STUDIO_MODELS``           | ``<project>/assets/models``    |
| uploaded data sets | ``CNN_STUDIO_UPLOADS``          | ``uploads/`` beside the runs root |
| uploads quota      | ``CNN_STUDIO_UPLOADS_QUOTA_MB`` | 4096 (MB, all uploads together) |
| runs per visitor   | ``CNN_STUDIO_VISITOR_RUNS``     | 3 queued or running, when served to a network |
| uploads per visitor | ``CNN_STUDIO_VISITOR_UPLOADS`` | 3 data sets, when served to a network |
| password           | ``CNN_STUDIO_PASSWORD``         | none (then only 127.0.0.1 may serve) |
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import StudioError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_ENV = "CNN_STUDIO_DATA"
RUNS_ENV = "CNN_STUDIO_RUNS"
MODELS_ENV = "CNN_STUDIO_MODELS"
UPLOADS_ENV = "CNN_STUDIO_UPLOADS"
UPLOADS_QUOTA_ENV = "CNN_STUDIO_UPLOADS_QUOTA_MB"
VISITOR_RUNS_ENV = "CNN_STUDIO_VISITOR_RUNS"
VISITOR_UPLOADS_ENV = "CNN_STUDIO_VISITOR_UPLOADS"
PASSWORD_ENV = "CNN_STUDIO_PASSWORD"

UPLOADS_QUOTA_MB = 4096
VISITOR_RUNS = 3
VISITOR_UPLOADS = 3
MAX_PATH_CHARS = 4096

# Where each data set lives under the data root.
DATASETS = {
    "mnist": "mnist",
    "flowers": "flowers",
    "imagenet": "imagenet",
}


class ConfigError(StudioError):
    """A setting that cannot be used; the message names the variable and what to fix."""


def _path_setting(env: str, default: Path) -> Path:
    value = os.environ.get(env, "").strip()
    if "\0" in value or len(value) > MAX_PATH_CHARS:
        raise ConfigError(f"{env} is not a usable path (a NUL byte or over {MAX_PATH_CHARS} characters)")
    path = Path(value).expanduser() if value else default
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return path.resolve()


def _folder_setting(env: str, default: Path) -> Path:
    """A folder setting that may not exist yet but must not name a file."""
    path = _path_setting(env, default)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{env} points at {path}, which is a file, not a folder")
    return path


def _int_setting(env: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(env, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{env} must be a whole number (got {value!r})") from None
    if number < minimum:
        raise ConfigError(f"{env} must be at least {minimum} (got {number})")
    return number


def data_root() -> Path:
    """Folder holding ``mnist/``, ``flowers/``, ``imagenet/`` (may not exist)."""
    return _folder_setting(DATA_ENV, PROJECT_ROOT / "data")


def runs_root() -> Path:
    """Folder for user-trained runs, one subfolder per run (may not exist yet)."""
    return _folder_setting(RUNS_ENV, PROJECT_ROOT / "runs")


def models_dir() -> Path:
    """Folder of the models the app ships, each ``NAME.keras`` with ``NAME.card.json``."""
    return _path_setting(MODELS_ENV, PROJECT_ROOT / "assets" / "models")


def uploads_root() -> Path:
    """Folder of uploaded data sets (may not exist yet): ``uploads/`` beside the runs root by default.

    Never inside the data root, which may be shared and read-only.
    """
    path = _folder_setting(UPLOADS_ENV, runs_root().parent / "uploads")
    data = data_root()
    if path == data or data in path.parents:
        raise ConfigError(f"{UPLOADS_ENV} ({path}) must not lie inside the data root {data}")
    return path


def uploads_quota_bytes() -> int:
    """The most bytes all uploaded data sets may take together."""
    return _int_setting(UPLOADS_QUOTA_ENV, UPLOADS_QUOTA_MB, minimum=1) * 2**20


def visitor_runs() -> int:
    """Queued or running runs one visitor may have at once, when the app serves a network."""
    return _int_setting(VISITOR_RUNS_ENV, VISITOR_RUNS, minimum=1)


def visitor_uploads() -> int:
    """Uploaded data sets one visitor may keep, when the app serves a network."""
    return _int_setting(VISITOR_UPLOADS_ENV, VISITOR_UPLOADS, minimum=1)


def password() -> str | None:
    """The password visitors must give when the app serves a network (None: not set)."""
    return os.environ.get(PASSWORD_ENV) or None


def dataset_dir(name: str) -> Path:
    """Folder of one named data set under the data root."""
    return data_root() / DATASETS[name]
