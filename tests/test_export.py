"""Export round-trips: each format, loaded by its own runtime, predicts what the Keras model does.

Three small generated models cover the shapes the app ships: an MNIST CNN with augmentation
and batch-norm inside, a transfer model with its preprocessing layer inside, and an
averaging ensemble with test-time-augmentation views. None is trained; their weights are
made decisive (and batch-norm statistics non-trivial) so a wrong mode or a lost layer shows.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import core

core.import_tensorflow()
import keras

from core.models import export, transfer
from core.models import mnist as mnist_models
from tests.fixtures.mnist import patterns

FLOAT_FILES = ("model.keras", "saved_model", "model_float32.tflite", "model.onnx")
TOLERANCE = 1e-4


def _decisive(model: keras.Model, seed: int, scale: float = 30) -> keras.Model:
    """Random batch-norm statistics and a large output layer, so classes are far apart."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta + rng.normal(0, 0.1, beta.shape),
                               mean + rng.normal(0, 0.1, mean.shape), var * rng.uniform(0.5, 2, var.shape)])
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * scale, bias])
    return model


def _card(name: str, model_file: str, classes: list[str], shape, value_range, note: str) -> dict:
    return {"name": name, "task": "mnist" if shape[-1] == 1 else "image", "model_file": model_file,
            "title": f"test {name}", "classes": classes, "input_shape": list(shape),
            "input_range": value_range, "input_note": note}


def _digits(n: int = 100) -> np.ndarray:
    images, _ = patterns(n, seed=5)
    return (images.astype(np.float32) / 255.0)[..., None]


def _mnist_run(folder):
    """A run folder (model.keras + card.json) holding an MNIST CNN with augmentation inside."""
    model = _decisive(mnist_models.build_fast(), seed=1)
    folder.mkdir()
    model.save(folder / "model.keras")
    card = _card("fast_run", "model.keras", [str(d) for d in range(10)], (28, 28, 1), [0.0, 1.0],
                 "grayscale 28x28, white on black, scaled to [0, 1]")
    (folder / "card.json").write_text(json.dumps(card))
    return folder, model, _digits()


def _transfer_shipped(models_dir):
    """A shipped-style NAME.keras + NAME.card.json transfer model with its Rescaling layer inside."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (100, 32, 32, 3)).astype(np.float32)
    model = transfer.build_model("tiny_cnn", num_classes=3, image_size=32, weights=None)
    transfer.calibrate_batchnorm(model, images[:32])
    _decisive(model, seed=2)
    model.save(models_dir / "petals.keras")
    card = _card("petals", "petals.keras", ["daisy", "rose", "tulip"], (32, 32, 3), [0, 255],
                 "RGB resized to 32x32, raw 0-255 (preprocessing is in the model)")
    (models_dir / "petals.card.json").write_text(json.dumps(card))
    return "petals", model, images


def _ensemble_file(folder):
    """A .keras ensemble (two members, test-time-augmentation views) with its card beside it."""
    from core.training.ensemble import average_model

    # Two members with the same weights: the average is as decisive as one, whatever the init.
    first = _decisive(mnist_models.build_fast(), 4)
    second = mnist_models.build_fast()
    second.set_weights(first.get_weights())
    members = [first, second]
    model = average_model(members, tta=True)
    folder.mkdir()
    model.save(folder / "duo.keras")
    card = _card("duo", "duo.keras", [str(d) for d in range(10)], (28, 28, 1), [0.0, 1.0], "")
    (folder / "duo.card.json").write_text(json.dumps(card))
    return folder / "duo.keras", model, _digits()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every shape of model exported in every format, with the Keras reference predictions."""
    keras.utils.set_random_seed(0)  # the same generated models on every run
    root = tmp_path_factory.mktemp("export")
    models_dir = root / "models"
    models_dir.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_STUDIO_MODELS", str(models_dir))
        results = {}
        for kind, (what, model, images) in {
            "mnist run folder": _mnist_run(root / "run"),
            "transfer shipped name": _transfer_shipped(models_dir),
            "ensemble .keras path": _ensemble_file(root / "ens"),
        }.items():
            reference = np.asarray(model(images, training=False))
            out = export.export(what, root / f"out_{len(results)}")
            results[kind] = (out, images, reference, export.compare(out, images, reference))
    return results


KINDS = ("mnist run folder", "transfer shipped name", "ensemble .keras path")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", FLOAT_FILES)
def test_float_exports_match_keras(exported, kind, name):
    out, images, reference, report = exported[kind]
    assert len(images) == 100
    top2 = np.sort(reference, axis=1)[:, -2:]
    assert np.median(top2[:, 1] - top2[:, 0]) > 0.05, "the test model must be decisive"
    figures = report[name]
    assert figures["top_agreement"] == 1.0, figures
    assert figures["max_abs_diff"] < TOLERANCE, figures


@pytest.mark.parametrize("kind", KINDS)
def test_int8_tflite_is_smaller_and_mostly_agrees(exported, kind):
    out, images, reference, report = exported[kind]
    int8, flt = report["model_int8.tflite"], report["model_float32.tflite"]
    print(f"{kind}: int8 {int8['bytes']} B vs float32 {flt['bytes']} B, top-class agreement "
          f"{int8['top_agreement']:.0%}, max |p - p_keras| {int8['max_abs_diff']:.4f}")
    assert int8["bytes"] < flt["bytes"] / 2
    assert int8["top_agreement"] >= 0.8


@pytest.mark.parametrize("kind", KINDS)
def test_labels_preprocessing_and_card_are_written_beside(exported, kind):
    out, images, _, _ = exported[kind]
    card = json.loads((out / "card.json").read_text())
    assert card["model_file"] == "model.keras"
    assert (out / "labels.txt").read_text().splitlines() == card["classes"]
    pre = json.loads((out / "preprocessing.json").read_text())
    assert pre["input_shape"] == [None, *images.shape[1:]]
    assert pre["value_range"] == card["input_range"]
    assert "labels.txt" in (out / "README.md").read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "no leftovers"


def test_one_format_writes_only_its_files(tmp_path):
    folder, _, _ = _mnist_run(tmp_path / "run")
    out = export.export(folder, tmp_path / "onnx_only", ["onnx"])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "labels.txt", "model.onnx",
                                                     "preprocessing.json"]


@pytest.mark.parametrize("make_bad, message", [
    (lambda tmp: tmp / "missing_run", "not a run folder"),
    (lambda tmp: tmp.joinpath("empty").mkdir() or tmp / "empty", "holds no card.json"),
    (lambda tmp: (tmp / "x.keras").write_bytes(b"junk") and tmp / "x.keras", "no card beside"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, make_bad, message):
    bad = make_bad(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "core.export", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_existing_folder_is_never_overwritten(tmp_path):
    folder, _, _ = _mnist_run(tmp_path / "run")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(export.ExportError, match="already exists"):
        export.export(folder, tmp_path / "taken", ["keras"])
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


def test_a_card_without_class_names_is_refused(tmp_path):
    folder, _, _ = _mnist_run(tmp_path / "run")
    card = json.loads((folder / "card.json").read_text())
    del card["classes"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(export.ExportError, match="no class names"):
        export.export(folder, tmp_path / "o", ["keras"])
