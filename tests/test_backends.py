"""The same ``python -m core.train`` on Keras's TensorFlow and JAX backends: same recipes, cards, folders.

A short MNIST run (the ``fast`` recipe, with its RandomAffine augmentation) and a short
transfer run (tiny CNN on generated shapes) on each backend, from fixed generated data;
both backends must reach the same accuracy band. Each run is its own process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.config import PROJECT_ROOT
from core.rundir import RunDir
from tests.fixtures.images import make_shapes
from tests.fixtures.mnist import mnist_like  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow  # four real training processes
pytest.importorskip("jax")

BACKENDS = ("tensorflow", "jax")
MNIST = ["mnist", "--arch", "fast", "--epochs", "8", "--batch-size", "32", "--limit", "400", "--seed", "1"]
TRANSFER = ["transfer", "--data", "shapes", "--backbone", "tiny_cnn", "--image-size", "32",
            "--epochs-head", "3", "--epochs-fine", "1", "--fine-tune-layers", "3", "--batch-size", "16",
            "--lr", "1e-2", "--fine-lr", "1e-3", "--weights", "none", "--seed", "1"]


def _train(args: list[str], out, backend: str) -> dict:
    """One run on ``backend``, asked for as the Train page asks: ``--backend`` (no KERAS_BACKEND)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    command = [sys.executable, "-m", "core.train", *args, "--backend", backend, "--out", str(out)]
    proc = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = RunDir(out)
    assert run.read_status()["state"] == "succeeded"
    assert run.model_path.is_file() and (out / "config.json").is_file()
    return json.loads(run.card_path.read_text())


def test_mnist_and_transfer_train_alike_on_tensorflow_and_jax(mnist_like):  # noqa: F811
    make_shapes(mnist_like["data"] / "shapes", per_class=100, size=48)
    cards = {(task, backend): _train(args, mnist_like["runs"] / f"{task}_{backend}", backend)
             for task, args in (("mnist", MNIST), ("transfer", TRANSFER)) for backend in BACKENDS}
    for (task, backend), card in cards.items():
        assert card["versions"]["keras_backend"] == backend
        assert card["card_version"] == cards[(task, "tensorflow")]["card_version"]
        assert set(card) == set(cards[(task, "tensorflow")])  # one card shape for both backends
    for task, floor in (("mnist", 0.8), ("transfer", 0.6)):  # chance: 10% and 33%
        scores = {b: cards[(task, b)]["metrics"]["test_accuracy"] for b in BACKENDS}
        assert min(scores.values()) >= floor, (task, scores)
        assert abs(scores["tensorflow"] - scores["jax"]) <= 0.15, (task, scores)


def test_a_stop_in_the_middle_of_an_epoch_ends_cleanly_on_jax(mnist_like):  # noqa: F811
    """A STOP already waiting: the run ends after its first batch as "stopped", with its model and card.

    Keras 3.15 on JAX failed here ("Array has been deleted") while the monitor ran asynchronously.
    """
    out = mnist_like["runs"] / "stopped"
    out.mkdir()
    RunDir(out).request_stop()
    env = os.environ | {"KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-m", "core.train", *MNIST, "--out", str(out)], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert RunDir(out).read_status()["state"] == "stopped"
    card = json.loads(RunDir(out).card_path.read_text())
    assert card["stopped"] is True and card["training"]["epochs"] == 1
