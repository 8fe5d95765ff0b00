"""tf.distribute through the real CLI: MirroredStrategy over two CPU slices, and two workers on 127.0.0.1.

Each run is its own process, so the device layout never leaks into other tests.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from core.config import PROJECT_ROOT
from core.rundir import RunDir
from core.training.devices import CPU_REPLICAS_ENV
from tests.fixtures.mnist import _digits

pytestmark = pytest.mark.slow  # trains real models or runs real training processes

ARGS = ["mnist", "--arch", "seed", "--epochs", "3", "--batch-size", "32", "--limit", "400"]


def _train(out, env, timeout=300):
    base = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "core.train", *ARGS, "--out", str(out)], cwd=PROJECT_ROOT,
                            env=base | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _check_model(run: RunDir) -> dict:
    """The run succeeded and its saved model reads the generated digits well above chance (10%)."""
    status = run.read_status()
    assert status["state"] == "succeeded", status.get("error")
    card = json.loads(run.card_path.read_text())
    model = keras.models.load_model(run.model_path)
    x, y = _digits(200, np.random.default_rng(7))
    accuracy = float((model.predict(x[..., None] / 255.0, verbose=0).argmax(1) == y).mean())
    assert accuracy > 0.5, accuracy
    return status | {"card": card}


def test_mirrored_strategy_over_two_logical_cpus(mnist_like, tmp_path):
    proc = _train(tmp_path / "m", {CPU_REPLICAS_ENV: "2"})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    status = _check_model(RunDir(tmp_path / "m"))
    assert status["device"] == "CPU [MirroredStrategy x2]"
    assert "CPU split into 2 logical devices" in out


def test_data_parallel_over_two_xla_cpu_devices_on_jax(mnist_like, tmp_path):
    """Keras on JAX: keras.distribution.DataParallel over two host devices; TensorFlow reloads the model."""
    pytest.importorskip("jax")
    env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = _train(tmp_path / "j", env)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    status = _check_model(RunDir(tmp_path / "j"))
    assert status["device"] == "CPU [Keras on JAX, DataParallel x2]"
    assert status["card"]["versions"]["keras_backend"] == "jax"


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_with_two_local_workers(mnist_like, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = [_train(tmp_path / f"w{i}", {"TF_CONFIG": json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    statuses = [_check_model(RunDir(tmp_path / f"w{i}")) for i in range(2)]
    assert {s["device"] for s in statuses} == {"2 workers x CPU [MultiWorkerMirroredStrategy x2]"}
    # One model trained together: both workers end with the same weights and figures.
    assert statuses[0]["card"]["metrics"] == statuses[1]["card"]["metrics"]
