"""Where a training run computes: CPU, one GPU, all GPUs, or several machines.

``setup(device, mixed_precision, xla)`` is called once by ``core.train`` before a
task builds its model; it returns the ``tf.distribute`` strategy the task runs
under and a ``DevicePlan`` saying what was chosen and why (the notes are shown
to the user, e.g. "no GPU found: training on the CPU").

| situation                         | strategy                               |
|-----------------------------------|----------------------------------------|
| ``TF_CONFIG`` names 2+ workers    | ``MultiWorkerMirroredStrategy``        |
| 2+ GPUs                           | ``MirroredStrategy`` over all of them  |
| 1 GPU                             | default strategy on ``/GPU:0``         |
| no GPU, or ``device="cpu"``       | default strategy on the CPU            |
| ``CNN_STUDIO_CPU_REPLICAS=N``, CPU | ``MirroredStrategy`` over N slices of the CPU |

The last row rehearses multi-device training on a machine without GPUs (the
tests use it); it brings no speed.

On the JAX backend (``KERAS_BACKEND=jax``, e.g. a GPU machine with JAX and no
TensorFlow) ``setup_jax`` plays the same part with Keras's own distribution API:

| situation (JAX)                    | distribution                          |
|------------------------------------|---------------------------------------|
| 2+ GPUs                            | ``keras.distribution.DataParallel`` over all of them |
| 1 GPU, or the CPU                  | none: JAX's default device            |
| ``device="cpu"`` with a GPU        | the CPU (``jax.default_device``)      |
| 2+ CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) | ``DataParallel`` over them |

Mixed precision (``mixed_float16``) needs float16 tensor cores: compute
capability 7.0 or more. XLA is Keras's ``jit_compile``; ``auto`` leaves Keras's
own choice (on with a GPU, off on CPU-only machines).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field

import core
from core.errors import StudioError
from core.learn.calculator import fits  # noqa: F401 (one memory rule, re-exported)
from core.machine import MIXED_MIN_CC
from core.training.settings import DEVICES, SWITCHES

CPU_REPLICAS_ENV = "CNN_STUDIO_CPU_REPLICAS"


class DeviceError(StudioError):
    """A device setting this machine cannot honour (e.g. ``gpu`` without a GPU)."""


@dataclass
class DevicePlan:
    device: str  # "cpu" or "gpu"
    strategy: str  # class name of the tf.distribute strategy
    replicas: int = 1
    gpus: list[str] = field(default_factory=list)
    workers: int = 1
    mixed_precision: bool = False
    xla: str = "auto"  # "auto", "on" or "off"
    notes: list[str] = field(default_factory=list)
    backend: str = "tensorflow"  # the Keras backend

    def describe(self) -> str:
        where = f"{len(self.gpus)} GPU ({', '.join(self.gpus)})" if self.gpus else "CPU"
        if self.workers > 1:
            where = f"{self.workers} workers x {where}"
        extras = [] if self.backend == "tensorflow" else [f"Keras on {self.backend.upper()}"]
        if self.replicas > 1:
            extras.append(f"{self.strategy} x{self.replicas}")
        if self.mixed_precision:
            extras.append("mixed_float16")
        if self.xla != "auto":
            extras.append(f"XLA {self.xla}")
        return where + (f" [{', '.join(extras)}]" if extras else "")

    def as_dict(self) -> dict:
        return asdict(self) | {"description": self.describe()}

    def jit_compile(self):
        """The value for ``model.compile(jit_compile=...)``."""
        return {"auto": "auto", "on": True, "off": False}[self.xla]


_current: DevicePlan | None = None


def current() -> DevicePlan | None:
    """The plan chosen by the last ``setup`` in this process (None before)."""
    return _current


def tf_config_workers(env: dict | None = None) -> int:
    """How many workers ``TF_CONFIG`` describes (0 when unset); raise DeviceError when malformed."""
    raw = (env if env is not None else os.environ).get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        config["task"]["index"]  # noqa: B018 - must be present
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DeviceError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": 0}}}} (problem: {exc})') from None
    return len(workers)


def _check(name: str, value: str, allowed: tuple) -> str:
    value = str(value).lower()
    if value not in allowed:
        raise DeviceError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _gpu_supports_mixed(tf, gpu) -> bool:
    cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
    return bool(cc) and cc[0] + cc[1] / 10 >= MIXED_MIN_CC


def _keras_multi_worker_fixes(tf) -> None:
    """Make Keras 3's ``fit`` work under MultiWorkerMirroredStrategy.

    Keras 3.x (keras-team/keras#20585, tensorflow/tensorflow#72388) fails in two
    places with this strategy: building the model from a first batch reduces the
    per-replica batch across workers (it only needs its shape), and averaging the
    scalar logs across workers passes ``axis=0`` to a rank-0 value. Both are
    replaced here for this process only; everything else is Keras's own code.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_cnn_studio_patched", False):
        return

    def first_local(strategy, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(lambda v: first_local(self.distribute_strategy, v), next(it))
                break
        return symbolic_build(self, data_batch=data_batch)

    reduce_per_replica = trainer.reduce_per_replica

    def reduce_logs(values, strategy, reduction):
        if reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_logs
    trainer._cnn_studio_patched = True


def _mixed_policy(keras, choice: str, supported: bool, have_gpu: bool, notes: list[str]) -> bool:
    """Set Keras's global dtype policy for ``--mixed-precision choice``; True when mixed_float16."""
    mixed = choice != "off" and supported
    if choice == "on" and not supported:
        why = "no GPU" if not have_gpu else f"a GPU below compute capability {MIXED_MIN_CC}"
        notes.append(f"mixed precision asked for but {why}: training in float32")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return mixed


def setup(device: str = "auto", mixed_precision: str = "auto", xla: str = "auto"):
    """Choose devices and precision for this process; return ``(strategy, plan)``.

    Must run before any model or tensor is created (TensorFlow fixes its devices
    on first use, and MultiWorkerMirroredStrategy must be built first of all).
    """
    global _current
    device = _check("device", device, DEVICES)
    mixed_precision = _check("mixed precision", mixed_precision, SWITCHES)
    xla = _check("XLA", xla, SWITCHES)
    tf = core.import_tensorflow()
    import keras

    notes = []
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceError("device 'gpu' was asked for but TensorFlow sees no GPU on this machine "
                          "(choose 'auto' or 'cpu')")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        notes.append(f"{len(gpus)} GPU(s) present but device 'cpu' was chosen")
        gpus = []
    if not gpus and device == "auto":
        notes.append("no GPU found: training on the CPU (slower; fine for MNIST and small sets)")
    for gpu in gpus:  # take memory as needed so two runs or the app can share a card
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised by an earlier call in this process

    cpu_replicas = int(os.environ.get(CPU_REPLICAS_ENV, "0") or 0)
    if cpu_replicas > 1 and not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        notes.append(f"CPU split into {cpu_replicas} logical devices ({CPU_REPLICAS_ENV})")

    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    workers = tf_config_workers()
    if workers > 1:
        strategy, strategy_name = tf.distribute.MultiWorkerMirroredStrategy(), "MultiWorkerMirroredStrategy"
        _keras_multi_worker_fixes(tf)
        notes.append(f"multi-worker training over {workers} workers from TF_CONFIG")
    elif len(gpus) > 1:
        strategy, strategy_name = tf.distribute.MirroredStrategy(), "MirroredStrategy"
    elif cpu_replicas > 1 and not gpus:
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy, strategy_name = tf.distribute.MirroredStrategy(cpus), "MirroredStrategy"
    else:
        strategy, strategy_name = tf.distribute.get_strategy(), "default"

    supported = bool(gpus) and all(_gpu_supports_mixed(tf, g) for g in gpus)
    mixed = _mixed_policy(keras, mixed_precision, supported, bool(gpus), notes)

    _current = DevicePlan(
        device="gpu" if gpus else "cpu", strategy=strategy_name,
        replicas=strategy.num_replicas_in_sync, gpus=names, workers=max(workers, 1),
        mixed_precision=mixed, xla=xla, notes=notes,
    )
    return strategy, _current


def setup_jax(device: str = "auto", mixed_precision: str = "auto", xla: str = "auto") -> DevicePlan:
    """``setup`` for Keras on JAX: the devices, ``DataParallel`` over 2+ of them, and the precision.

    JAX always compiles with XLA, so ``xla`` is recorded only.
    """
    global _current
    device = _check("device", device, DEVICES)
    mixed_precision = _check("mixed precision", mixed_precision, SWITCHES)
    xla = _check("XLA", xla, SWITCHES)
    import jax
    import keras

    notes = []
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if device == "gpu" and not gpus:
        raise DeviceError("device 'gpu' was asked for but JAX sees no GPU on this machine "
                          "(install the GPU build: make run GPU=1, or choose 'auto' or 'cpu')")
    if device == "cpu" and gpus:
        notes.append(f"{len(gpus)} GPU(s) present but device 'cpu' was chosen")
        gpus = []
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    if not gpus and device == "auto":
        notes.append("no GPU found: training on the CPU (slower; fine for MNIST and small sets)")
    chosen = gpus or jax.devices("cpu")
    if len(chosen) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
        if not gpus:
            notes.append(f"CPU split into {len(chosen)} XLA host devices (XLA_FLAGS)")

    capability = [float(getattr(g, "compute_capability", 0) or 0) for g in gpus]
    mixed = _mixed_policy(keras, mixed_precision, bool(gpus) and min(capability) >= MIXED_MIN_CC,
                          bool(gpus), notes)

    _current = DevicePlan(
        device="gpu" if gpus else "cpu", strategy="DataParallel" if len(chosen) > 1 else "default",
        replicas=len(chosen), gpus=[g.device_kind for g in gpus], mixed_precision=mixed, xla=xla,
        notes=notes, backend="jax",
    )
    return _current


# --- will a run fit? -------------------------------------------------------------------

OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


def _activation_elements(model) -> int:
    """Sum of every layer's output size for one image, nested models included."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _activation_elements(layer)
            continue
        if isinstance(layer, keras.layers.InputLayer):
            continue  # the input is counted once, by the caller
        outputs = layer.output if isinstance(layer.output, list | tuple) else [layer.output]
        for out in outputs:
            total += math.prod(d for d in out.shape[1:] if d is not None)
    return total


def training_memory(model, batch_size: int, mixed_precision: bool = False, optimizer: str = "adam") -> dict:
    """Bytes a training step needs, by the definitions of ``core.learn.calculator`` (MB = 10^6 bytes).

    Every activation is kept for back-propagation (x batch), plus parameters, one
    gradient per trainable parameter and the optimizer's copies. Plain layer stacks
    go through the calculator itself; other models (MobileNetV2's residual blocks)
    are summed layer by layer with the same rules. Frameworks add workspace on top,
    so treat the figure as a floor.
    """
    from core.learn import calculator as memory

    act_bytes = 2 if mixed_precision else 4
    copies = OPTIMIZER_COPIES.get(optimizer.lower(), 2)
    params = int(model.count_params())
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    try:
        shape, layers = memory.from_keras(model)
        report = memory.analyze(shape, layers, "mixed" if mixed_precision else "float32", batch_size,
                                {0: "sgd", 1: "momentum"}.get(copies, "adam"))
        activations = report.totals["training_activation_bytes"]
        method = "calculator"
    except ValueError:
        inputs = sum(math.prod(i.shape[1:]) for i in model.inputs)
        activations = (inputs + _activation_elements(model)) * act_bytes * batch_size
        method = "layer outputs"
    weights = (params + trainable * (1 + copies)) * 4  # float32 master weights, grads, optimizer
    return {"activation_bytes": activations, "weight_bytes": weights, "total_bytes": activations + weights,
            "params": params, "trainable": trainable, "method": method}


def resolve_mixed(choice: str, info) -> bool:
    """Whether a run with ``--mixed-precision choice`` trains in mixed_float16 on this machine.

    ``info`` is a core.machine.MachineInfo. Mixed precision needs a GPU: on the CPU it is off.
    """
    if not info.gpus:
        return False
    return choice == "on" or (choice == "auto" and bool(info.mixed_precision))


def available_ram_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """Memory the system can give a new process now (``MemAvailable``), or None when unknown."""
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def memory_refusal(total_bytes: float, gpu_bytes: float | None, free_ram_bytes: float | None) -> str | None:
    """Why a run cannot start (one sentence saying by how much), or None when it fits or nobody knows.

    With a GPU the estimate is checked against the GPU's memory, on the CPU against the
    RAM free right now. The estimate is a floor (core.learn.calculator's definitions).
    """
    where, room = ("the GPU's memory", gpu_bytes) if gpu_bytes else ("the free RAM", free_ram_bytes)
    if not room or total_bytes <= room:
        return None
    return (f"this run needs about {total_bytes / 1e9:.1f} GB, {(total_bytes - room) / 1e9:.1f} GB more "
            f"than {where} ({room / 1e9:.1f} GB): lower the batch size or the image size")
