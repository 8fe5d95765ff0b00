"""`python -m core.train mnist`: a short run end to end, cards, resume, stop and bad settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import core

core.import_tensorflow()
import keras
import numpy as np

from core.data import mnist
from core.rundir import RunDir
from core.training import runner
from core.training import runner as train
from tests.fixtures.mnist import write_fake_mnist

pytestmark = pytest.mark.slow  # trains real models or runs real training processes

CARD_FIELDS = {"name", "task", "model_file", "title", "metrics", "params", "classes", "input_shape",
               "input_range", "data", "config", "training", "versions", "seed", "created"}


@pytest.fixture
def fake_data(isolated):
    write_fake_mnist(isolated["data"] / "mnist", n_train=300, n_test=60)
    return isolated


def test_cli_short_run_writes_model_and_full_card(fake_data, tmp_path):
    out = tmp_path / "run"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "core.train", "mnist", "--arch", "seed", "--epochs", "1",
                           "--batch-size", "32", "--limit", "200", "--out", str(out)],
                          cwd=core.config.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = RunDir(out)
    assert run.read_status()["state"] == "succeeded"
    card = json.loads(run.card_path.read_text())
    assert CARD_FIELDS <= set(card)
    assert card["task"] == "mnist" and card["input_shape"] == [28, 28, 1] and card["input_range"] == [0, 1]
    assert {"test_accuracy", "test_errors", "val_accuracy"} <= set(card["metrics"])
    assert card["metrics"]["test_images"] == 60 and card["metrics"]["val_images"] == 20
    assert card["params"] == 93_322 and card["seed"] == 0 and card["training"]["epochs"] == 1
    assert {"epochs", "wall_time_s", "hardware", "device"} <= set(card["training"])
    assert card["versions"]["keras_backend"] == keras.backend.backend()
    assert card["card_version"] == runner.CARD_VERSION

    # Honest answers from a trained run too: a temperature fitted on validation, an unknown check.
    cal, unk = card["calibration"], card["unknown"]
    assert cal["temperature"] > 0 and "validation split (20 images)" in cal["fitted_on"]
    assert 0 <= cal["ece_test_after"] <= 1 and 0 <= cal["ece_test_before"] <= 1
    assert unk["method"] == "mahalanobis" and (out / unk["stats_file"]).is_file()
    from core.inference import served

    model = served.load(run.model_path)
    assert model.temperature == cal["temperature"] and model.detector is not None
    x = mnist.load(0.1, 200).x_test[:4]
    assert model.known(x, model.calibrate(model.model.predict(x, verbose=0))).dtype == bool
    assert set(card["data"]["files"]) == set(mnist.FILES.values())  # sha256 of each IDX file
    assert all(len(h) == 64 for h in card["data"]["files"].values())
    assert [r["epoch"] for r in run.read_metrics("epoch")] == [1]
    assert run.checkpoint_state()["epoch"] == 1

    # The saved model reloads and predicts exactly what the card's figures came from.
    ds = mnist.load(0.1, 200)
    model = keras.models.load_model(run.model_path)
    assert not model.compiled  # saved without optimizer state: a third of the size
    probs = model.predict(ds.x_test, verbose=0)
    assert int((probs.argmax(1) != ds.y_test).sum()) == card["metrics"]["test_errors"]
    again = keras.models.load_model(run.model_path).predict(ds.x_test[:8], verbose=0)
    np.testing.assert_allclose(again, probs[:8], rtol=1e-5, atol=1e-6)


def test_stop_then_resume_continues_from_checkpoint(fake_data, tmp_path, capsys):
    out = tmp_path / "run"
    RunDir(out).create().request_stop()  # stop asked before the first batch ends
    args = ["mnist", "--arch", "fast", "--epochs", "3", "--batch-size", "32", "--out", str(out)]
    assert train.main(args) == 0
    run = RunDir(out)
    assert run.read_status()["state"] == "stopped"
    assert json.loads(run.card_path.read_text())["stopped"] is True
    assert run.checkpoint_state()["epoch"] == 1
    steps_done = keras.models.load_model(run.checkpoint_path).optimizer.iterations.numpy()

    run.stop_path.unlink()
    run.model_path.unlink()  # so the test can see the resumed run write it again
    assert train.main(args + ["--resume"]) == 0
    assert "resuming fast from epoch 1/3" in capsys.readouterr().err
    assert run.read_status()["state"] == "succeeded"
    assert [r["epoch"] for r in run.read_metrics("epoch")] == [1, 2, 3]
    card = json.loads(run.card_path.read_text())
    assert card["training"]["epochs"] == 3 and "stopped" not in card
    # The optimizer kept counting from the checkpoint: 2 more epochs of 9 steps (270 images / 32).
    final = keras.models.load_model(run.checkpoint_path).optimizer.iterations.numpy()
    assert final == steps_done + 2 * 9


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--batch-size", "0"], "batch size must be at least 1"),
    (["--batch-size", "5000"], "batch size 5000 is larger than the 270 training images"),
    (["--lr", "0"], "learning rate must be positive"),
    (["--arch", "huge"], "unknown architecture 'huge'"),
    (["--val-split", "1.5"], "validation split must be at least 0 and below 1"),
    (["--val-split", "-0.1"], "validation split must be at least 0 and below 1"),
])
def test_bad_settings_fail_clearly(fake_data, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert train.main(["mnist", "--out", str(out), *flags]) == 2
    assert message in capsys.readouterr().err
    status = RunDir(out).read_status()
    assert status["state"] == "failed" and message in status["error"]


def test_existing_run_is_never_overwritten(fake_data, tmp_path, capsys):
    out = tmp_path / "run"
    run = RunDir(out).create()
    run.model_path.write_bytes(b"precious")
    assert train.main(["mnist", "--arch", "seed", "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert run.model_path.read_bytes() == b"precious"
    assert train.main(["mnist", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_corrupt_data_is_a_clear_failure(isolated, tmp_path, capsys):
    folder = write_fake_mnist(isolated["data"] / "mnist", n_train=50, n_test=10)
    raw = (folder / mnist.FILES["train_images"]).read_bytes()
    (folder / mnist.FILES["train_images"]).write_bytes(raw[: len(raw) // 2])
    assert train.main(["mnist", "--arch", "seed", "--out", str(tmp_path / "run")]) == 2
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err
