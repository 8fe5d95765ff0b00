"""``python -m core.train TASK [options]``: one training run (see core.training.runner).

Stored job commands re-run exactly this entry, so it stays as the README shows it.

``--backend`` picks the Keras backend for the run. Keras reads it once, on import, so it
is settled here, before anything imports Keras (``core.machine.backend_for_run``).
"""
import os
import sys

from core import cli, machine


def _backend_flag(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return "auto"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    choice = _backend_flag(argv)
    if choice in ("auto", *machine.KERAS_BACKENDS):  # anything else: argparse says what is allowed
        os.environ["KERAS_BACKEND"] = machine.backend_for_run(choice)
    from core.training.runner import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(cli.run(main))
