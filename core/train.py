"""Training entry point: ``python -m core.train TASK [options]``.

Each task lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> dict`` (the model card). Tasks: ``mnist`` (core.train_mnist),
``transfer`` (core.train_transfer). The same ``run`` functions are the Python API.
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

TASKS = {
    "mnist": ("core.train_mnist", "train a CNN from scratch on MNIST"),
    "transfer": ("core.train_transfer", "fine-tune an ImageNet backbone on an image folder"),
}


class TrainingError(ValueError):
    """Bad settings or data: reported as one clear line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="task", required=True)
    for task, (module_name, help_text) in TASKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # task not built yet
        task_parser = sub.add_parser(task, help=help_text, description=help_text)
        module.add_arguments(task_parser)
        task_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one task, keeping ``status.json`` in its ``--out`` folder true to the end.

    SIGTERM asks for a graceful stop (the task ends after the current batch, saves
    its checkpoint and returns a card with ``"stopped": true``).
    """
    args = build_parser().parse_args(argv)
    run = RunDir(args.out).create()
    signal.signal(signal.SIGTERM, lambda *_: run.request_stop())
    run.update_status(state="running", task=args.task, pid=os.getpid(), started=time.time(), error=None)
    try:
        card = args._run(args) or {}
    except TrainingError as exc:
        run.update_status(state="failed", finished=time.time(), error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised for the log
        run.update_status(state="failed", finished=time.time(), error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    state = "stopped" if card.get("stopped") else "succeeded"
    run.update_status(state=state, finished=time.time())
    return 0


if __name__ == "__main__":
    sys.exit(main())
