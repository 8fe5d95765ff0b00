"""Small generated MNIST-like data for the MNIST tests: ten block patterns, one per digit."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.mnist import FILES, write_idx


def patterns(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images (28x28) and labels: each class is a fixed on/off grid of 7x7 blocks, plus noise."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(123).random((10, 4, 4)) > 0.5
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = np.kron(templates[labels], np.ones((7, 7))) * 200
    images = images + rng.integers(0, 40, images.shape)
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_fake_mnist(folder: Path, n_train: int = 400, n_test: int = 100) -> Path:
    """Write the four IDX .gz files MNIST ships as, holding generated patterns."""
    folder.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = patterns(n_train, seed=1)
    x_te, y_te = patterns(n_test, seed=2)
    for key, array in {"train_images": x_tr, "train_labels": y_tr,
                       "test_images": x_te, "test_labels": y_te}.items():
        write_idx(folder / FILES[key], array)
    return folder
