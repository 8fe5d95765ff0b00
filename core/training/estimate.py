"""Before launch: how long a run will take here, from a short probe measured on this machine.

The probe builds the run's model with its batch size, runs a few training steps and a few
evaluation steps (Keras' own fit and evaluate loops) on zeros of the right shape, and scales
the measured time per step to the run's steps (training, one validation pass per epoch, one
test pass). Its first steps (graph tracing, which a real run also pays once per phase) are
measured apart and added once.
Not included: starting the process, reading the data (JPEG decoding for photo folders) and
saving the model, so a real run takes a little longer; ``bench.estimate`` measures how much.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from core.training.settings import MnistSettings, Settings, TransferSettings

WARMUP_STEPS = 2
PROBE_STEPS = 5


@dataclass
class Estimate:
    seconds: float  # the whole run, as the probe predicts it
    probe_seconds: float  # what the probe itself took
    phases: list[dict] = field(default_factory=list)  # per phase: steps, epochs, seconds per step


def _per_step(model, x, y, steps: int, train: bool) -> float:
    """Seconds per step of Keras' own loop (``fit`` or ``evaluate``) over ``steps`` batches."""
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
    start = time.perf_counter()
    if train:
        model.fit(xs, ys, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    else:
        model.evaluate(xs, ys, batch_size=len(x), verbose=0)
    return (time.perf_counter() - start) / steps


def _probe_phase(model, x, y, name: str, epochs: int, n_train: int, n_eval_per_epoch: int,
                 n_test: int, batch: int) -> dict:
    first = time.perf_counter()  # tracing and the first steps, which a real run also pays once
    _per_step(model, x, y, WARMUP_STEPS, train=True)
    _per_step(model, x, y, WARMUP_STEPS, train=False)
    tracing = time.perf_counter() - first
    train_step = _per_step(model, x, y, PROBE_STEPS, train=True)
    eval_step = _per_step(model, x, y, PROBE_STEPS, train=False)
    steps = math.ceil(n_train / batch)
    seconds = (tracing + epochs * (steps * train_step + math.ceil(n_eval_per_epoch / batch) * eval_step)
               + math.ceil(n_test / batch) * eval_step)
    return {"phase": name, "epochs": epochs, "steps": steps, "train_step_s": train_step,
            "eval_step_s": eval_step, "tracing_s": tracing, "seconds": seconds}


def held_out(cfg: Settings, n_train: int) -> tuple[int, int]:
    """(validation, test) images that go with ``n_train`` training images under these settings."""
    if isinstance(cfg, MnistSettings):
        split = cfg.val_split or 0.0
        return round(n_train * split / (1 - split)), min(10_000, cfg.limit or 10_000)
    share = n_train / (1 - cfg.val_frac - cfg.test_frac)
    return round(share * cfg.val_frac), round(share * cfg.test_frac)


def estimate(cfg: Settings, n_train: int, classes: int) -> Estimate:
    """Predict the run's duration on this machine from a probe of a few steps."""
    import core

    core.import_tensorflow()
    import keras

    start = time.perf_counter()
    n_val, n_test = held_out(cfg, n_train)
    if isinstance(cfg, MnistSettings):
        from core.models import mnist as models

        s = cfg.resolved()
        batch = min(s.batch_size, n_train)
        model = models.compile_model(models.build(s.arch), s.recipe(), s.lr, 1000)
        x = np.zeros((batch, 28, 28, 1), np.float32)
        y = keras.utils.to_categorical(np.arange(batch) % 10, 10)
        phases = [_probe_phase(model, x, y, "train", s.epochs, n_train, n_val, n_test, batch)]
    elif isinstance(cfg, TransferSettings):
        from core.models import transfer

        batch = min(cfg.batch_size, n_train)
        model = transfer.build_model(cfg.backbone, classes, cfg.image_size, cfg.dropout, weights=None)
        x = np.zeros((batch, cfg.image_size, cfg.image_size, 3), np.float32)
        y = np.arange(batch) % classes
        phases = []
        for name, epochs, layers in (("head", cfg.epochs_head, 0), ("fine", cfg.epochs_fine,
                                                                     cfg.fine_tune_layers)):
            if epochs:
                transfer.set_trainable(model, layers)
                model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"])
                phases.append(_probe_phase(model, x, y, name, epochs, n_train, n_val, n_test if
                                           name == "fine" or not cfg.epochs_fine else 0, batch))
    else:
        raise TypeError(f"no estimate for {type(cfg).__name__}")
    return Estimate(sum(p["seconds"] for p in phases), time.perf_counter() - start, phases)
