"""What this machine offers: libraries, devices, data sets and models.

TensorFlow is imported only inside ``machine_info`` because its import takes
seconds; everything else here is cheap file-system checks.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import core
from core import config
from core.data.mnist import FILES
from core.data.photo import IMAGE_SUFFIXES
from core.errors import StudioError
from core.models.cards import ModelEntry, find_models

MNIST_FILES = tuple(FILES.values())
MIB = 2**20  # nvidia-smi reports MiB
MIXED_MIN_CC = 7.0  # float16 tensor cores arrive with compute capability 7.0 (Volta)


@dataclass
class GPU:
    name: str
    memory_mb: int | None = None
    compute_capability: str | None = None

    @property
    def memory_bytes(self) -> int | None:
        """Total memory in bytes (the one conversion from nvidia-smi's MiB)."""
        return self.memory_mb * MIB if self.memory_mb else None


@dataclass
class MachineInfo:
    python: str
    tensorflow: str | None  # None where TensorFlow is not installed (Keras on JAX)
    keras: str
    cpu_count: int
    gpus: list[GPU] = field(default_factory=list)
    mixed_precision: bool = False
    backend: str = "tensorflow"  # the Keras backend
    backend_version: str | None = None

    def describe_libraries(self) -> str:
        """E.g. 'Keras 3.15.1 on JAX 0.10.2 · Python 3.11.9' (TensorFlow named when it is the backend)."""
        name = backend_label(self.backend)
        version = self.backend_version or (self.tensorflow if self.backend == "tensorflow" else None)
        return f"Keras {self.keras} on {name} {version or ''}".rstrip() + f" · Python {self.python}"

    @property
    def device(self) -> str:
        """'GPU' or 'CPU': where training and prediction run by default."""
        return "GPU" if self.gpus else "CPU"

    def describe_device(self) -> str:
        if not self.gpus:
            return f"CPU ({self.cpu_count} cores)"
        names = ", ".join(g.name + (f" ({g.memory_mb / 1024:.0f} GiB)" if g.memory_mb else "")
                          for g in self.gpus)
        return f"{len(self.gpus)} GPU: {names}" if len(self.gpus) == 1 else f"{len(self.gpus)} GPUs: {names}"

    def as_dict(self) -> dict:
        return asdict(self) | {"device": self.device}

    def smallest_gpu_bytes(self) -> int | None:
        """Memory of the smallest GPU (a data-parallel run is bound by it), in bytes; None if unknown."""
        sizes = [g.memory_bytes for g in self.gpus if g.memory_bytes]
        return min(sizes) if sizes else None


def _nvidia_gpus() -> list[GPU]:
    """Each NVIDIA GPU's name, memory and compute capability from nvidia-smi ([] when there is none)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,compute_cap", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]
        return [GPU(name=row[0], memory_mb=int(float(row[1])), compute_capability=row[2] or None)
                for row in rows if len(row) == 3]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def backend_label(backend: str) -> str:
    """A Keras backend as people write it: 'jax' -> 'JAX'."""
    return {"jax": "JAX", "tensorflow": "TensorFlow", "torch": "PyTorch"}.get(backend, backend)


class MachineError(StudioError):
    """This machine cannot do what was asked (a backend that is not installed)."""


KERAS_BACKENDS = ("tensorflow", "jax")
# Packages that give each backend CUDA (tensorflow[and-cuda], jax[cuda12] / jax[cuda13]).
_CUDA_PACKAGES = {"tensorflow": ("nvidia-cudnn-cu12",), "jax": ("jax-cuda12-plugin", "jax-cuda13-plugin")}


def installed_backends() -> list[str]:
    """The Keras backends installed here, from package metadata (nothing imported)."""
    return [name for name in KERAS_BACKENDS if _version(name)]


def has_cuda(backend: str) -> bool:
    """Whether ``backend`` was installed with its CUDA packages (metadata only; TensorFlow built
    against a system-wide CUDA is not seen here)."""
    return any(_version(p) for p in _CUDA_PACKAGES.get(backend, ()))


def keras_backend() -> str:
    """The backend Keras runs on in this process (imports Keras)."""
    return core.import_keras().backend.backend()


def backend_for_run(choice: str = "auto", gpus: list[GPU] | None = None) -> str:
    """The Keras backend a training run uses: the one asked for, else (``auto``) the one Keras is
    configured with (``KERAS_BACKEND`` or keras.json), else the installed one that can use this
    machine's NVIDIA GPU (JAX where only JAX has CUDA, as on the GPU machines lent here), else
    TensorFlow. ``gpus``: nvidia-smi's list when the caller has it (else it is asked).
    Raises MachineError for a backend that is not installed."""
    installed = installed_backends()
    if choice != "auto":
        if choice not in installed:
            raise MachineError(f"the {choice} backend is not installed here: "
                               + ("pip install -r requirements-jax.txt" if choice == "jax"
                                  else "pip install -r requirements.txt"))
        return choice
    configured = core.configured_keras_backend()
    if configured:
        return configured
    with_cuda = [name for name in installed if has_cuda(name)]
    if with_cuda and (gpus if gpus is not None else _nvidia_gpus()):
        return with_cuda[0]
    return installed[0] if installed else core.keras_backend_name()


def summary() -> MachineInfo:
    """What the sidebar and Home show, without importing TensorFlow, JAX or Keras (seconds saved).

    Versions come from the installed packages' metadata and GPUs from nvidia-smi, so a
    page that trains nothing opens fast; ``machine_info`` asks the backend itself.
    """
    backend = core.keras_backend_name()
    gpus = _nvidia_gpus()
    return MachineInfo(
        python=platform.python_version(),
        tensorflow=_version("tensorflow"),
        keras=_version("keras") or "?",
        cpu_count=os.cpu_count() or 1,
        gpus=gpus,
        mixed_precision=mixed_capable(gpus),
        backend=backend,
        backend_version=_version("tensorflow" if backend == "tensorflow" else backend),
    )


def mixed_capable(gpus: list[GPU]) -> bool:
    """Whether these GPUs (as nvidia-smi lists them) run float16 fast: compute capability 7.0 or more."""
    return any(g.compute_capability and float(g.compute_capability) >= MIXED_MIN_CC for g in gpus)


def machine_info() -> MachineInfo:
    """Library versions and devices, as the Keras backend sees them (TensorFlow or JAX)."""
    backend = core.keras_backend_name()
    keras = core.import_keras()
    memory = [g.memory_mb for g in _nvidia_gpus()]
    gpus, tf_version, backend_version = [], None, None
    if backend == "jax":
        import jax

        backend_version = jax.__version__
        for index, device in enumerate(d for d in jax.devices() if d.platform == "gpu"):
            cc = getattr(device, "compute_capability", None)
            gpus.append(GPU(name=device.device_kind, memory_mb=memory[index] if index < len(memory) else None,
                            compute_capability=str(cc) if cc else None))
    else:
        tf = core.import_tensorflow()
        tf_version = backend_version = tf.__version__
        for index, device in enumerate(tf.config.list_physical_devices("GPU")):
            details = tf.config.experimental.get_device_details(device)
            cc = details.get("compute_capability")
            gpus.append(GPU(
                name=details.get("device_name", device.name),
                memory_mb=memory[index] if index < len(memory) else None,
                compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
            ))
    if tf_version is None and "tensorflow" in sys.modules:
        tf_version = sys.modules["tensorflow"].__version__
    mixed = any(g.compute_capability and float(g.compute_capability) >= MIXED_MIN_CC for g in gpus)
    return MachineInfo(
        python=platform.python_version(),
        tensorflow=tf_version,
        keras=keras.__version__,
        cpu_count=os.cpu_count() or 1,
        gpus=gpus,
        mixed_precision=mixed,
        backend=backend,
        backend_version=backend_version,
    )


@dataclass
class DatasetStatus:
    name: str
    path: Path
    present: bool
    detail: str


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def datasets(root: Path | None = None) -> list[DatasetStatus]:
    """Which data sets are present under the data root, with a one-line summary."""
    root = root or config.data_root()
    found = []

    mnist = root / config.DATASETS["mnist"]
    have = [f for f in MNIST_FILES if (mnist / f).is_file()]
    found.append(DatasetStatus(
        "mnist", mnist, len(have) == len(MNIST_FILES),
        f"{len(have)}/{len(MNIST_FILES)} IDX files",
    ))

    flowers = root / config.DATASETS["flowers"]
    classes = sorted(p for p in flowers.iterdir() if p.is_dir()) if flowers.is_dir() else []
    counts = {c.name: _count_images(c) for c in classes}
    found.append(DatasetStatus(
        "flowers", flowers, len(counts) >= 2,
        f"{len(counts)} classes, {sum(counts.values())} images" if counts else "no class folders",
    ))

    imagenet = root / config.DATASETS["imagenet"]
    weights = sorted(p.name for p in imagenet.glob("*.h5")) if imagenet.is_dir() else []
    found.append(DatasetStatus(
        "imagenet", imagenet, bool(weights),
        f"{len(weights)} weight file(s)" if weights else "no weight files",
    ))
    return found


def models(task: str | None = None) -> list[ModelEntry]:
    """Shipped and user-trained models, from their cards (broken ones flagged)."""
    return find_models(config.models_dir(), config.runs_root(), task)


def hardware() -> dict:
    """Where this process computes, for model cards: the backend's GPUs and the CPU."""
    import sys

    keras = core.import_keras()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus: list[str] = []
    backend = keras.backend.backend()
    if backend == "tensorflow":
        tf = sys.modules["tensorflow"]
        for dev in tf.config.list_physical_devices("GPU"):
            gpus.append(tf.config.experimental.get_device_details(dev).get("device_name", dev.name))
    elif backend == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return {"device": "GPU" if gpus else "CPU", "gpus": gpus, "cpu": cpu, "cpu_count": os.cpu_count(),
            "platform": platform.platform()}


def versions() -> dict:
    """Library versions for model cards, on whichever Keras backend is in use."""
    import sys

    import numpy as np

    keras = core.import_keras()
    out = {"python": platform.python_version(), "keras": keras.__version__,
           "keras_backend": keras.backend.backend(), "numpy": np.__version__}
    for lib in ("tensorflow", "jax", "jaxlib"):
        if lib in sys.modules:
            out[lib] = getattr(sys.modules[lib], "__version__", None)
    return out
