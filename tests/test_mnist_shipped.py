"""The shipped MNIST models load, match their cards and read real test digits."""
from __future__ import annotations

import pytest

import core

core.import_tensorflow()
import keras
import numpy as np

from core import config
from core.data import mnist
from core.io import sha256_file
from core.models.cards import read_card

SHIPPED = config.PROJECT_ROOT / "assets" / "models"
CARDS = sorted(SHIPPED.glob("mnist_*.card.json"))
HAVE_DATA = all((config.PROJECT_ROOT.parent / "shared" / "data" / "mnist" / f).is_file()
                for f in mnist.FILES.values())


def _data_folder():
    for folder in (config.dataset_dir("mnist"), config.PROJECT_ROOT.parent / "shared" / "data" / "mnist"):
        if all((folder / f).is_file() for f in mnist.FILES.values()):
            return folder
    return None


def test_seed_baseline_is_shipped():
    assert SHIPPED / "mnist_seed.card.json" in CARDS


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: p.name)
def test_card_is_complete_and_matches_its_file(card_path):
    card = read_card(card_path)
    model_path = card_path.parent / card["model_file"]
    assert card["task"] == "mnist" and card["input_shape"] == [28, 28, 1]
    assert sha256_file(model_path) == card["model_sha256"]
    assert model_path.stat().st_size < 20 * 2**20
    m = card["metrics"]
    assert m["test_errors"] == round((1 - m["test_accuracy"]) * m["test_images"])
    assert m["test_images"] == 10_000 and card["data"]["files"]  # trained on the real IDX files


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: p.name)
def test_shipped_model_reads_real_digits(card_path):
    folder = _data_folder()
    if folder is None:
        pytest.skip("MNIST IDX files not present")
    card = read_card(card_path)
    x = mnist.to_float(mnist.read_idx(folder / mnist.FILES["test_images"], mnist.IMAGE_MAGIC)[:100])
    y = mnist.read_idx(folder / mnist.FILES["test_labels"], mnist.LABEL_MAGIC)[:100]
    model = keras.models.load_model(card_path.parent / card["model_file"])
    assert not model.compiled  # shipped without optimizer state
    pred = np.asarray(model(x, training=False)).argmax(axis=1)
    assert (pred != y).sum() <= 2, f"{card['name']} misread {(pred != y).sum()} of 100 test digits"
