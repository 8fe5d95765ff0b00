"""The on-disk contract of one training run, shared by core.train, core.jobs and the pages.

A run is a folder::

    config.json     what was asked for (task, hyper-parameters, device)
    status.json     state: queued | running | succeeded | failed | stopped, times, pid, error
    metrics.jsonl   one JSON object a line: {"type": "batch"|"epoch"|"phase"|"test", ...}
    log.txt         the training process's stdout and stderr
    STOP            present when a stop was requested; training ends after the batch
    checkpoints/    last.keras (model + optimizer) and last.json ({"epoch": n, ...})
    model.keras     the final model
    card.json       its model card (see core.models.cards)

Every JSON file is written atomically (write, then rename).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.io import _json_default, atomic_write_json
from core.models.cards import RUN_CARD

JOB_FILE = "job.json"  # what core.jobs was asked to run; config.json is the task's own record
STATES = ("queued", "running", "succeeded", "failed", "stopped")
FINAL_STATES = ("succeeded", "failed", "stopped")


def holds_only_run_files(path: str | Path) -> bool:
    """Every entry is one a run writes (a folder prepared for a run, e.g. with a STOP already)."""
    names = {"config.json", "status.json", "metrics.jsonl", "log.txt", "STOP", "checkpoints", "model.keras",
             RUN_CARD, JOB_FILE, "split.json"}
    return all(entry.name in names or entry.name.startswith(".") for entry in Path(path).iterdir())


def is_run_folder(path: str | Path) -> bool:
    """A folder that core.jobs or core.train made (so a run may write into it again)."""
    path = Path(path)
    return any((path / name).is_file() for name in (JOB_FILE, "status.json", "config.json"))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "log.txt")
    stop_path = property(lambda self: self.path / "STOP")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    checkpoint_path = property(lambda self: self.path / "checkpoints" / "last.keras")
    checkpoint_state_path = property(lambda self: self.path / "checkpoints" / "last.json")
    model_path = property(lambda self: self.path / "model.keras")
    card_path = property(lambda self: self.path / RUN_CARD)

    @property
    def name(self) -> str:
        return self.path.name

    def create(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # config -------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict:
        return _read_json(self.config_path) or {}

    # status -------------------------------------------------------------
    def read_status(self) -> dict:
        return _read_json(self.status_path) or {}

    def update_status(self, **fields) -> dict:
        """Merge fields into status.json (atomically) and return the new status."""
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown run state {fields['state']!r}")
        status = self.read_status() | fields | {"updated": time.time()}
        atomic_write_json(self.status_path, status)
        return status

    # metrics ------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        """Append one JSON line; a reader never sees a half line as a record."""
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record | {"time": record.get("time", time.time())}, default=_json_default)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()

    def read_metrics(self, kind: str | None = None) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            if kind is None or record.get("type") == kind:
                records.append(record)
        return records

    # stop ---------------------------------------------------------------
    def request_stop(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    # checkpoints --------------------------------------------------------
    def save_checkpoint(self, model, state: dict) -> None:
        """Save model + optimizer, then its state, each by write-and-rename."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_dir / f".last.{os.getpid()}.keras"
        model.save(tmp)
        os.replace(tmp, self.checkpoint_path)
        atomic_write_json(self.checkpoint_state_path, state)

    def checkpoint_state(self) -> dict | None:
        """The state saved with the last checkpoint, or None when there is none."""
        if not self.checkpoint_path.is_file():
            return None
        return _read_json(self.checkpoint_state_path)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def save_clean_model(model, path: str | Path) -> None:
    """Save architecture + weights without optimizer state (a third of the size), atomically.

    ``clone_model`` would copy the compile settings too, so the model is rebuilt from config.
    """
    path = Path(path)
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.keras")
    clean.save(tmp)
    os.replace(tmp, path)
