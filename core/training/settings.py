"""Typed run settings: one frozen dataclass per task, the single owner of every default and rule.

The command line (``python -m core.train``), the Train page's widgets, ``core.jobs`` (through
``to_options``) and the model card all read these classes; nothing else writes a default or
a validity rule down. ``problems()`` returns every reason a combination is invalid, in words
for the user; an empty list means the run may start.

This module imports neither TensorFlow nor Keras, so the page can use it cheaply.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from core.data.folders import MIN_PER_CLASS
from core.machine import KERAS_BACKENDS
from core.models import mnist as mnist_models
from core.models import transfer as transfer_models

DEVICES = ("auto", "cpu", "gpu")
SWITCHES = ("auto", "on", "off")
BACKENDS = ("auto", *KERAS_BACKENDS)
DEVICE_FIELDS = ("device", "backend", "mixed_precision", "xla")
SEED_MAX = 2**32 - 1  # numpy and Keras accept seeds in [0, 2**32)


def option(default: Any, help: str, *, kind: type = str, choices: tuple | None = None,
           hidden: bool = False, label: str | None = None):
    """A setting: its default, its help text, its type on the command line and its page label."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices,
                                            "hidden": hidden, "label": label})


@dataclass(frozen=True)
class Settings:
    """Settings every task shares: where to compute and in what precision (see core.training.devices)."""

    TASK: ClassVar[str] = ""
    HELP: ClassVar[str] = ""

    device: str = option("auto", "auto: all GPUs when present, else the CPU", choices=DEVICES)
    backend: str = option("auto", "the Keras backend for this run (auto: KERAS_BACKEND or keras.json when "
                          "set, else the installed one that can use this machine's GPU, else tensorflow)",
                          choices=BACKENDS)
    mixed_precision: str = option("auto", "mixed_float16 (auto: on GPUs with compute capability >= 7.0)",
                                  choices=SWITCHES)
    xla: str = option("auto", "XLA jit_compile (auto: Keras's choice, on with a GPU)", choices=SWITCHES)

    # --- the command line --------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for f in fields(cls):
            meta = f.metadata
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=f.default,
                                type=_parse(meta["kind"]), choices=meta["choices"],
                                help=argparse.SUPPRESS if meta["hidden"] else meta["help"])

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    @classmethod
    def from_options(cls, options: dict):
        """From a dict such as the page's or a saved config; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})

    def to_options(self) -> dict:
        """Every setting with a value, for ``core.jobs`` to turn into flags: a command that says it all.

        Left out: unset values (None), device options left at "auto" and hidden options at their default.
        """
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in DEVICE_FIELDS and value == "auto"):
                continue
            if f.metadata["hidden"] and value == f.default:
                continue
            out[f.name] = value
        return out

    def to_argv(self) -> list[str]:
        argv = []
        for key, value in self.to_options().items():
            if value is not None:
                argv += ["--" + key.replace("_", "-"), str(value)]
        return argv

    def as_dict(self) -> dict:
        return asdict(self)

    def with_changes(self, **changes):
        return replace(self, **changes)

    # --- rules -------------------------------------------------------------------------
    def problems(self, n_train: int | None = None) -> list[str]:
        """Every reason these settings cannot run, one sentence each ([] when they can)."""
        out = []
        for name, allowed in (("device", DEVICES), ("backend", BACKENDS), ("mixed_precision", SWITCHES),
                              ("xla", SWITCHES)):
            if getattr(self, name) not in allowed:
                out.append(f"{name.replace('_', ' ')} must be one of {', '.join(allowed)}, "
                           f"got {getattr(self, name)!r}")
        return out

    def resolved(self):
        """The settings with every "recipe default" (None) filled in."""
        return self


def _parse(kind: type):
    """argparse type: ints and floats as usual; 'none' for an optional value left unset."""
    def convert(text: str):
        if kind is not str and text.strip().lower() in ("none", ""):
            return None
        return kind(text)
    convert.__name__ = kind.__name__  # argparse names the type in its error message
    return convert


def _at_least(out: list, value, low, what: str) -> None:
    if value is None or value < low:
        out.append(f"{what} must be at least {low}, got {value}")


def _positive_rate(out: list, value, what: str) -> None:
    if value is None or not math.isfinite(value) or not value > 0:
        out.append(f"{what} must be positive and finite, got {value}")


def _seed(out: list, value) -> None:
    if value is None or not 0 <= value <= SEED_MAX:
        out.append(f"seed must be a whole number from 0 to {SEED_MAX:,}, got {value}")


@dataclass(frozen=True)
class MnistSettings(Settings):
    """Train a CNN from scratch on MNIST."""

    TASK: ClassVar[str] = "mnist"
    HELP: ClassVar[str] = "train a CNN from scratch on MNIST"

    arch: str = option("fast", f"architecture: {', '.join(mnist_models.ARCHS)}", label="Architecture")
    epochs: int | None = option(None, "epochs (default: the architecture's recipe)", kind=int, label="Epochs")
    batch_size: int | None = option(None, "batch size (default: the recipe's)", kind=int, label="Batch size")
    lr: float | None = option(None, "peak learning rate (default: the recipe's)", kind=float,
                              label="Learning rate")
    seed: int = option(0, "random seed for weights and shuffling", kind=int, label="Seed")
    val_split: float = option(0.1, "fraction of the 60,000 training images held out for validation; 0 "
                                   "refits a recipe already chosen on a split on every training image",
                              kind=float)
    limit: int | None = option(None, "use only the first N training (and test) images, for quick runs",
                               kind=int, label="Use only the first N training images")

    def recipe(self) -> mnist_models.Recipe:
        return mnist_models.recipe(self.arch)

    def resolved(self) -> MnistSettings:
        if self.arch not in mnist_models.ARCHS:
            return self
        rec = self.recipe()
        return replace(self, epochs=rec.epochs if self.epochs is None else self.epochs,
                       batch_size=rec.batch_size if self.batch_size is None else self.batch_size,
                       lr=rec.lr if self.lr is None else self.lr)

    def problems(self, n_train: int | None = None) -> list[str]:
        out = super().problems()
        if self.arch not in mnist_models.ARCHS:
            archs = ", ".join(mnist_models.ARCHS)
            return out + [f"unknown architecture {self.arch!r}: choose one of {archs}"]
        s = self.resolved()
        _at_least(out, s.epochs, 1, "epochs")
        _at_least(out, s.batch_size, 1, "batch size")
        _positive_rate(out, s.lr, "learning rate")
        _seed(out, s.seed)
        if s.val_split is None or not 0 <= s.val_split < 1:
            out.append(f"validation split must be at least 0 and below 1, got {s.val_split}")
        if s.limit is not None and s.limit < 2:
            out.append(f"limit must be at least 2 images, got {s.limit}")
        if n_train is not None and s.batch_size and s.batch_size > n_train:
            out.append(f"batch size {s.batch_size} is larger than the {n_train:,} training images")
        return out


@dataclass(frozen=True)
class TransferSettings(Settings):
    """Fine-tune an ImageNet backbone on an image folder (one subfolder per class)."""

    TASK: ClassVar[str] = "transfer"
    HELP: ClassVar[str] = "fine-tune an ImageNet backbone on an image folder"

    data: str = option("flowers", "image folder, inside the data root or the uploads folder")
    backbone: str = option("mobilenet_v2_0.5", f"one of {', '.join(transfer_models.BACKBONES)}",
                           label="Backbone (ImageNet weights)")
    image_size: int = option(224, "square input size in pixels", kind=int, label="Image size")
    epochs_head: int = option(5, "epochs with the backbone frozen", kind=int, label="Epochs, head only")
    epochs_fine: int = option(10, "fine-tuning epochs, 0 to skip", kind=int, label="Epochs, fine-tuning")
    fine_tune_layers: int = option(40, "top backbone layers to unfreeze", kind=int,
                                   label="Layers to fine-tune")
    batch_size: int = option(32, "batch size", kind=int, label="Batch size")
    lr: float = option(1e-3, "head learning rate", kind=float, label="Learning rate (head)")
    fine_lr: float = option(1e-4, "fine-tuning learning rate", kind=float, label="Learning rate (fine)")
    dropout: float = option(0.2, "dropout before the classifier", kind=float, label="Dropout")
    patience: int = option(3, "epochs without better validation loss before stopping", kind=int)
    val_frac: float = option(0.15, "fraction of each class for validation", kind=float)
    test_frac: float = option(0.15, "fraction of each class for the test", kind=float)
    seed: int = option(42, "random seed for the split, weights and shuffling", kind=int, label="Seed")
    limit_per_class: int | None = option(None, "use at most N images per class (quick runs)", kind=int,
                                         label="At most N images per class")
    min_per_class: int = option(MIN_PER_CLASS, "", kind=int, hidden=True)
    weights: str = option("auto", "", hidden=True)  # "none" for tests: random weights

    IMAGE_SIZES: ClassVar[tuple[int, ...]] = (96, 128, 160, 192, 224)

    def problems(self, n_train: int | None = None) -> list[str]:
        out = super().problems()
        if not self.data or not str(self.data).strip():
            out.append("choose the images to train on")
        elif str(self.data).startswith("-"):
            out.append(f"a data folder name cannot start with '-': {self.data!r}")
        if self.backbone not in transfer_models.BACKBONES:
            names = ", ".join(transfer_models.BACKBONES)
            out.append(f"unknown backbone {self.backbone!r}: choose one of {names}")
        if self.image_size is None or not 32 <= self.image_size <= 512:
            out.append(f"image size must be 32 to 512 pixels, got {self.image_size}")
        _at_least(out, self.epochs_head, 1, "head epochs")
        _at_least(out, self.epochs_fine, 0, "fine-tuning epochs")
        _at_least(out, self.fine_tune_layers, 0, "fine-tune layers")
        _at_least(out, self.batch_size, 1, "batch size")
        _positive_rate(out, self.lr, "head learning rate")
        _positive_rate(out, self.fine_lr, "fine-tuning learning rate")
        if self.dropout is None or not 0 <= self.dropout < 1:
            out.append(f"dropout must be at least 0 and below 1, got {self.dropout}")
        _at_least(out, self.patience, 1, "patience")
        for name in ("val_frac", "test_frac"):
            value = getattr(self, name)
            if value is None or not 0 < value < 0.5:
                out.append(f"{name.replace('_', ' ')} must be above 0 and below 0.5, got {value}")
        _seed(out, self.seed)
        if self.limit_per_class is not None and self.limit_per_class < 10:
            out.append(f"limit per class must be at least 10 images, got {self.limit_per_class}")
        if n_train is not None and self.batch_size and self.batch_size > n_train:
            out.append(f"batch size {self.batch_size} is larger than the {n_train:,} training images")
        return out


TASKS: dict[str, type[Settings]] = {cls.TASK: cls for cls in (MnistSettings, TransferSettings)}


def for_task(task: str) -> type[Settings]:
    from core.training import TrainingError

    if task not in TASKS:
        raise TrainingError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    return TASKS[task]


def label(cls: type[Settings], name: str) -> str:
    """The page's label for a setting (its name in words when none is given)."""
    meta = next(f.metadata for f in fields(cls) if f.name == name)
    return meta["label"] or name.replace("_", " ").capitalize()


def help_text(cls: type[Settings], name: str) -> str:
    return next(f.metadata["help"] for f in fields(cls) if f.name == name)


def default(cls: type[Settings], name: str):
    return next(f.default for f in fields(cls) if f.name == name)
