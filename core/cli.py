"""How every ``python -m core.X`` entry ends: an exit code and, on error, one sentence.

``StudioError`` (bad input, settings or files) prints ``error: <sentence>`` and exits 2.
Any other exception is a bug: one line names it and the traceback is shown only with
``CNN_STUDIO_DEBUG=1``, so no user sees a stack trace by accident.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from core.errors import StudioError

DEBUG_ENV = "CNN_STUDIO_DEBUG"


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    try:
        return int(main(argv) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes an exit code
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]} "
              f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


def predictor_args(prog: str, doc: str, model_help: str, metavar: str,
                   argv: list[str] | None) -> argparse.Namespace:
    """The arguments ``core.digit`` and ``core.classify`` share: ``[--model PATH] [--json] FILE...``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("files", nargs="+", metavar=metavar)
    return parser.parse_args(argv)
