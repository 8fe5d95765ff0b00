"""Compare candidate MNIST ensembles on the validation split only (the test split is not read).

    CNN_STUDIO_DATA=/path/to/data python -m bench.mnist_ensemble_choice \
        "best=runs/best_*" "best+fast15=runs/best_*,runs/fast15_*"

Each argument is NAME=GLOB[,GLOB...] of finished run folders. For every group it prints
the validation errors of each member, of their averaged probabilities (and how many of those
every member makes too), and of the average with test-time augmentation. The group with the
fewest errors is the one to pass to ``python -m core.ensemble`` (ties go to the smaller group).
"""
from __future__ import annotations

import glob
import sys
from pathlib import Path

import core

core.import_tensorflow()
import keras
import numpy as np

from core.data import mnist
from core.models.cards import read_card
from core.training import ensemble


def _runs(spec: str) -> list[Path]:
    return sorted(Path(p) for pattern in spec.split(",") for p in glob.glob(pattern)
                  if (Path(p) / "card.json").is_file())


def main(argv: list[str]) -> int:
    groups = dict(arg.split("=", 1) for arg in argv)
    if not groups:
        print(__doc__)
        return 2
    ds = mnist.load()
    cache: dict[Path, tuple] = {}
    results = []
    for name, spec in groups.items():
        runs = _runs(spec)
        for run in runs:
            if run not in cache:
                card = read_card(run / "card.json")
                model = keras.models.load_model(run / card["model_file"], compile=False)
                probs = model.predict(ds.x_val, batch_size=1000, verbose=0)
                cache[run] = (model, ensemble.errors(probs, ds.y_val), probs.argmax(axis=1) != ds.y_val)
        models = [cache[r][0] for r in runs]
        plain = ensemble.average_model(models).predict(ds.x_val, batch_size=500, verbose=0)
        tta = ensemble.average_model(models, tta=True).predict(ds.x_val, batch_size=500, verbose=0)
        plain_err, tta_err = ensemble.errors(plain, ds.y_val), ensemble.errors(tta, ds.y_val)
        print(f"{name}: {len(runs)} members, validation errors of each: "
              + ", ".join(f"{r.name} {cache[r][1]}" for r in runs))
        # Errors every member makes too: digits no recipe in the group can read.
        shared = int(np.all([cache[r][2] for r in runs], axis=0)[plain.argmax(axis=1) != ds.y_val].sum())
        print(f"  averaged: {plain_err} errors; with test-time augmentation: {tta_err} "
              f"(of {len(ds.y_val)}); every member misreads {shared} of the averaged errors", flush=True)
        results.append((min(plain_err, tta_err), len(runs), name))
    best = min(results)
    print(f"fewest validation errors: {best[2]} ({best[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
