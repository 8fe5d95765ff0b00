"""A Keras callback that makes a run observable and stoppable.

It writes progress to the run folder (metrics.jsonl), draws a progress bar in the
terminal, checkpoints after every epoch and ends training when a STOP file appears.
Only Keras is used, so it works on every Keras backend.
"""
from __future__ import annotations

import sys
import time

import keras

from core.rundir import RunDir


class TrainingMonitor(keras.callbacks.Callback):
    def __init__(self, run: RunDir, *, epochs: int, steps: int, phase: str = "train",
                 batch_every_s: float = 1.0, checkpoint: bool = True, show_bar: bool | None = None,
                 extra_state: dict | None = None):
        super().__init__()
        self.run, self.epochs, self.steps, self.phase = run, epochs, steps, phase
        self.batch_every_s, self.checkpoint = batch_every_s, checkpoint
        self.show_bar = sys.stderr.isatty() if show_bar is None else show_bar
        # Without a bar, Keras may run our batch hook in a worker thread: otherwise it reads
        # every batch's logs on the spot, which stalls asynchronous backends (JAX, GPUs).
        # Not on JAX: a stop in the middle of an epoch then fails in Keras 3.15 ("Array has been
        # deleted"), as the loop ends while a worker thread still reads the last batch's logs.
        self.async_safe = not self.show_bar and keras.backend.backend() != "jax"
        self.extra_state = extra_state or {}
        self.stopped = False
        self._last_write = 0.0
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_start, self._batches_done = epoch, time.time(), 0
        if self.show_bar:
            print(f"{self.phase} epoch {epoch + 1}/{self.epochs}", file=sys.stderr)
            self._bar = keras.utils.Progbar(self.steps, stateful_metrics=None, verbose=1)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        now = time.time()
        self._batches_done = batch + 1
        if self._bar is not None:
            self._bar.update(batch + 1, [(k, float(v)) for k, v in logs.items()])
        # Throttled: writing every batch would cost more than the batch on small models.
        # The records feed the live per-batch curves (Keras' batch logs are running epoch means).
        if now - self._last_write >= self.batch_every_s:
            self._last_write = now
            self.run.append_metrics({"type": "batch", "phase": self.phase, "epoch": self._epoch + 1,
                                     "epochs": self.epochs, "batch": batch + 1, "steps": self.steps,
                                     "time": now, **_floats(logs)})
            if self.run.stop_requested():
                self.stopped = True
                self.model.stop_training = True
                # Where it really stopped, so no view rounds a stop up to the end of the epoch.
                self.run.append_metrics({"type": "stop", "phase": self.phase, "epoch": self._epoch + 1,
                                         "epochs": self.epochs, "batch": batch + 1, "steps": self.steps,
                                         "time": now})

    def on_epoch_end(self, epoch, logs=None):
        # "batches" < "steps" when a stop cut the epoch short.
        record = {"type": "epoch", "phase": self.phase, "epoch": epoch + 1, "epochs": self.epochs,
                  "batches": getattr(self, "_batches_done", self.steps), "steps": self.steps,
                  "epoch_time": time.time() - self._epoch_start, **_floats(logs or {})}
        self.run.append_metrics(record)
        if self.checkpoint:
            self.run.save_checkpoint(self.model, {"phase": self.phase, "epoch": epoch + 1,
                                                  **self.extra_state})
        if self.run.stop_requested():
            self.stopped = True
            self.model.stop_training = True


def _floats(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            pass
    return out
