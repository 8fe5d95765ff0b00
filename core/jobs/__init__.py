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
once never start the same queued run twice. Queued runs start first in, first out
by the time they were queued; every ``python -m core.jobs`` command (a supervisor
starting or ending, ``list``, ``stop``, ``delete``) refreshes, so a queue whose
supervisor died moves on without a page view.

``job.json`` names the run's folder relative to the runs root (the supervisor adds
``--out`` with the folder it was given), so a copied run folder never writes into the
original. A run whose files are damaged is listed as ``damaged: reason``, never started,
and can still be opened and deleted.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
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

from core import config, fmt
from core.errors import StudioError
from core.io import JsonFileError, atomic_write_json, read_json
from core.models.cards import RUN_CARD, check_values
from core.rundir import DAMAGED, FINAL_STATES, JOB_FILE, RunDir, is_run_folder

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
        elif str(value).startswith("-"):
            argv.append(f"{flag}={value}")  # a value like "--x" must not read as an option
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
    problems: list[str] = field(default_factory=list)  # what is damaged in its files

    state = property(lambda self: self.status.get("state") or DAMAGED)
    task = property(lambda self: str(self.job.get("task") or self.status.get("task") or "?"))
    options = property(lambda self: self.job.get("options") if isinstance(self.job.get("options"), dict)
                       else {})
    created = property(lambda self: _number(self.job.get("created")) or _number(self.status.get("queued"))
                       or _number(self.status.get("started")) or 0.0)
    device = property(lambda self: self.status.get("device") or "")
    visitor = property(lambda self: self.job.get("visitor"))  # who queued it, when served to a network

    @property
    def damaged(self) -> str | None:
        """"damaged: reason; reason" when any of its files cannot be read, else None."""
        return f"damaged: {'; '.join(self.problems)}" if self.problems else None

    @property
    def error(self) -> str | None:
        error = self.status.get("error")
        return "; ".join(filter(None, [self.damaged, error])) or None

    @property
    def finished(self) -> bool:
        """Nothing will change it any more: a final state, or damaged (never started or updated)."""
        return self.state in FINAL_STATES or self.state == DAMAGED

    @property
    def has_model(self) -> bool:
        return (self.path / RUN_CARD).is_file() and (self.path / "model.keras").is_file()

    @property
    def duration_s(self) -> float | None:
        start = _number(self.status.get("started"))
        if not start:
            return None
        end = _number(self.status.get("finished")) or (time.time() if not self.finished else None)
        return (end - start) if end else None

    @property
    def test_accuracy(self) -> float | None:
        return _number((self.card.get("metrics") or {}).get("test_accuracy"))

    @property
    def best_val_accuracy(self) -> float | None:
        vals = [v for r in RunDir(self.path).read_metrics("epoch")
                if (v := _number(r.get("val_accuracy"))) is not None]
        card_val = _number((self.card.get("metrics") or {}).get("val_accuracy"))
        return max(vals) if vals else card_val

    def command(self) -> str:
        """The training command as the supervisor runs it (empty for a run started by hand)."""
        command = train_command(self.job, self.path)
        return shlex.join(command) if command else ""


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value) -> int:
    """A count from a metrics record (epochs, steps): an int, 0 when missing or not a number."""
    return int(_number(value) or 0)


def train_command(job: dict, out: Path) -> list[str] | None:
    """``job.json``'s command with ``--out`` set to ``out``; None when job.json has none.

    Older job.json files held an absolute ``--out``: it is dropped, so the folder the
    supervisor was given is the one written, never the original of a copy.
    """
    command = job.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        return None
    if "--out" in command:
        at = command.index("--out")
        command = command[:at] + command[at + 2:]
    command = [a for a in command if not a.startswith("--out=")]
    return [*command, "--out", str(out)]


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

    def start(self, task: str, options: dict, visitor: str | None = None, cap: int | None = None) -> str:
        """Queue a run and start it now if a slot is free; return its id.

        With a ``cap``, a ``visitor`` who already has that many runs queued or running is refused.
        """
        if cap is not None:
            active = [r for r in self.list() if r.visitor == visitor and r.state in ("queued", "running")]
            if len(active) >= cap:
                raise JobError(f"you already have {len(active)} run(s) queued or running and the limit is "
                               f"{cap} per visitor: wait for one to end or stop one")
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{secrets.token_hex(2)}"
        run = RunDir(self.root / run_id).create()
        now = time.time()
        run.update_status(state="queued", task=task, queued=now)  # before job.json: never a bare job
        command = ["python", "-m", "core.train", task, *options_to_argv(options)]
        atomic_write_json(run.path / JOB_FILE, {"task": task, "options": options, "created": now,
                                                "out": run_id, "command": command, "visitor": visitor})
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
                state = status.get("state")  # "damaged" and unknown states are left alone
                if state == "running":
                    if self._is_alive(status):
                        running += 1
                    else:
                        mark_dead(run, "the training process is gone")
                elif state == "queued" and self._startable(run):
                    queued.append((_number(status.get("queued")) or float("inf"), run_id, run))
            queued.sort(key=lambda item: item[:2])  # first in, first out; the id breaks ties
            for _, _, run in queued[: max(0, self.max_concurrent - running)]:
                self._launch(run)

    @staticmethod
    def _startable(run: RunDir) -> bool:
        """A queued run has a readable job.json (a damaged one fails the run, once)."""
        try:
            job = read_json(run.path / JOB_FILE)
        except JsonFileError as exc:
            run.update_status(state="failed", finished=time.time(), error=f"cannot start: {exc}")
            return False
        if job is None:
            return False  # being written by Jobs.start right now
        if train_command(job, run.path) is None:
            run.update_status(state="failed", finished=time.time(),
                              error="cannot start: job.json has no command")
            return False
        return True

    def get(self, run_id: str) -> Run:
        """A snapshot of one run; damaged files give empty parts and a reason in ``problems``."""
        run = self.run_dir(run_id)
        problems = run.problems()
        job, card = {}, {}
        try:
            job = read_json(run.path / JOB_FILE, default={})
        except JsonFileError as exc:
            problems.append(str(exc))
        try:
            card = read_json(run.card_path, default={})
        except JsonFileError as exc:
            problems.append(str(exc))
        if card and (problem := check_values(card)):
            problems.append(f"{RUN_CARD}: {problem}")
            card = {}
        return Run(run_id, run.path, job, run.read_config(), run.read_status(), card, problems)

    def list(self) -> list[Run]:
        """Every run, newest first, after a refresh."""
        self.refresh()
        return [self.get(run_id) for run_id in reversed(self._ids())]

    def progress(self, run_id: str) -> dict:
        """Where a run is: phase, epoch, batch, fraction of the phase done, seconds left."""
        run = self.run_dir(run_id)
        batches = run.read_metrics("batch")
        epochs = run.read_metrics("epoch")
        out = {"state": run.read_status().get("state", DAMAGED), "epochs": epochs,
               "phase": None, "epoch": 0, "of_epochs": 0, "batch": 0, "steps": 0,
               "fraction": 0.0, "eta_s": None, "stopping": False, "stopped_at": None}
        if batches:
            last = batches[-1]
            out |= {"phase": last.get("phase"), "epoch": last["epoch"],
                    "of_epochs": _whole(last.get("epochs")),
                    "batch": last["batch"], "steps": _whole(last.get("steps"))}
        if epochs and (not batches or epochs[-1]["time"] >= batches[-1]["time"]):
            last = epochs[-1]  # an epoch just ended: its batches are done, unless a stop cut it short
            out |= {"phase": last.get("phase"), "epoch": last["epoch"],
                    "of_epochs": _whole(last.get("epochs")),
                    "steps": _whole(last.get("steps")) or out["steps"]}
            out["batch"] = _whole(last.get("batches")) or out["steps"]
        stops = run.read_metrics("stop")  # ignored once a resumed run has gone on past it
        out["stopped_at"] = stops[-1] if stops and (not batches or stops[-1]["time"] >= batches[-1]["time"]) \
            else None
        if out["stopped_at"]:  # the real place a stop ended it
            out |= {key: out["stopped_at"][key] for key in ("phase", "epoch", "batch", "steps")}
            out["of_epochs"] = _whole(out["stopped_at"].get("epochs")) or out["of_epochs"]
        out["stopping"] = out["state"] == "running" and run.stop_requested()
        total = out["of_epochs"] * out["steps"]
        if total:
            done = (out["epoch"] - 1) * out["steps"] + out["batch"]
            out["fraction"] = min(1.0, done / total)
            same_phase = [b for b in batches if b.get("phase") == out["phase"]]
            if len(same_phase) >= 2 and out["state"] == "running" and not out["stopping"]:
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
    def _check_owner(self, run_id: str, visitor: str | None) -> None:
        """With a ``visitor`` (the app served to a network), only runs they queued may be changed."""
        if visitor is None:
            return
        try:
            owner = read_json(self.run_dir(run_id).path / JOB_FILE, default={}).get("visitor")
        except JsonFileError:
            owner = None
        if owner != visitor:
            raise JobError(f"run {run_id} was not queued by you: only its owner can stop or delete it")

    def stop(self, run_id: str, visitor: str | None = None) -> None:
        """Ask a run to end gracefully: it saves its checkpoint and ends as ``stopped``."""
        self._check_owner(run_id, visitor)
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

    def delete(self, run_id: str, visitor: str | None = None) -> None:
        self._check_owner(run_id, visitor)
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
    run.update_status(supervisor_pid=os.getpid())
    Jobs(run.path.parent, max_concurrent).refresh()  # a queue stalled by a dead supervisor moves on
    try:
        command = train_command(read_json(run.path / JOB_FILE, default={}), run.path)
    except JsonFileError as exc:
        command, why = None, str(exc)
    else:
        why = "job.json has no command"
    if command is None:
        run.update_status(state="failed", finished=time.time(), error=f"cannot start: {why}")
        Jobs(run.path.parent, max_concurrent).refresh()
        return 2
    command = [sys.executable, *command[1:]]
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
    for name, text in (("stop", "ask a run to stop (a queued run never starts)"),
                       ("delete", "delete a run that is not running, damaged or not")):
        sub.add_parser(name, help=text).add_argument("run")
    args = parser.parse_args(argv)
    if args.command == "supervise":
        return supervise(args.run, args.max_concurrent)
    jobs = Jobs()
    if args.command == "stop":
        jobs.stop(args.run)
        print(f"stop requested for {args.run}")
    elif args.command == "delete":
        jobs.delete(args.run)
        print(f"deleted {args.run}")
    else:
        for run in jobs.list():
            line = f"{run.id}  {run.state:9}  {run.device or '-'}  {_scores(run.card)}  {run.error or ''}"
            print(line.rstrip())
    jobs.refresh()
    return 0


def _scores(card: dict) -> str:
    """ "val 93.07%  test 91.73% (31 errors)" from a finished run's card, else ""."""
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    test, val = _number(metrics.get("test_accuracy")), _number(metrics.get("val_accuracy"))
    if test is None:
        return ""
    val_text = f"val {fmt.pct(val, 2)}  " if val is not None else ""
    return f"{val_text}test {fmt.pct(test, 2)} ({metrics.get('test_errors', '?')} errors)"


def headline(run: Run, progress: dict) -> tuple[str, str]:
    """(kind, sentence) that says where a run is right now; kind is the state the view colours.

    A stopped run says where it stopped, never "finished"; a failed one gives its cause in
    one sentence (the first line of the error; the log holds the rest).
    """
    if run.state == "failed":
        cause = (run.error or "it ended without saying why").strip().splitlines()[0]
        return "failed", f"Failed: {cause[:300]}"
    if run.state == "stopped":
        where = progress.get("stopped_at")
        place = (f" at epoch {where['epoch']}, batch {where['batch']} of {where['steps']}"
                 if where else "")
        if run.has_model:
            acc = run.test_accuracy
            score = f" (test {fmt.pct(acc)})" if acc is not None else ""
            saved = f"; the model as it was then is saved{score}"
        elif run.error:
            saved = f" ({run.error})"
        else:
            saved = "; no model was saved"
        return "stopped", f"Stopped early{place}{saved}."
    if run.state == "succeeded":
        acc = run.test_accuracy
        return "succeeded", ("Finished: test accuracy " + fmt.pct(acc)) if acc is not None else "Finished."
    if progress.get("stopping"):
        return "stopping", "Stopping… the run ends after the current batch and saves its model."
    if run.state == "queued":
        return "queued", "Queued."
    return "running", "Running."
