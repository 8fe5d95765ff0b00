"""The training monitor records where a stop really ended, so no view rounds it up to a full epoch."""
from __future__ import annotations

import numpy as np

import core

core.import_tensorflow()
import keras

from core import jobs
from core.rundir import RunDir
from core.training.monitor import TrainingMonitor
from tests.fixtures.drawing import tiny_cnn


class StopAt(keras.callbacks.Callback):
    """Asks for a stop (the STOP file the Stop button writes) after batch ``at``."""

    def __init__(self, run: RunDir, at: int):
        super().__init__()
        self.run, self.at = run, at

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.at:
            self.run.request_stop()


def test_a_stop_mid_epoch_is_recorded_at_its_real_batch(tmp_path):
    run = RunDir(tmp_path / "r").create()
    run.update_status(state="running")
    x, y = np.random.default_rng(0).random((400, 28, 28, 1), np.float32), np.arange(400) % 10
    model = tiny_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = 400 // 8
    monitor = TrainingMonitor(run, epochs=3, steps=steps, batch_every_s=0.0, checkpoint=False, show_bar=False)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[StopAt(run, 7), monitor])
    assert monitor.stopped
    (stop,) = run.read_metrics("stop")
    (epoch,) = run.read_metrics("epoch")
    assert (stop["epoch"], stop["batch"], stop["steps"]) == (1, 7, steps)
    assert epoch["batches"] == 7 < steps
    run.update_status(state="stopped")
    progress = jobs.Jobs(tmp_path).progress("r")
    assert (progress["epoch"], progress["batch"]) == (1, 7) and progress["fraction"] < 0.1
