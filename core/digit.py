"""Read canvas drawings from the command line, exactly as the Draw page does.

    python -m core.digit [--model PATH] [--json] PNG...

Each PNG is a canvas image (RGBA, RGB or grey, white ink on black, any size). It goes
through the page's path: MNIST-style preprocessing, the model, its card's temperature
and its "is this a digit at all" check. With ``--json`` each file gives one line
``{"file", "digit", "probability", "known"}`` (``digit`` and ``probability`` are null for
an empty canvas; ``known`` is false for a dot or a drawing unlike any digit). A file that
cannot be read gives ``{"file", "error"}``; the exit code is then 1.
"""
from __future__ import annotations

import json
import sys

import numpy as np
from PIL import Image

from core import cli, fmt
from core.inference import drawing, served


def read_png(path: str) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGBA") if img.mode not in ("L", "RGB", "RGBA") else img)


def describe(reading: drawing.Reading) -> str:
    if reading.status == drawing.EMPTY:
        return "empty canvas"
    if reading.status == drawing.DOT:
        return "a dot, not a digit"
    if reading.status == drawing.UNKNOWN:
        return f"doesn't look like a digit (closest {reading.digit} at {fmt.pct(reading.probability, 1)})"
    return f"{reading.digit} ({fmt.pct(reading.probability, 1)})"


def main(argv: list[str] | None = None) -> int:
    args = cli.predictor_args("python -m core.digit", __doc__,
                              "a .keras MNIST model (default: the Draw page's default)", "PNG", argv)
    model = served.load(args.model or served.default_entry("mnist").model_path)
    failed = 0
    for path in args.files:
        try:
            reading = drawing.read(model, read_png(path))
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the others
            failed += 1
            message = f"cannot read this file as an image ({type(exc).__name__}: {str(exc)[:120]})"
            print(json.dumps({"file": path, "error": message}) if args.json else f"{path}: error: {message}")
            continue
        if args.json:
            print(json.dumps({"file": path, "digit": reading.digit, "probability": reading.probability,
                              "known": bool(reading.known) if reading.known is not None else None}))
        else:
            print(f"{path}: {describe(reading)}")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
