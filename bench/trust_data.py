"""The held-out data ``bench.calibration`` and ``bench.unknown`` read, per task.

MNIST: the fixed validation split of ``core.data.mnist`` (the one the split-trained
shipped models held out) and the test set. Flowers: the shipped model's own split file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import config
from core.data import folders, mnist
from core.models.cards import ModelEntry

_mnist = None


def mnist_data() -> mnist.Mnist:
    global _mnist
    if _mnist is None:
        _mnist = mnist.load(val_split=0.1)
    return _mnist


def flowers_split(entry: ModelEntry, part: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, size, size, 3), labels) of one part of the model's split file."""
    split_file = entry.card_path.parent / entry.card["data"]["split_file"]
    split = folders.load_split(split_file)
    root = Path(split["folder"])
    root = root if root.is_absolute() else config.data_root() / root
    items = split[part]
    x = np.stack([folders.read_image(str(root / p), size) for p, _ in items])
    return x, np.array([label for _, label in items])
