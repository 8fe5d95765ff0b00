"""Named MNIST architectures and the recipe each one trains with.

Every model takes float32 images (N, 28, 28, 1) in [0, 1] and returns softmax
probabilities over the ten digits. Augmentation (one ``RandomAffine`` layer) lives
inside the model, so it runs on whatever device trains it (and is inactive at inference).
Models saved before it hold Keras's RandomRotation/Zoom/Translation and still load.
Only Keras is used, so every backend (TensorFlow, JAX) builds the same models.

- ``seed``: the starting notebook's network, exactly (Conv-Pool-Conv-Pool-Conv-Dense, RMSprop, 5 epochs).
- ``fast``: a small batch-normalised CNN with a long warm-up then cosine decay (one-cycle
  shape) for a short CPU budget.
- ``best``: a deeper batch-normalised CNN (strided convolutions instead of pooling,
  dropout), trained with rotations/shifts/zoom, label smoothing and cosine decay with warm-up.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import core

keras = core.import_keras()  # quietly, on the configured backend
layers = keras.layers

from core.data.mnist import INPUT_SHAPE
from core.models.augment import RandomAffine


@dataclass(frozen=True)
class Recipe:
    """How an architecture trains by default; the CLI can override the numbers."""

    title: str
    epochs: int
    batch_size: int
    lr: float  # peak learning rate
    optimizer: str  # "rmsprop" | "adam"
    schedule: str  # "constant" | "cosine" (with warm-up)
    label_smoothing: float = 0.0
    warmup: float = 0.0  # fraction of all steps spent warming up
    weight_decay: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# What each recipe's RandomAffine draws (core.models.augment): fast shifts by up to 8% (about
# two pixels), nearly free and the change that helps most in few epochs; best also rotates by
# up to 10 degrees and zooms by up to 10%.
AUGMENTATION = {"fast": {"shift": 0.08}, "best": {"rotation": 10.0, "zoom": 0.1, "shift": 0.1}}


def _conv_bn(x, filters, kernel, strides=1, padding="same"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # settles fast, even in short runs
    return layers.Activation("relu")(x)


def build_seed() -> keras.Model:
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name="mnist_seed")


def build_fast() -> keras.Model:
    inputs = keras.Input(INPUT_SHAPE)
    x = RandomAffine(**AUGMENTATION["fast"], name="augment")(inputs)
    x = _conv_bn(x, 24, 5, padding="valid")  # 24x24
    x = layers.MaxPooling2D(2)(x)  # 12x12
    x = _conv_bn(x, 48, 3)
    x = _conv_bn(x, 48, 3)
    x = layers.MaxPooling2D(2)(x)  # 6x6
    x = _conv_bn(x, 96, 3, padding="valid")  # 4x4
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name="mnist_fast")


def build_best() -> keras.Model:
    inputs = keras.Input(INPUT_SHAPE)
    x = RandomAffine(**AUGMENTATION["best"], name="augment")(inputs)
    for filters in (32, 64):
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 5, strides=2)  # learned downsampling instead of max-pooling
        x = layers.Dropout(0.4)(x)
    x = _conv_bn(x, 128, 4, padding="valid")  # 7x7 -> 4x4
    x = layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name="mnist_best")


ARCHS = {
    "seed": (build_seed, Recipe("Notebook baseline CNN", epochs=5, batch_size=64, lr=1e-3,
                                optimizer="rmsprop", schedule="constant")),
    "fast": (build_fast, Recipe("Fast CPU CNN", epochs=6, batch_size=128, lr=4e-3,
                                optimizer="adam", schedule="cosine", label_smoothing=0.05, warmup=0.25)),
    "best": (build_best, Recipe("Best single CNN", epochs=30, batch_size=128, lr=2e-3,
                                optimizer="adam", schedule="cosine", label_smoothing=0.1, warmup=0.05,
                                weight_decay=1e-4)),
}


def build(arch: str) -> keras.Model:
    if arch not in ARCHS:
        raise KeyError(f"unknown MNIST architecture {arch!r} (choose from {', '.join(ARCHS)})")
    return ARCHS[arch][0]()


def recipe(arch: str) -> Recipe:
    if arch not in ARCHS:
        raise KeyError(f"unknown MNIST architecture {arch!r} (choose from {', '.join(ARCHS)})")
    return ARCHS[arch][1]


def learning_rate(rec: Recipe, lr: float, total_steps: int):
    """A built-in Keras schedule (or a float): its state is the optimizer's step count,
    so a resumed run continues the curve, and the saved model needs no custom code."""
    if rec.schedule == "constant":
        return lr
    if rec.schedule == "cosine":
        # Linear warm-up to the peak, then cosine annealing to 1% of it (a one-cycle shape).
        warmup = int(max(1, total_steps) * rec.warmup)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * 0.05, decay_steps=max(1, total_steps - warmup), alpha=0.01,
            warmup_target=lr, warmup_steps=warmup)
    raise ValueError(f"unknown schedule {rec.schedule!r}")


def optimizer(rec: Recipe, lr: float, total_steps: int) -> keras.optimizers.Optimizer:
    schedule = learning_rate(rec, lr, total_steps)
    if rec.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=schedule)
    if rec.optimizer == "adam":
        if rec.weight_decay:
            return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=rec.weight_decay)
        return keras.optimizers.Adam(learning_rate=schedule)
    raise ValueError(f"unknown optimizer {rec.optimizer!r}")


def compile_model(model: keras.Model, rec: Recipe, lr: float, total_steps: int,
                  jit_compile="auto") -> keras.Model:
    """Compile for one-hot labels (label smoothing needs them)."""
    model.compile(
        jit_compile=jit_compile,
        optimizer=optimizer(rec, lr, total_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=rec.label_smoothing),
        metrics=["accuracy"],
    )
    return model
