"""core.training.devices: device choice, precision and strategy on this CPU, and the runner's checks."""
from __future__ import annotations

import subprocess
import sys

import pytest

import core
from core.config import PROJECT_ROOT
from core.training import devices

core.import_tensorflow()
import keras  # noqa: E402


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_tf_config_worker_count(monkeypatch):
    assert devices.tf_config_workers({}) == 0
    two = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    assert devices.tf_config_workers({"TF_CONFIG": two}) == 2
    for bad in ("{not json", '{"cluster": {}}', '{"cluster": {"worker": ["a:1"]}}'):
        with pytest.raises(devices.DeviceError, match="TF_CONFIG must be JSON like"):
            devices.tf_config_workers({"TF_CONFIG": bad})


def test_bad_setting_names_are_refused_before_touching_tensorflow():
    with pytest.raises(devices.DeviceError, match="device must be one of auto, cpu, gpu, not 'tpu'"):
        devices.setup(device="tpu")
    with pytest.raises(devices.DeviceError, match="XLA must be one of"):
        devices.setup(xla="maybe")


@pytest.mark.skipif(bool(core.import_tensorflow().config.list_physical_devices("GPU")), reason="CPU machine")
def test_cpu_machine_falls_back_with_a_visible_note(monkeypatch, float32_after):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv(devices.CPU_REPLICAS_ENV, raising=False)
    strategy, plan = devices.setup("auto", mixed_precision="on", xla="off")
    assert plan.device == "cpu" and plan.gpus == [] and plan.replicas == 1 == strategy.num_replicas_in_sync
    assert any("no GPU found" in n for n in plan.notes)
    assert any("mixed precision asked for but no GPU" in n for n in plan.notes)
    assert not plan.mixed_precision and keras.mixed_precision.global_policy().name == "float32"
    assert plan.jit_compile() is False and plan.describe() == "CPU [XLA off]"
    assert devices.current() is plan
    with pytest.raises(devices.DeviceError, match="no GPU"):
        devices.setup("gpu")


def test_plan_describes_gpus_strategy_and_precision():
    plan = devices.DevicePlan("gpu", "MirroredStrategy", replicas=2, gpus=["H100", "H100"],
                              mixed_precision=True, xla="on")
    assert plan.describe() == "2 GPU (H100, H100) [MirroredStrategy x2, mixed_float16, XLA on]"
    assert plan.jit_compile() is True and plan.as_dict()["description"] == plan.describe()


def test_core_train_refuses_a_gpu_it_does_not_have_and_bad_choices(tmp_path):
    if core.import_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    cmd = [sys.executable, "-m", "core.train", "mnist", "--epochs", "1", "--out", str(tmp_path / "r")]
    done = subprocess.run(cmd + ["--device", "gpu"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "device 'gpu' was asked for but TensorFlow sees no GPU" in done.stderr
    assert '"state": "failed"' in (tmp_path / "r" / "status.json").read_text()
    done = subprocess.run(cmd + ["--mixed-precision", "sometimes"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "invalid choice: 'sometimes'" in done.stderr


def test_training_memory_uses_the_calculator_for_plain_stacks():
    from core.learn import calculator as memory

    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3), layers.MaxPooling2D(),
                              layers.Flatten(), layers.Dense(10)])
    est = devices.training_memory(model, batch_size=50, optimizer="adam")
    shape, layers = memory.from_keras(model)
    expected = memory.analyze(shape, layers, "float32", 50, "adam").totals["training_bytes"]
    assert est["method"] == "calculator" and est["total_bytes"] == expected
    half = devices.training_memory(model, batch_size=50, mixed_precision=True, optimizer="adam")
    assert half["activation_bytes"] * 2 == est["activation_bytes"]
    assert half["weight_bytes"] == est["weight_bytes"]


def test_training_memory_counts_every_output_of_a_residual_model():
    inputs = keras.Input((8, 8, 2))
    a = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(3, 3, padding="same")(a)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b])))
    model = keras.Model(inputs, out)
    est = devices.training_memory(model, batch_size=4, optimizer="sgd")
    elements = 8 * 8 * 2 + 3 * (8 * 8 * 3) + 3 + 2  # input, two convs and the sum, pooling, dense
    params = model.count_params()  # 57 + 84 + 8 = 149, all trainable
    assert est["method"] == "layer outputs" and params == 149
    assert est["total_bytes"] == elements * 4 * 4 + params * 4 * 2  # weights + one gradient each
    assert devices.fits(est["total_bytes"], None) is None
    assert devices.fits(1e9, 2e9) is True and devices.fits(1.9e9, 2e9) is False


def test_machine_info_and_device_plan_on_jax():
    """Under KERAS_BACKEND=jax the sidebar names JAX, and the JAX plan refuses a missing GPU in words."""
    pytest.importorskip("jax")
    code = ("from core import machine\nfrom core.training import devices\n"
            "info = machine.machine_info()\nprint(info.backend, '|', info.describe_libraries())\n"
            "plan = devices.setup_jax('cpu', 'on', 'auto')\nprint(plan.describe(), '|', plan.notes)\n"
            "try:\n    devices.setup_jax('gpu')\nexcept devices.DeviceError as exc:\n    print(exc)\n")
    env = {**__import__("os").environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("jax | Keras 3.") and " on JAX 0." in lines[0]
    assert lines[1].startswith("CPU [Keras on JAX] |") and "mixed precision asked for but no GPU" in lines[1]
    assert lines[2].startswith("device 'gpu' was asked for but JAX sees no GPU")


def test_backend_is_jax_only_where_tensorflow_is_missing(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no keras.json
    assert core.keras_backend_name() == "tensorflow"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    assert core.keras_backend_name() == ("jax" if real("jax") else "tensorflow")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # a choice made is kept
    assert core.keras_backend_name() == "tensorflow"
