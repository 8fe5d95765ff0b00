"""Ensemble selection on validation and the single averaged Keras model."""
from __future__ import annotations

import json

import core

core.import_tensorflow()
import keras
import numpy as np

from core import ensemble, train
from tests.mnist_fixtures import write_fake_mnist


def _probs(correct: list[bool], labels: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    out = np.full((len(labels), 10), (1 - confidence) / 9)
    for i, (ok, label) in enumerate(zip(correct, labels, strict=True)):
        out[i, label if ok else (label + 1) % 10] = confidence
    return out


def test_greedy_selection_adds_only_members_that_help():
    labels = np.arange(6) % 10
    a = _probs([True, True, True, True, True, False], labels)
    b = _probs([False, False, True, True, True, True], labels, confidence=0.6)
    same_as_a = a.copy()
    wrong = _probs([False] * 6, labels, confidence=0.99)
    chosen = ensemble.greedy_select([wrong, a, b, same_as_a], labels)
    assert chosen[0] in (1, 3)  # starts from the lowest validation loss
    assert 2 in chosen and 0 not in chosen  # the complementary member joins, the bad one never


def test_build_averages_members_and_records_choice(isolated, tmp_path):
    write_fake_mnist(isolated["data"] / "mnist", n_train=200, n_test=40)
    runs = []
    for seed in (1, 2):
        out = tmp_path / f"m{seed}"
        assert train.main(["mnist", "--arch", "seed", "--epochs", "1", "--batch-size", "32",
                           "--seed", str(seed), "--out", str(out)]) == 0
        runs.append(out)
    selection = ensemble.build(runs, tmp_path / "ens", "mnist_ensemble")
    card = json.loads((tmp_path / "ens" / "card.json").read_text())
    assert card["task"] == "mnist" and card["name"] == "mnist_ensemble"
    assert set(card["config"]["members"]) <= {"m1", "m2"}
    assert json.loads((tmp_path / "ens" / "selection.json").read_text()) == selection
    assert selection["best_single"] in {str(r) for r in runs}

    model = keras.models.load_model(tmp_path / "ens" / "model.keras")
    members = [keras.models.load_model(tmp_path / name / "model.keras") for name in card["config"]["members"]]
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
