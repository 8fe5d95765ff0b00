"""Image folders (one subfolder per class) for transfer learning.

``scan`` finds usable images by content (not by extension), ``split`` makes a
seeded stratified train / validation / test split that is saved with the run
(``split.json``), and ``make_dataset`` turns a list of files into batches any Keras
backend trains on: decode, RGB, resize and keep in memory once; shuffle each epoch (training).
"""
from __future__ import annotations

from core.errors import StudioError

import contextlib
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import config
from core.io import atomic_write_json
from core.data.photo import PhotoError, check_photo, load_photo, model_input

# One image each for training, validation and test is the fewest a class can be split into;
# below RECOMMENDED_PER_CLASS a run still trains (Teachable Machine uses ~20) but the page warns.
MIN_PER_CLASS = 3
RECOMMENDED_PER_CLASS = 100
SPLIT_FILE = "split.json"


class FolderError(StudioError):
    """An image folder that cannot be trained on; the message says what to fix."""


def resolve_inside(folder: str | Path, root: str | Path | None = None) -> Path:
    """A folder typed by a user, made absolute and checked to lie inside the data root.

    Relative paths are taken from the root; ``..`` or symlinks that lead outside are refused.
    With no ``root``, a folder inside the uploads folder (``config.uploads_root()``) is
    accepted too, so a run can train on an uploaded data set.
    """
    roots = [Path(root)] if root is not None else [config.data_root(), config.uploads_root()]
    roots = [r.resolve() for r in roots]
    text = str(folder).strip()
    if not text:
        raise FolderError("no folder given")
    if "\0" in text or any(len(part.encode()) > 255 for part in Path(text).parts) or len(text) > 4096:
        raise FolderError("that folder name is not usable (a NUL byte or a name over 255 characters)")
    try:
        path = Path(text).expanduser()
        path = (path if path.is_absolute() else roots[0] / path).resolve()
        inside = next((r for r in roots if path == r or r in path.parents), None)
        if inside is None:
            raise FolderError(f"{text} is outside the data folder {roots[0]}; put your images under it")
        if not path.is_dir():
            raise FolderError(f"{path} is not a folder")
    except (OSError, RuntimeError, ValueError) as exc:  # a loop of links, an unreadable parent
        raise FolderError(f"cannot open the folder {text} ({getattr(exc, 'strerror', None) or exc})") from None
    return path


def stamp(folder: str | Path) -> tuple[int, int, int]:
    """(files, bytes, newest change in ns) of everything under ``folder``: changes when any image does.

    A cache keyed on this sees images added to, removed from or replaced in any class
    subfolder (a folder's own mtime changes only for its direct entries).
    """
    count = total = newest = 0
    for dirpath, _, filenames in os.walk(folder):
        with contextlib.suppress(OSError):
            newest = max(newest, os.stat(dirpath).st_mtime_ns)
        for name in filenames:
            try:
                info = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            count, total, newest = count + 1, total + info.st_size, max(newest, info.st_mtime_ns)
    return count, total, newest


@dataclass
class ScanResult:
    root: Path
    classes: list[str]
    files: dict[str, list[str]]  # class -> paths relative to root, sorted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    @property
    def counts(self) -> dict[str, int]:
        return {c: len(self.files[c]) for c in self.classes}

    def report(self) -> str:
        lines = [f"{c}: {n} images" for c, n in self.counts.items()]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def scan(folder: str | Path, min_per_class: int = MIN_PER_CLASS) -> ScanResult:
    """Usable images of each class subfolder (any nesting); bad files are skipped and listed."""
    root = Path(folder)
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: dict[str, list[str]] = {}
    skipped: list[tuple[str, str]] = []
    for class_dir in class_dirs:
        found = []
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            reason = check_photo(path)  # the loader training uses: same formats, same limits
            if reason is None:
                found.append(path.relative_to(root).as_posix())
            else:
                skipped.append((path.relative_to(root).as_posix(), reason))
        files[class_dir.name] = found
    result = ScanResult(root, [d.name for d in class_dirs], files, skipped)
    check_counts(root, result.counts, min_per_class)
    return result


def check_counts(root: Path, counts: dict[str, int], min_per_class: int = MIN_PER_CLASS) -> None:
    """FolderError unless there are 2 classes or more, each with ``min_per_class`` images."""
    if len(counts) < 2:
        found = ", ".join(f"{c} ({n})" for c, n in counts.items()) or "none"
        raise FolderError(f"{root} needs at least 2 class subfolders of images; found {found}")
    small = {c: n for c, n in counts.items() if n < min_per_class}
    if small:
        listing = ", ".join(f"{c} has {n}" for c, n in small.items())
        raise FolderError(f"each class needs at least {min_per_class} usable images, one each for "
                          f"training, validation and test ({RECOMMENDED_PER_CLASS} or more are recommended): "
                          f"{listing}")


def advice(counts: dict[str, int], limit_per_class: int | None = None) -> str | None:
    """A warning (not a refusal) when classes have fewer images than recommended."""
    used = {c: min(n, limit_per_class) if limit_per_class else n for c, n in counts.items()}
    few = {c: n for c, n in used.items() if n < RECOMMENDED_PER_CLASS}
    if not few:
        return None
    listing = ", ".join(f"{c} ({n})" for c, n in few.items())
    why = f" with the limit of {limit_per_class} per class" if limit_per_class else ""
    return (f"Fewer than {RECOMMENDED_PER_CLASS} images in {listing}{why}: it will train, but accuracy is "
            f"usually better with {RECOMMENDED_PER_CLASS} or more per class")


def _cut(n: int, val_frac: float, test_frac: float) -> tuple[int, int]:
    """Test and validation images taken from a class of ``n`` (at least one each)."""
    return max(1, round(n * test_frac)), max(1, round(n * val_frac))


def split_sizes(counts: dict[str, int], val_frac: float, test_frac: float,
                limit_per_class: int | None = None) -> dict[str, int]:
    """How many images ``split`` puts in train, val and test, from the class counts alone."""
    sizes = {"train": 0, "val": 0, "test": 0}
    for n in counts.values():
        n = min(n, limit_per_class) if limit_per_class else n
        n_test, n_val = _cut(n, val_frac, test_frac)
        sizes["test"] += n_test
        sizes["val"] += n_val
        sizes["train"] += max(0, n - n_test - n_val)
    return sizes


def split(scan_result: ScanResult, val_frac: float = 0.15, test_frac: float = 0.15,
          seed: int = 42, limit_per_class: int | None = None) -> dict:
    """A seeded stratified split: per class, shuffle then cut test, validation, train.

    The same files and seed always give the same split. Paths are relative to the folder.
    """
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise FolderError(f"validation ({val_frac}) and test ({test_frac}) fractions must be "
                          "between 0 and 1 and leave some images for training")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[list]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(scan_result.classes):
        paths = list(scan_result.files[name])
        rng.shuffle(paths)
        if limit_per_class:
            paths = paths[:limit_per_class]
        n_test, n_val = _cut(len(paths), val_frac, test_frac)
        if len(paths) - n_test - n_val < 1:
            limit = f" (limited to {limit_per_class} per class)" if limit_per_class else ""
            raise FolderError(f"class {name!r} has {len(paths)} image(s){limit}: too few to give at least "
                              "one each to training, validation and test")
        parts["test"] += [[p, label] for p in paths[:n_test]]
        parts["val"] += [[p, label] for p in paths[n_test:n_test + n_val]]
        parts["train"] += [[p, label] for p in paths[n_test + n_val:]]
    return {"folder": str(scan_result.root), "classes": scan_result.classes, "seed": seed,
            "val_frac": val_frac, "test_frac": test_frac, "limit_per_class": limit_per_class,
            **parts, "skipped": [list(s) for s in scan_result.skipped]}


def save_split(split_data: dict, path: str | Path) -> None:
    atomic_write_json(path, split_data)


def load_split(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --- batches for Keras (any backend) -------------------------------------------------


def read_image(path: str, image_size: int) -> np.ndarray:
    """One file as the model sees it; an unreadable file (changed since the scan) is black."""
    try:
        return model_input(load_photo(path), image_size)
    except PhotoError:
        return np.zeros((image_size, image_size, 3), np.uint8)


def make_dataset(root: str | Path, items: list, image_size: int, batch_size: int, *,
                 training: bool = False, seed: int = 0, cache: bool = True):
    """Batches of (float32 images 0-255, int32 labels) from ``[[relative path, label], ...]``.

    A ``keras.utils.PyDataset``, so TensorFlow, JAX and PyTorch backends all train on it
    (TensorFlow need not be installed). Training batches are reshuffled every epoch;
    augmentation is the model's own first layer (core.models.transfer), not done here.
    """
    return _photo_batches()(root, items, image_size, batch_size, shuffle=training, seed=seed, cache=cache)


@functools.cache
def _photo_batches():
    """The PyDataset class, defined on first use: Keras takes seconds to import, scans need none of it."""
    import keras

    class PhotoBatches(keras.utils.PyDataset):
        """Photos decoded once (threads; Pillow releases the GIL) into one uint8 array."""

        def __init__(self, root, items, image_size, batch_size, *, shuffle=False, seed=0, cache=True):
            super().__init__()
            root = Path(root)
            self.paths = [str(root / p) for p, _ in items]
            self.labels = np.array([label for _, label in items], dtype=np.int32)
            self.image_size, self.batch_size, self.shuffle = image_size, batch_size, shuffle
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(self.paths))
            self.images = self._decode(self.paths) if cache else None
            self.on_epoch_end()

        def _decode(self, paths):
            size = self.image_size
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                decoded = list(pool.map(lambda p: read_image(p, size), paths))
            return np.stack(decoded) if decoded else np.zeros((0, size, size, 3), np.uint8)

        def __len__(self):
            return -(-len(self.paths) // self.batch_size)

        def __getitem__(self, index):
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            if self.images is not None:
                images = self.images[rows]
            else:
                images = self._decode([self.paths[i] for i in rows])
            return images.astype(np.float32), self.labels[rows]

        def on_epoch_end(self):
            if self.shuffle:
                self.rng.shuffle(self.order)

    return PhotoBatches
