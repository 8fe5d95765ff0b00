"""Evaluate every shipped MNIST model on the 10,000 test images.

    CNN_STUDIO_DATA=/work/shared/data .venv/bin/python -m bench.mnist_accuracy

Prints, per model: test accuracy, error count, whether they match its card, and a
per-digit summary (recall per true digit and its most frequent confusion).
"""
from __future__ import annotations

import sys
from pathlib import Path

import core

core.import_tensorflow()
import keras
import numpy as np

from core import config
from core.data import mnist
from core.models import augment  # noqa: F401 - registers RandomAffine for loading
from core.models.cards import find_models


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_digit(matrix: np.ndarray) -> list[str]:
    lines = []
    for digit in range(10):
        row = matrix[digit].copy()
        total, right = row.sum(), row[digit]
        row[digit] = 0
        worst = int(row.argmax())
        mix = f"most often read as {worst} ({row[worst]}x)" if row[worst] else "no errors"
        lines.append(f"    {digit}: {right}/{total} = {right / total:.2%}  {mix}")
    return lines


def main() -> int:
    (_, _), (x_test, y_test), source = mnist.load_raw()
    x = mnist.to_float(x_test)
    print(f"test images: {len(y_test)} from {source['source']} ({source.get('folder', 'keras download')})")
    entries = [e for e in find_models(config.models_dir(), Path("/nonexistent"), "mnist") if e.ok]
    if not entries:
        print("no shipped MNIST models found in", config.models_dir())
        return 1
    rows = []
    for entry in entries:
        model = keras.models.load_model(entry.model_path, compile=False)
        pred = model.predict(x, batch_size=1000, verbose=0).argmax(axis=1)
        errors = int((pred != y_test).sum())
        acc = 1 - errors / len(y_test)
        card_errors = entry.card.get("metrics", {}).get("test_errors")
        agree = "matches card" if card_errors == errors else f"CARD SAYS {card_errors} errors"
        print(f"\n{entry.name} ({entry.title}, {entry.card.get('params', '?')} params): "
              f"test accuracy {acc:.2%}, {errors} errors [{agree}]")
        matrix = confusion(y_test, pred)
        print("\n".join(per_digit(matrix)))
        off = matrix - np.diag(np.diag(matrix))
        pairs = sorted(((off[i, j], i, j) for i in range(10) for j in range(10) if off[i, j]), reverse=True)
        print("  top confusions (true->predicted):", ", ".join(f"{i}->{j} x{n}" for n, i, j in pairs[:5]))
        rows.append((entry.name, acc, errors))
    print("\nsummary")
    for name, acc, errors in rows:
        print(f"  {name:<20} {acc:.2%}  {errors:>4} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
