"""Training runs as separate processes, with their whole state on disk.

A Streamlit script reruns on every click and cannot host a long job, so each run
is a process tree started here and described by its folder under the runs root
(see ``core.rundir``)::

    python -m core.jobs supervise RUN      the supervisor: waits for training, then
      └─ python -m core.train TASK ...     starts the next queued run

Why a supervisor: the queue must move on when a run ends even if no browser is
open and the app was restarted, and a training process that dies without a word
(SIGKILL, out of memory) must still end as ``failed`` with its log tail. The
supervisor sees its child's exit code and does both; ``Jobs.refresh`` (called by
every listing) covers the case where the supervisor itself was killed.

Nothing is kept in memory: a new ``Jobs`` (an app restart) reads everything back
from the folders. Scheduling runs under a file lock so two supervisors ending at
once never start the same queued run twice.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import config
from core.errors import StudioError
from core.io import atomic_write_json
from core.models.cards import RUN_CARD
from core.rundir import FINAL_STATES, JOB_FILE, RunDir, is_run_folder

MAX_ENV = "CNN_STUDIO_MAX_RUNS"
LOCK_FILE = ".jobs.lock"
START_GRACE_S = 60  # a launched run may take this long to report its first PID
TAIL_LINES = 15


class JobError(StudioError):
    """A request the job manager refuses (unknown run, delete while running, ...)."""


def default_max_concurrent() -> int:
    try:
        return max(1, int(os.environ.get(MAX_ENV, "1")))
    except ValueError:
        return 1


def options_to_argv(options: dict) -> list[str]:
    """``{"batch_size": 32, "resume": True}`` -> ``["--batch-size", "32", "--resume"]``."""
    argv = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


@dataclass
class Run:
    """A snapshot of one run folder, for listing."""

    id: str
    path: Path
    job: dict  # job.json: task, options, command, created (empty for a run started by hand)
    config: dict  # config.json: the settings the task resolved
    status: dict
    card: dict = field(default_factory=dict)

    state = property(lambda self: self.status.get("state", "queued"))
    task = property(lambda self: self.job.get("task") or self.status.get("task") or "?")
    options = property(lambda self: self.job.get("options", {}))
    created = property(lambda self: self.job.get("created") or self.status.get("started") or 0.0)
    error = property(lambda self: self.status.get("error"))
    device = property(lambda self: self.status.get("device", ""))

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def has_model(self) -> bool:
        return (self.path / RUN_CARD).is_file() and (self.path / "model.keras").is_file()

    @property
    def duration_s(self) -> float | None:
        start = self.status.get("started")
        if not start:
            return None
        end = self.status.get("finished") or (time.time() if not self.finished else None)
        return (end - start) if end else None

    @property
    def test_accuracy(self) -> float | None:
        return (self.card.get("metrics") or {}).get("test_accuracy")

    @property
    def best_val_accuracy(self) -> float | None:
        vals = [r["val_accuracy"] for r in RunDir(self.path).read_metrics("epoch") if "val_accuracy" in r]
        card_val = (self.card.get("metrics") or {}).get("val_accuracy")
        return max(vals) if vals else card_val

    def command(self) -> str:
        return shlex.join(self.job.get("command", []))


def _proc_alive(pid: int | None, marker: str) -> bool:
    """True when ``pid`` runs and is one of ours (its command line names ``marker``)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():  # not Linux: trust the signal check
        return True
    try:
        state = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and marker in cmdline  # a zombie has ended; another program reused the PID


class Jobs:
    def __init__(self, root: str | Path | None = None, max_concurrent: int | None = None,
                 python: str = sys.executable):
        self.root = Path(root) if root is not None else config.runs_root()
        self.max_concurrent = max_concurrent or default_max_concurrent()
        self.python = python
        self._children: dict[str, subprocess.Popen] = {}  # reaped on refresh, no zombies

    # paths ---------------------------------------------------------------
    def run_dir(self, run_id: str) -> RunDir:
        path = (self.root / run_id).resolve()
        if path.parent != self.root.resolve() or not is_run_folder(path):
            raise JobError(f"no run called {run_id!r} in {self.root}")
        return RunDir(path)

    def _ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if is_run_folder(p))

    # start ---------------------------------------------------------------
    def command(self, task: str, options: dict, out: str | Path) -> list[str]:
        return [self.python, "-m", "core.train", task, *options_to_argv(options), "--out", str(out)]

    def start(self, task: str, options: dict) -> str:
        """Queue a run and start it now if a slot is free; return its id."""
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{secrets.token_hex(2)}"
        run = RunDir(self.root / run_id).create()
        command = self.command(task, options, run.path)
        atomic_write_json(run.path / JOB_FILE, {"task": task, "options": options, "created": time.time(),
                                                "command": ["python", *command[1:]]})
        run.update_status(state="queued", task=task, queued=time.time())
        self.refresh()
        return run_id

    def _launch(self, run: RunDir) -> None:
        run.update_status(state="running", launched=time.time(), pid=None, error=None)
        # Own session: the run outlives the app and a Ctrl-C in its terminal.
        proc = subprocess.Popen(
            [self.python, "-m", "core.jobs", "supervise", str(run.path),
             "--max-concurrent", str(self.max_concurrent)],
            cwd=config.PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self._children[run.name] = proc

    # state ---------------------------------------------------------------
    def _is_alive(self, status: dict) -> bool:
        if _proc_alive(status.get("pid"), "core.train"):
            return True
        if _proc_alive(status.get("supervisor_pid"), "core.jobs"):
            return True
        # Just launched: the supervisor has not written its PID yet.
        return not status.get("supervisor_pid") and time.time() - status.get("launched", 0) < START_GRACE_S

    def refresh(self) -> None:
        """Mark dead runs failed, then start queued runs while slots are free."""
        for proc in self._children.values():
            proc.poll()
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running, queued = 0, []
            for run_id in self._ids():
                run = RunDir(self.root / run_id)
                status = run.read_status()
                state = status.get("state", "queued")
                if state == "running":
                    if self._is_alive(status):
                        running += 1
                    else:
                        mark_dead(run, "the training process is gone")
                elif state == "queued":
                    queued.append(run)
            for run in queued[: max(0, self.max_concurrent - running)]:
                self._launch(run)

    def get(self, run_id: str) -> Run:
        run = self.run_dir(run_id)
        return Run(run_id, run.path, _read_json(run.path / JOB_FILE), run.read_config(), run.read_status(),
                   _read_json(run.card_path))

    def list(self) -> list[Run]:
        """Every run, newest first, after a refresh."""
        self.refresh()
        return [self.get(run_id) for run_id in reversed(self._ids())]

    def progress(self, run_id: str) -> dict:
        """Where a run is: phase, epoch, batch, fraction of the phase done, seconds left."""
        run = self.run_dir(run_id)
        batches = run.read_metrics("batch")
        epochs = run.read_metrics("epoch")
        out = {"state": run.read_status().get("state", "queued"), "epochs": epochs,
               "phase": None, "epoch": 0, "of_epochs": 0, "batch": 0, "steps": 0,
               "fraction": 0.0, "eta_s": None}
        if batches:
            last = batches[-1]
            out |= {"phase": last.get("phase"), "epoch": last["epoch"], "of_epochs": last.get("epochs", 0),
                    "batch": last["batch"], "steps": last.get("steps", 0)}
        if epochs and (not batches or epochs[-1]["time"] >= batches[-1]["time"]):
            last = epochs[-1]  # an epoch just ended: its batches are all done
            out |= {"phase": last.get("phase"), "epoch": last["epoch"], "of_epochs": last.get("epochs", 0),
                    "batch": out["steps"]}
        total = out["of_epochs"] * out["steps"]
        if total:
            done = (out["epoch"] - 1) * out["steps"] + out["batch"]
            out["fraction"] = min(1.0, done / total)
            same_phase = [b for b in batches if b.get("phase") == out["phase"]]
            if len(same_phase) >= 2 and out["state"] == "running":
                first, latest = same_phase[0], same_phase[-1]
                done_between = ((latest["epoch"] - first["epoch"]) * out["steps"]
                                + latest["batch"] - first["batch"])
                if done_between > 0:
                    rate = (latest["time"] - first["time"]) / done_between
                    out["eta_s"] = max(0.0, rate * (total - done))
        if out["state"] == "succeeded":
            out["fraction"] = 1.0
        return out

    # stop and delete -------------------------------------------------------
    def stop(self, run_id: str) -> None:
        """Ask a run to end gracefully: it saves its checkpoint and ends as ``stopped``."""
        run = self.run_dir(run_id)
        status = run.read_status()
        if status.get("state") == "queued":
            run.update_status(state="stopped", finished=time.time(), error="stopped before it started")
            return
        if status.get("state") != "running":
            return
        run.request_stop()  # read by the training monitor after each batch
        pid = status.get("pid")  # written by core.train once its SIGTERM handler is in place
        if _proc_alive(pid, "core.train"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def delete(self, run_id: str) -> None:
        run = self.run_dir(run_id)
        status = run.read_status()
        if status.get("state") == "running" and self._is_alive(status):
            raise JobError(f"run {run_id} is still running: stop it first")
        shutil.rmtree(run.path)

    def wait(self, run_id: str, timeout: float = 600, poll_s: float = 0.5) -> Run:
        """Block until a run reaches a final state (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.refresh()
            run = self.get(run_id)
            if run.finished:
                return run
            time.sleep(poll_s)
        raise TimeoutError(f"run {run_id} still {self.get(run_id).state} after {timeout:.0f}s")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mark_dead(run: RunDir, why: str) -> None:
    """A run whose process ended without a final state: failed, with the end of its log."""
    tail = run.log_tail(TAIL_LINES).strip()
    run.update_status(state="failed", finished=time.time(),
                      error=f"{why}" + (f"; last lines of its log:\n{tail}" if tail else " (empty log)"))


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"the training process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the training process was killed by signal {-code}"
    return f"the training process exited with code {code} without a final status"


def supervise(run_path: str | Path, max_concurrent: int) -> int:
    """Run one training process to its end, then let the queue move on."""
    run = RunDir(run_path)
    job = _read_json(run.path / JOB_FILE)
    run.update_status(supervisor_pid=os.getpid())
    command = [sys.executable, *job["command"][1:]]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with open(run.log_path, "ab") as log:
        child = subprocess.Popen(command, cwd=config.PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT)
        # Pass a stop on: core.train turns SIGTERM into a graceful stop.
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        code = child.wait()
    if run.read_status().get("state") not in FINAL_STATES:
        mark_dead(run, _exit_reason(code))
    Jobs(run.path.parent, max_concurrent).refresh()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    sup = sub.add_parser("supervise", help="(internal) run one queued run to its end")
    sup.add_argument("run")
    sup.add_argument("--max-concurrent", type=int, default=default_max_concurrent())
    sub.add_parser("list", help="print every run with its state")
    args = parser.parse_args(argv)
    if args.command == "supervise":
        return supervise(args.run, args.max_concurrent)
    for run in Jobs().list():
        line = f"{run.id}  {run.state:9}  {run.device or '-'}  {_scores(run.card)}  {run.error or ''}"
        print(line.rstrip())
    return 0


def _scores(card: dict) -> str:
    """ "val 93.07%  test 91.73% (31 errors)" from a finished run's card, else ""."""
    metrics = card.get("metrics") or {}
    if "test_accuracy" not in metrics:
        return ""
    val = f"val {metrics['val_accuracy']:.2%}  " if metrics.get("val_accuracy") is not None else ""
    return f"{val}test {metrics['test_accuracy']:.2%} ({metrics.get('test_errors', '?')} errors)"
