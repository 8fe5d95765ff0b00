"""Ensemble selection on validation and the single averaged Keras model."""
from __future__ import annotations

import json

import core

core.import_tensorflow()
import keras
import numpy as np
import pytest

from core.training import ensemble
from core.training import runner as train
from tests.fixtures.mnist import write_fake_mnist

pytestmark = pytest.mark.slow  # trains real models or runs real training processes


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
    selection = ensemble.build(runs, tmp_path / "ens", "mnist_ensemble", tta="off")
    card = json.loads((tmp_path / "ens" / "card.json").read_text())
    assert card["task"] == "mnist" and card["name"] == "mnist_ensemble"
    assert card["config"]["members"] == ["m1", "m2"]  # "all" is the default selection
    assert json.loads((tmp_path / "ens" / "selection.json").read_text()) == selection
    assert selection["best_single"] in {str(r) for r in runs}

    model = keras.models.load_model(tmp_path / "ens" / "model.keras")
    members = [keras.models.load_model(tmp_path / name / "model.keras") for name in card["config"]["members"]]
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def _views(x: np.ndarray) -> np.ndarray:
    inputs = keras.Input((28, 28, 1))
    stacked, n_views = ensemble.tta_views(inputs)
    return keras.Model(inputs, stacked).predict(x, verbose=0).reshape(n_views, len(x), 28, 28)


def test_tta_views_shift_by_one_pixel_and_zoom_about_the_centre():
    x = np.zeros((1, 28, 28, 1), "float32")
    x[0, 6, 20, 0] = 1.0  # one lit pixel away from the centre
    views = _views(x)
    where = [tuple(int(v) for v in np.unravel_index(view[0].argmax(), (28, 28))) for view in views]
    assert where[:5] == [(6, 20), (5, 20), (7, 20), (6, 19), (6, 21)]  # as is, up, down, left, right
    centre = np.array([13.5, 13.5])
    distance = [np.linalg.norm(np.array(w) - centre) for w in where]
    assert distance[5] > distance[0] > distance[6]  # zoom in pushes it out, zoom out pulls it in
    np.testing.assert_allclose(views.sum(axis=(2, 3))[:5, 0], 1.0)  # shifts lose nothing


def test_tta_model_averages_every_view_of_every_member():
    rng = np.random.default_rng(0)
    members = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        members.append(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                         keras.layers.Dense(10, activation="softmax")]))
    x = rng.random((3, 28, 28, 1)).astype("float32")
    views = _views(x)[..., None]
    expected = np.mean([m.predict(v, verbose=0) for m in members for v in views], axis=0)
    model = ensemble.average_model(members, tta=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    plain = ensemble.average_model(members, tta=False).predict(x, verbose=0)
    assert not np.allclose(plain, expected, atol=1e-4)  # the views really change the answer


def test_tta_ensemble_saves_reloads_and_records_the_choice(isolated, tmp_path):
    write_fake_mnist(isolated["data"] / "mnist", n_train=200, n_test=40)
    out = tmp_path / "m1"
    assert train.main(["mnist", "--arch", "seed", "--epochs", "1", "--batch-size", "32",
                       "--seed", "1", "--out", str(out)]) == 0
    selection = ensemble.build([out, out], tmp_path / "ens", "mnist_ensemble", tta="on")
    assert selection["tta"] is True and isinstance(selection["val_errors_tta"], int)
    card = json.loads((tmp_path / "ens" / "card.json").read_text())
    assert card["config"]["tta"] is True
    assert card["title"] == "Ensemble of 2 CNNs (2 seed) with test-time augmentation"

    member = keras.models.load_model(out / "model.keras")
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype("float32")
    expected = member.predict(_views(x).reshape(-1, 28, 28, 1), verbose=0).reshape(7, 4, 10).mean(axis=0)
    reloaded = keras.models.load_model(tmp_path / "ens" / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_draw_page_explainer_handles_a_tta_ensemble():
    from core.inference import digits as predict

    keras.utils.set_random_seed(3)
    member = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                               keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model = ensemble.average_model([member], tta=True)
    x = np.random.default_rng(2).random((28, 28)).astype("float32")  # as the canvas gives it
    explanation = predict.explain(model, x)
    expected = model.predict(x[None, ..., None], verbose=0)[0]
    np.testing.assert_allclose(explanation.probabilities, expected, atol=1e-5)
    assert [name for name, _ in explanation.activations] == [member.layers[0].name]
    assert explanation.saliency.shape == (28, 28) and explanation.saliency.max() > 0


def test_refits_replace_the_members_chosen_on_their_split_twins(isolated, tmp_path, capsys):
    write_fake_mnist(isolated["data"] / "mnist", n_train=200, n_test=40)
    common = ["mnist", "--arch", "seed", "--epochs", "1", "--batch-size", "32"]
    for seed in (1, 2):
        assert train.main(common + ["--seed", str(seed), "--out", str(tmp_path / f"split{seed}")]) == 0
        assert train.main(common + ["--seed", str(seed), "--val-split", "0",
                                    "--out", str(tmp_path / f"full{seed}")]) == 0
    full = json.loads((tmp_path / "full1" / "card.json").read_text())
    assert full["data"]["train_images"] == 200 and full["metrics"]["val_images"] == 0
    assert full["metrics"]["val_accuracy"] is None  # nothing held out, nothing claimed

    splits = [tmp_path / "split1", tmp_path / "split2"]
    refits = [tmp_path / "full2", tmp_path / "full1"]  # order does not matter: matched by recipe and seed
    selection = ensemble.build(splits, tmp_path / "ens", tta="off", refit_dirs=refits)
    card = json.loads((tmp_path / "ens" / "card.json").read_text())
    assert card["config"]["members"] == ["full1", "full2"] == selection["members"]
    assert card["config"]["validated_as"] == ["split1", "split2"]
    assert card["data"]["train_images"] == 200 and "refit" in card["title"]
    assert "twins" in card["metrics"]["val_note"]

    model = keras.models.load_model(tmp_path / "ens" / "model.keras")
    members = [keras.models.load_model(tmp_path / f"full{s}" / "model.keras") for s in (1, 2)]
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)

    # A chosen member without a refit of its recipe, or a "refit" that held data out, is refused.
    with pytest.raises(ensemble.EnsembleError, match="no refit .* for: split2"):
        ensemble.build(splits, tmp_path / "ens2", tta="off", refit_dirs=[tmp_path / "full1"])
    with pytest.raises(ensemble.EnsembleError, match="split1 is not a refit"):
        ensemble.build(splits, tmp_path / "ens3", tta="off", refit_dirs=[tmp_path / "split1"])
    (tmp_path / "full1.log").write_text("a glob can catch a log file")
    with pytest.raises(ensemble.EnsembleError, match="full1.log is not a finished run folder"):
        ensemble.build(splits, tmp_path / "ens4", tta="off", refit_dirs=refits + [tmp_path / "full1.log"])


def test_ensemble_cli_says_one_sentence_for_bad_runs(tmp_path):
    """`python -m core.ensemble` turns the library's error into exit 2 and one line, no traceback."""
    import subprocess
    import sys

    (tmp_path / "a").mkdir()
    proc = subprocess.run([sys.executable, "-m", "core.ensemble", str(tmp_path / "a"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: an ensemble needs at least two finished runs"
