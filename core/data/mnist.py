"""MNIST from the four IDX ``.gz`` files under ``<data root>/mnist/``.

IDX is big-endian: a magic number (0x0801 labels, 0x0803 images), then one count
per dimension, then raw uint8 values. Headers are checked so a corrupt or
truncated file fails with a message naming it, never with a silent wrong array.
When the folder is missing, ``keras.datasets.mnist.load_data()`` downloads it.

Images come out as float32 in [0, 1] with shape (N, 28, 28, 1); labels as uint8.
The validation split is drawn from the 60,000 training images with a fixed seed,
the same for every run, so models trained with different seeds share one
validation set (ensemble members are chosen on it). The test split is only ever
used for final figures.
"""
from __future__ import annotations

from core.errors import StudioError

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import config
from core.io import sha256_file

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # the official split's sizes
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
SPLIT_SEED = 20240601  # fixed forever: changing it would leak test-free choices across runs
INPUT_SHAPE = (28, 28, 1)
CLASSES = [str(d) for d in range(10)]


class MnistDataError(StudioError):
    """A missing, corrupt or truncated MNIST file."""


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into a uint8 array, checking its header."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise MnistDataError(f"{path.name}: file not found in {path.parent}") from None
    except (OSError, EOFError) as exc:  # bad gzip stream, cut-off gzip
        raise MnistDataError(f"{path.name}: cannot be read ({exc})") from None
    if len(raw) < 4:
        raise MnistDataError(f"{path.name}: too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if expected_magic is not None and magic != expected_magic:
        raise MnistDataError(
            f"{path.name}: wrong magic number {magic:#010x} (expected {expected_magic:#010x})")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte data; MNIST uses nothing else
        raise MnistDataError(f"{path.name}: not an unsigned-byte IDX file (magic {magic:#010x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise MnistDataError(f"{path.name}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        kind = "truncated" if len(raw) - header < size else "has trailing bytes"
        raise MnistDataError(
            f"{path.name}: {kind}: header says {shape} = {size} values, file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (tests and tools make small fixtures)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


@dataclass
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: dict = field(default_factory=dict)  # where the data came from, with file hashes


def _check_pair(images: np.ndarray, labels: np.ndarray, split: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MnistDataError(f"{split} images have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise MnistDataError(f"{split}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise MnistDataError(f"{split} labels go up to {labels.max()}, expected digits 0-9")


def load_raw(folder: str | Path | None = None) -> tuple[tuple, tuple, dict]:
    """((x_train, y_train), (x_test, y_test), source) as uint8, from IDX files or Keras."""
    folder = Path(folder) if folder else config.dataset_dir("mnist")
    if folder.is_dir() and any((folder / name).exists() for name in FILES.values()):
        arrays = {}
        for key, name in FILES.items():
            magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
            arrays[key] = read_idx(folder / name, magic)
        source = {"source": "idx", "folder": str(folder),
                  "files": {name: sha256_file(folder / name) for name in FILES.values()}}
    else:
        import keras

        try:
            (x_tr, y_tr), (x_te, y_te) = keras.datasets.mnist.load_data()
        except Exception as exc:  # noqa: BLE001 - offline, a proxy, a full disk: one sentence for all
            raise MnistDataError(f"{missing_files(folder)}; downloading them failed "
                                 f"({type(exc).__name__}: {str(exc)[:120]})") from None
        arrays = dict(train_images=x_tr, train_labels=y_tr, test_images=x_te, test_labels=y_te)
        source = {"source": "keras.datasets.mnist", "files": {}}
    _check_pair(arrays["train_images"], arrays["train_labels"], "train")
    _check_pair(arrays["test_images"], arrays["test_labels"], "test")
    return ((arrays["train_images"], arrays["train_labels"]),
            (arrays["test_images"], arrays["test_labels"]), source)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the models' input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def split_sizes(available: int, val_split: float, limit: int | None = None) -> tuple[int, int]:
    """(training, validation) images that ``load`` gives from ``available`` training images."""
    total = min(limit, available) if limit else available
    n_val = max(1, int(round(total * val_split))) if val_split else 0
    return total - n_val, n_val


def load(val_split: float = 0.1, limit: int | None = None, folder: str | Path | None = None) -> Mnist:
    """Train/validation/test arrays ready for the models.

    ``limit`` keeps the first N training images of a fixed shuffle (and at most N
    test images) for quick runs; the split itself never depends on the run's seed.
    ``val_split=0`` holds nothing out: a refit, on every training image, of a recipe
    already chosen on a split.
    """
    if not 0 <= val_split < 1:
        raise MnistDataError(f"validation split must be at least 0 and below 1, got {val_split}")
    (x_tr, y_tr), (x_te, y_te), source = load_raw(folder)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x_tr))
    if limit:
        order, x_te, y_te = order[:limit], x_te[:limit], y_te[:limit]
    n_val = len(order) - split_sizes(len(x_tr), val_split, limit)[0]
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) == 0:
        raise MnistDataError("no training images left after the validation split")
    return Mnist(to_float(x_tr[train_idx]), y_tr[train_idx], to_float(x_tr[val_idx]), y_tr[val_idx],
                 to_float(x_te), y_te, source)


def keras_cache() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps its download."""
    import os

    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def needs_download(folder: str | Path | None = None) -> str | None:
    """Before a run: why MNIST will have to be downloaded (None when it is on this machine)."""
    problem = missing_files(folder)
    return None if problem is None or keras_cache().is_file() else problem


def missing_files(folder: str | Path | None = None) -> str | None:
    """One sentence naming the folder and the IDX files that are not there; None when all four are."""
    folder = Path(folder) if folder else config.dataset_dir("mnist")
    missing = [name for name in FILES.values() if not (folder / name).is_file()]
    if not missing:
        return None
    return (f"MNIST is not on this machine: put the four IDX files ({', '.join(FILES.values())}) "
            f"in {folder} ({len(missing)} missing)")
