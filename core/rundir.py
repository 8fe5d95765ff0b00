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

Every JSON file is written atomically (write, then rename). Every reader tolerates a
damaged file (bad bytes, invalid JSON, wrong types): a status that cannot be read, or
names no known state, reads as ``damaged`` with the reason, so nothing relaunches or
crashes on it, and ``problems()`` lists what is wrong for the page and ``core.jobs list``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.io import JsonFileError, _json_default, atomic_write_json, read_json
from core.models.cards import RUN_CARD

JOB_FILE = "job.json"  # what core.jobs was asked to run; config.json is the task's own record
STATES = ("queued", "running", "succeeded", "failed", "stopped")
FINAL_STATES = ("succeeded", "failed", "stopped")
DAMAGED = "damaged"  # shown for a status that cannot be read; never started, never changed by a refresh
_NUMBERS = ("started", "finished", "launched", "queued", "updated", "pid", "supervisor_pid")
# Fields a metrics record of each type must hold as numbers; other records are skipped.
_METRIC_NUMBERS = {"batch": ("epoch", "batch", "time"), "epoch": ("epoch", "time")}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


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
        """config.json; {} when absent or damaged (``problems()`` says why)."""
        return _read_json(self.config_path) or {}

    # status -------------------------------------------------------------
    def read_status(self) -> dict:
        """status.json with a known ``state``, or ``state: "damaged"`` and ``damaged: reason``.

        Fields that should be numbers but are not are dropped; {} when there is no file.
        """
        try:
            status = read_json(self.status_path)
        except JsonFileError as exc:
            return {"state": DAMAGED, "damaged": str(exc)}
        if status is None:
            return {}
        status = {k: v for k, v in status.items() if k not in _NUMBERS or v is None or _is_number(v)}
        state = status.get("state")
        if state not in STATES:
            reason = "status.json names no state" if state is None else f"unknown state {str(state)[:40]!r}"
            status |= {"state": DAMAGED, "damaged": reason}
        for key in ("error", "device", "task"):
            if key in status and status[key] is not None and not isinstance(status[key], str):
                status[key] = str(status[key])
        return status

    def problems(self) -> list[str]:
        """What is damaged in this run's own files, one reason each (empty: nothing)."""
        reasons = []
        status = self.read_status()
        if status.get("state") == DAMAGED:
            reasons.append(status["damaged"])
        for path in (self.config_path,):
            try:
                read_json(path)
            except JsonFileError as exc:
                reasons.append(str(exc))
        return reasons

    def update_status(self, **fields) -> dict:
        """Merge fields into status.json (atomically) and return the new status.

        A damaged status is replaced rather than merged.
        """
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown run state {fields['state']!r}")
        try:
            old = read_json(self.status_path, default={})
        except JsonFileError:
            old = {}
        status = old | fields | {"updated": time.time()}
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
        """The records of metrics.jsonl (of one ``type``); lines that are not sound records are skipped.

        A line being written right now, bad bytes, a value that is not an object, or a
        batch/epoch record whose counters are not numbers: none of them reach a caller.
        """
        try:
            data = self.metrics_path.read_bytes()
        except OSError:
            return []
        records = []
        for raw in data.splitlines():
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if not isinstance(record, dict) or (kind is not None and record.get("type") != kind):
                continue
            if not all(_is_number(record.get(key)) for key in _METRIC_NUMBERS.get(record.get("type"), ())):
                continue
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
    """The object in ``path``; None when absent or damaged."""
    try:
        return read_json(path)
    except JsonFileError:
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
