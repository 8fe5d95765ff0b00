"""One training run's whole life, for every task: ``python -m core.train TASK [options]``.

The runner owns what all tasks share: the command line (from the typed settings in
core.training.settings), the run folder and its ``status.json``, the SIGTERM stop, the
device and ``tf.distribute`` strategy, seeding, the one-time test evaluation record, the
clean save of ``model.keras`` and the model card (with ``card_version``, hardware and
versions). A task (core.training.mnist_task, core.training.transfer_task) supplies only
its data, its model and its fit phases, as ``train(settings, run, resume) -> TaskResult``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from core import cli, fmt, machine
from core.io import atomic_write_json
from core.rundir import RunDir, holds_only_run_files, is_run_folder, save_clean_model
from core.training import TrainingError, settings, trust
from core.training.devices import DeviceError, setup, setup_jax

CARD_VERSION = 2  # 2: one runner writes every card (card_version, hardware and versions for all tasks)
TASK_MODULES = {"mnist": "core.training.mnist_task", "transfer": "core.training.transfer_task"}
RESUMABLE = ("mnist",)


@dataclass
class TaskResult:
    """What a task hands back: the trained model, its two scores and its own card fields."""

    model: object
    val: dict  # {"accuracy", "errors", "images", ...}; accuracy None when nothing was held out
    test: dict
    stopped: bool
    card: dict = field(default_factory=dict)  # task fields: title, classes, input_*, data, ...
    metrics: dict = field(default_factory=dict)  # extra metrics (per-class, confusion matrix)
    training: dict = field(default_factory=dict)  # epochs, times, best epoch
    config: dict = field(default_factory=dict)  # what the task resolved beyond its settings
    card_task: str = ""  # the card's task name ("mnist" or "image"), when not the runner's
    settings: settings.Settings | None = None  # as resolved by the task (recipe defaults filled in)
    trust_data: dict | None = None  # {"train"|"val"|"test": (inputs, labels)}: calibration + unknown check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="task", required=True)
    for task, cls in settings.TASKS.items():
        task_parser = sub.add_parser(task, help=cls.HELP, description=cls.HELP)
        cls.add_arguments(task_parser)
        task_parser.add_argument("--name", default=None,
                                 help="model name in the card (default: the run folder's)")
        task_parser.add_argument("--out", required=True, help="run folder to create"
                                 + (" (or resume)" if task in RESUMABLE else ""))
        if task in RESUMABLE:
            task_parser.add_argument("--resume", action="store_true",
                                     help="continue from the run's last checkpoint")
    return parser


def check_out(path: str | Path) -> Path:
    """A run may write only into a new or empty folder, or a run folder of its own."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TrainingError(f"--out {path} is a file, not a folder")
    if path.is_dir() and not (is_run_folder(path) or holds_only_run_files(path)):
        raise TrainingError(f"--out {path} is not empty and is not a run folder: choose a new folder")
    return path


def card_for(run: RunDir, config: dict, seed, result: TaskResult, task: str, name: str) -> dict:
    """The model card: the same shape and provenance for every task (and for ensembles)."""
    hw = machine.hardware()
    val, test = result.val, result.test
    card = {
        "name": name,
        "task": result.card_task or task,
        "model_file": run.model_path.name,
        **result.card,
        "metrics": {
            "test_accuracy": test["accuracy"], "test_errors": test["errors"], "test_images": test["images"],
            "val_accuracy": val["accuracy"], "val_errors": val["errors"], "val_images": val["images"],
            **result.metrics,
        },
        "params": int(result.model.count_params()),
        "config": {"task": task, **config, **result.config},
        "training": {**result.training, "hardware": hw, "device": hw["device"]},
        "versions": machine.versions(),
        "seed": seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "card_version": CARD_VERSION,
    }
    if result.stopped:
        card["stopped"] = True
    return card


def finish(run: RunDir, cfg: settings.Settings, result: TaskResult, task: str, name: str) -> dict:
    """Record the one test evaluation, save the model cleanly, write and return the card."""
    run.append_metrics({"type": "test", "phase": "final", "val_accuracy": result.val["accuracy"],
                        "test_accuracy": result.test["accuracy"], "test_errors": result.test["errors"]})
    save_clean_model(result.model, run.model_path)
    cfg = result.settings or cfg
    card = card_for(run, cfg.as_dict(), cfg.seed, result, task, name)
    if result.trust_data:
        card |= trust.fit(result.model, card["task"], run.model_path, **result.trust_data)
    atomic_write_json(run.card_path, card)
    val = result.val
    val_text = fmt.pct(val['accuracy'], 2) if val.get("images") else "none held out"
    test = result.test
    print(f"{card['name']}: val {val_text}, test {fmt.pct(test['accuracy'], 2)} "
          f"({test['errors']}/{test['images']} "
          f"errors) in {card['training'].get('wall_time_s', 0):.0f}s", file=sys.stderr)
    return card


def _device_scope(cfg: settings.Settings, run: RunDir):
    """The distribution scope for this backend, after printing and recording what was chosen."""
    import contextlib

    import core

    backend = core.keras_backend_name()
    if backend not in ("tensorflow", "jax"):  # torch places work itself
        print(f"device: Keras {backend} backend, its default device", flush=True)
        run.update_status(device=f"keras backend {backend}")
        return contextlib.nullcontext()
    try:
        if backend == "jax":  # keras.distribution is set globally; TensorFlow may be absent
            plan, scope = setup_jax(cfg.device, cfg.mixed_precision, cfg.xla), contextlib.nullcontext()
        else:
            strategy, plan = setup(cfg.device, cfg.mixed_precision, cfg.xla)
            scope = strategy.scope()
    except DeviceError as exc:
        raise TrainingError(str(exc)) from None
    for note in plan.notes:
        print(f"note: {note}", flush=True)
    print(f"device: {plan.describe()}", flush=True)
    run.update_status(device=plan.describe(), device_notes=plan.notes)
    return scope


def execute(task: str, cfg: settings.Settings, out: str | Path, *, name: str | None = None,
            resume: bool = False) -> dict:
    """Train ``task`` with ``cfg`` into the run folder ``out``; return the card (the Python API)."""
    problems = cfg.problems()
    if problems:
        raise TrainingError("; ".join(problems))
    running = machine.keras_backend()
    if cfg.backend not in ("auto", running):  # Keras picks its backend once, on import
        raise TrainingError(f"this process runs Keras on {running}: start the run with "
                            f"python -m core.train ... --backend {cfg.backend}")
    run = RunDir(out).create()
    module = importlib.import_module(TASK_MODULES[task])
    with _device_scope(cfg, run):
        import keras

        keras.utils.set_random_seed(cfg.seed)
        result = module.train(cfg, run, resume=resume)
    return finish(run, cfg, result, task, name or run.name)


def train(task: str, out: str | Path, **options) -> dict:
    """``train("mnist", "runs/x", arch="fast", epochs=3)``: settings by keyword, the card back."""
    cls = settings.for_task(task)
    name, resume = options.pop("name", None), options.pop("resume", False)
    return execute(task, cls.from_options(options), out, name=name, resume=resume)


def main(argv: list[str] | None = None) -> int:
    """Run one task, keeping ``status.json`` in its ``--out`` folder true to the end.

    SIGTERM asks for a graceful stop (the task ends after the current batch, saves
    its checkpoint and returns a card with ``"stopped": true``).
    """
    args = build_parser().parse_args(argv)
    try:
        check_out(args.out)
    except TrainingError as exc:  # nothing written: the folder is not ours
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = settings.TASKS[args.task].from_args(args)
    run = RunDir(args.out).create()
    resume = getattr(args, "resume", False)
    if resume:
        run.stop_path.unlink(missing_ok=True)  # the stop that ended the last attempt is spent
    signal.signal(signal.SIGTERM, lambda *_: run.request_stop())
    run.update_status(state="running", task=args.task, pid=os.getpid(), started=time.time(), error=None)
    try:
        card = execute(args.task, cfg, run.path, name=args.name, resume=resume)
    except TrainingError as exc:
        run.update_status(state="failed", finished=time.time(), error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # noqa: BLE001 - recorded, then shown in the log
        message = f"{type(exc).__name__}: {exc}"
        if len(message) > 600:  # some exceptions print whole tensors; the log keeps the rest
            message = message[:600] + " ... (see log.txt)"
        run.update_status(state="failed", finished=time.time(), error=message)
        if os.environ.get(cli.DEBUG_ENV) or os.environ.get("PYTHONUNBUFFERED"):
            traceback.print_exc()  # the run's log.txt (jobs set PYTHONUNBUFFERED) keeps it
        print(f"error: {message}", file=sys.stderr)
        return 1
    run.update_status(state="stopped" if card.get("stopped") else "succeeded", finished=time.time())
    return 0
