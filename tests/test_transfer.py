"""Transfer learning: the backbone registry, the model, and the ``transfer`` task end to end.

Random weights (``--weights none``) and 64 px generated shapes keep it offline and fast.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import core

core.import_tensorflow()
import keras

from core.data import folders
from core.inference import gradcam
from core.inference import photos as classify
from core.models import transfer
from core.rundir import RunDir
from core.training.runner import main
from tests.fixtures.images import make_shapes

pytestmark = pytest.mark.slow  # trains real models or runs real training processes

SIZE = 64


def test_registry_and_local_weights(isolated):
    for name in ("mobilenet_v2_0.35", "mobilenet_v2_0.5", "mobilenet_v2_1.0"):
        assert name in transfer.BACKBONES
    assert transfer.weights_source("mobilenet_v2_0.5") == "imagenet"  # nothing local: download
    local = isolated["data"] / "imagenet" / transfer.BACKBONES["mobilenet_v2_0.5"].weights_file
    local.parent.mkdir()
    local.write_bytes(b"h5")
    assert transfer.weights_source("mobilenet_v2_0.5") == str(local)
    with pytest.raises(ValueError, match="unknown backbone"):
        transfer.build_backbone("vgg99", SIZE)


def test_model_takes_raw_rgb_and_preprocesses_like_the_backbone():
    model = transfer.build_model("mobilenet_v2_0.35", 3, SIZE, weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    inside = np.asarray(model.get_layer("preprocess")(x))
    expected = keras.applications.mobilenet_v2.preprocess_input(x.copy())
    np.testing.assert_allclose(inside, expected, atol=1e-5)
    assert model.output.shape[-1] == 3


def test_fine_tuning_unfreezes_only_the_top_and_keeps_batchnorm_frozen():
    model = transfer.build_model("mobilenet_v2_0.35", 3, SIZE, weights=None)
    backbone = transfer.get_backbone(model)
    transfer.set_trainable(model, 0)
    assert not backbone.trainable_weights
    transfer.set_trainable(model, 20)
    trainable = [layer for layer in backbone.layers if layer.trainable and layer.weights]
    top = backbone.layers[-20:]
    assert trainable and all(layer in top for layer in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)


def test_mobilenet_transfer_model_saves_reloads_and_explains(tmp_path):
    """The real backbone, nested: plain reload, same outputs, Grad-CAM reaches inside."""
    model = transfer.build_model("mobilenet_v2_0.35", 3, SIZE, weights=None)
    x = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    transfer.calibrate_batchnorm(model, x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(classify.probabilities(again, x), classify.probabilities(model, x), atol=1e-5)
    assert gradcam.last_conv_layer(again).name == transfer.BACKBONE_LAYER
    cam = gradcam.heatmap(again, x[0])
    assert cam.shape == (2, 2) and 0 <= cam.min() and cam.max() <= 1


def _train(isolated, out, *extra):
    make_shapes(isolated["data"] / "shapes", per_class=100, size=48)
    argv = ["transfer", "--data", "shapes", "--backbone", "tiny_cnn", "--image-size", str(SIZE),
            "--epochs-head", "3", "--epochs-fine", "2", "--fine-tune-layers", "3", "--batch-size", "16",
            "--lr", "1e-2", "--fine-lr", "1e-3", "--weights", "none", "--seed", "1", "--out", str(out),
            *extra]
    return main(argv)


def test_transfer_end_to_end(isolated):
    out = isolated["runs"] / "shapes1"
    assert _train(isolated, out) == 0
    run = RunDir(out)
    assert run.read_status()["state"] == "succeeded"
    card = json.loads(run.card_path.read_text())
    assert card["task"] == "image" and card["classes"] == ["blue", "green", "red"]
    assert card["input_shape"] == [SIZE, SIZE, 3]
    assert card["calibration"]["temperature"] > 0 and card["unknown"]["method"] == "mahalanobis"
    assert card["unknown"]["flag_rate_target"] == 0.05  # photos: at most 5% of real ones flagged
    phases = {r["phase"] for r in run.read_metrics("epoch")}
    assert phases == {"head", "fine"}
    metrics = card["metrics"]
    assert set(metrics["per_class"]) == set(card["classes"])
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["test_images"] == 45

    split = folders.load_split(out / folders.SPLIT_FILE)
    assert card["data"]["split_file"] == folders.SPLIT_FILE
    assert not {p for p, _ in split["test"]} & {p for p, _ in split["train"] + split["val"]}

    # The saved model reloads with plain Keras (no custom objects) and takes raw 0-255 RGB.
    model = keras.saving.load_model(run.model_path)
    root = isolated["data"] / "shapes"
    x = np.stack([folders.read_image(str(root / p), SIZE) for p, _ in split["test"]])
    y = np.array([label for _, label in split["test"]])
    accuracy = float((classify.probabilities(model, x).argmax(1) == y).mean())
    assert accuracy > 0.6  # chance is 1/3
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)

    cam = gradcam.heatmap(model, x[0])
    assert cam.shape == (8, 8) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)


def test_bad_settings_and_data_fail_clearly(isolated, capsys):
    out = isolated["runs"] / "bad"
    assert _train(isolated, out, "--backbone", "resnet9000") == 2
    assert "unknown backbone" in RunDir(out).read_status()["error"]
    (isolated["data"] / "few" / "a").mkdir(parents=True)
    (isolated["data"] / "few" / "b").mkdir()
    make_shapes(isolated["data"] / "few", per_class=2, size=16, classes={"a": (1, 2, 3), "b": (4, 5, 6)})
    code = main(["transfer", "--data", "few", "--weights", "none", "--out", str(isolated["runs"] / "few")])
    assert code == 2
    error = RunDir(isolated["runs"] / "few").read_status()["error"]
    assert "at least 3" in error and "a has 2" in error and "b has 2" in error
    code = main(["transfer", "--data", "../../etc", "--out", str(isolated["runs"] / "x")])
    assert code == 2 and "outside the data folder" in capsys.readouterr().err


def test_stop_request_ends_training_with_a_card(isolated):
    out = RunDir(isolated["runs"] / "stopped").create()
    out.request_stop()
    assert _train(isolated, out.path) == 0
    assert out.read_status()["state"] == "stopped"
    card = json.loads(out.card_path.read_text())
    assert card["stopped"] is True and card["training"]["epochs"]["fine"] == 0
    assert out.model_path.is_file()
