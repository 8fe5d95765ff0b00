"""Validation errors of finished image runs, alone, averaged, with flip TTA and at other sizes.

    CNN_STUDIO_DATA=/path/to/data python -m bench.flowers_choice runs/flowers_224 runs/flowers_224c ... \
        [--sizes 256 288]

Only the validation split is read (every run must share it), so the figures can choose
what to ship without touching the test photos.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

import core

core.import_tensorflow()
import keras

from core.data import folders
from core.models import transfer
from core.models.cards import read_card


@functools.cache
def _val(run: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The shared validation photos at one size, decoded once however many runs use them."""
    split = folders.load_split(run / folders.SPLIT_FILE)
    ds = folders.make_dataset(Path(split["folder"]), split["val"], size, 32)
    return np.concatenate([x.numpy() for x, _ in ds]), np.array([label for _, label in split["val"]])


def _errors(probs: np.ndarray, labels: np.ndarray) -> int:
    return int((probs.argmax(axis=1) != labels).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="*", type=int, default=[], help="also run each model at these sizes")
    args = parser.parse_args()
    splits = {repr(folders.load_split(r / folders.SPLIT_FILE)["val"]) for r in args.runs}
    if len(splits) != 1:
        print("the runs do not share one validation split")
        return 2
    plain, flipped = [], []
    for run in args.runs:
        card = read_card(run / "card.json")
        model = keras.models.load_model(run / card["model_file"], compile=False)
        size = int(model.input_shape[1])
        x, y = _val(args.runs[0], size)
        plain.append(model.predict(x, verbose=0))
        flipped.append(model.predict(x[:, :, ::-1], verbose=0))
        both = plain[-1] + flipped[-1]
        line = f"{run.name}: {_errors(plain[-1], y)} errors at {size} px, {_errors(both, y)} with flips"
        for other in args.sizes:  # the same weights on a larger or smaller input
            resized = transfer.build_model(card["config"]["backbone"], len(card["classes"]), other,
                                           card["config"]["dropout"], weights=None)
            resized.set_weights(model.get_weights())
            xo, _ = _val(args.runs[0], other)
            line += f"; {_errors(resized.predict(xo, verbose=0), y)} at {other} px"
        print(line + f" (of {len(y)})", flush=True)
    if len(args.runs) > 1:
        print(f"all {len(args.runs)} averaged: {_errors(sum(plain), y)} errors, "
              f"{_errors(sum(plain) + sum(flipped), y)} with flips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
