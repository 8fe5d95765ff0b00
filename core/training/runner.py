"""Training entry point: ``python -m core.train TASK [options]``.

Each task lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> dict`` (the model card). Tasks: ``mnist`` (core.training.mnist_task),
``transfer`` (core.training.transfer_task). The same ``run`` functions are the Python API.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import traceback

from core.rundir import RunDir
from core.training import TrainingError, devices

TASKS = {
    "mnist": ("core.training.mnist_task", "train a CNN from scratch on MNIST"),
    "transfer": ("core.training.transfer_task", "fine-tune an ImageNet backbone on an image folder"),
}


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every task shares: where to compute and in what precision (see core.training.devices)."""
    group = parser.add_argument_group("device")
    group.add_argument("--device", choices=devices.DEVICES, default="auto",
                       help="auto: all GPUs when present, else the CPU")
    group.add_argument("--mixed-precision", choices=devices.SWITCHES, default="auto",
                       help="mixed_float16 (auto: on GPUs with compute capability >= 7.0)")
    group.add_argument("--xla", choices=devices.SWITCHES, default="auto",
                       help="XLA jit_compile (auto: Keras's choice, on with a GPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="task", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_device_arguments(common)
    for task, (module_name, help_text) in TASKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in (module_name, "tensorflow"):
                raise
            continue  # task not built yet, or TensorFlow-only on a machine without it (JAX)
        # "resolve": a task that defines one of the common options itself wins.
        task_parser = sub.add_parser(task, help=help_text, description=help_text, parents=[common],
                                     conflict_handler="resolve")
        module.add_arguments(task_parser)
        task_parser.set_defaults(_run=module.run)
    return parser


def _switch(value) -> str:
    """A task may declare a device option as a plain flag: True/False mean on/off."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else str(value)


def main(argv: list[str] | None = None) -> int:
    """Run one task, keeping ``status.json`` in its ``--out`` folder true to the end.

    SIGTERM asks for a graceful stop (the task ends after the current batch, saves
    its checkpoint and returns a card with ``"stopped": true``). The task runs inside
    the ``tf.distribute`` strategy that ``core.training.devices.setup`` picks.
    """
    args = build_parser().parse_args(argv)
    run = RunDir(args.out).create()
    if getattr(args, "resume", False):
        run.stop_path.unlink(missing_ok=True)  # the stop that ended the last attempt is spent
    signal.signal(signal.SIGTERM, lambda *_: run.request_stop())
    run.update_status(state="running", task=args.task, pid=os.getpid(), started=time.time(), error=None)
    try:
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        if backend != "tensorflow":
            # JAX (or torch) places work itself: no tf.distribute, and TensorFlow may be absent.
            print(f"device: Keras {backend} backend, its default device", flush=True)
            run.update_status(device=f"keras backend {backend}")
            card = args._run(args) or {}
            run.update_status(state="stopped" if card.get("stopped") else "succeeded", finished=time.time())
            return 0
        try:
            strategy, plan = devices.setup(*(_switch(getattr(args, name, "auto"))
                                             for name in ("device", "mixed_precision", "xla")))
        except devices.DeviceError as exc:
            raise TrainingError(str(exc)) from None
        for note in plan.notes:
            print(f"note: {note}", flush=True)
        print(f"device: {plan.describe()}", flush=True)
        run.update_status(device=plan.describe(), device_notes=plan.notes)
        with strategy.scope():
            card = args._run(args) or {}
    except TrainingError as exc:
        run.update_status(state="failed", finished=time.time(), error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised for the log
        message = f"{type(exc).__name__}: {exc}"
        if len(message) > 600:  # some exceptions print whole tensors; the log keeps the rest
            message = message[:600] + " ... (see log.txt)"
        run.update_status(state="failed", finished=time.time(), error=message)
        traceback.print_exc()
        return 1
    state = "stopped" if card.get("stopped") else "succeeded"
    run.update_status(state=state, finished=time.time())
    return 0

