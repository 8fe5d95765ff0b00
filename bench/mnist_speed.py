"""MNIST speed figures on this machine.

    CNN_STUDIO_DATA=/work/shared/data .venv/bin/python -m bench.mnist_speed [--skip-fast]

1. Training throughput (images/s) of our loop (model.fit + TrainingMonitor: metrics
   lines, STOP checks, a checkpoint every epoch) against a plain ``model.fit`` of the
   same model, alternating runs to share out background noise; target overhead < 5%.
2. Time to 99.5% test accuracy with the ``fast`` recipe: train it as core.train does
   and, after each epoch, score the test set with the clock paused (a figure, not a choice).
3. Single-image prediction latency of each shipped MNIST model: median of 200 calls
   after warm-up, through a direct call and through a compiled tf.function; target <= 10 ms.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import core

tf = core.import_tensorflow()
import keras
import numpy as np

from core import config
from core import machine as system
from core.data import mnist
from core.models import mnist as models
from core.models.cards import find_models
from core.rundir import RunDir
from core.training.monitor import TrainingMonitor


def _one_hot(y):
    return np.eye(10, dtype=np.float32)[y]


def throughput(ds: mnist.Mnist, arch: str, images: int, rounds: int) -> None:
    x, y = ds.x_train[:images], _one_hot(ds.y_train[:images])
    rec = models.recipe(arch)
    model = models.compile_model(models.build(arch), rec, rec.lr, 10_000)
    model.fit(x[:1024], y[:1024], batch_size=rec.batch_size, epochs=1, verbose=0)  # compile once
    steps = -(-images // rec.batch_size)
    # Wall time, and process CPU time: on a shared machine CPU seconds are the steadier
    # measure of the extra work our loop does.
    wall = {"plain model.fit": [], "our loop": []}
    cpu = {name: [] for name in wall}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name in wall:
                callbacks = []
                if name == "our loop":
                    run = RunDir(Path(tmp) / f"r{r}").create()
                    callbacks = [TrainingMonitor(run, epochs=1, steps=steps)]
                start, start_cpu = time.perf_counter(), time.process_time()
                model.fit(x, y, batch_size=rec.batch_size, epochs=1, verbose=0, callbacks=callbacks)
                wall[name].append(images / (time.perf_counter() - start))
                cpu[name].append(images / (time.process_time() - start_cpu))
    print(f"throughput ({arch}, {images} images x {rounds} alternating rounds, median):")
    for label, table in (("wall clock", wall), ("per CPU second", cpu)):
        plain, ours = (float(np.median(v)) for v in table.values())
        for name, median in (("plain model.fit", plain), ("our loop", ours)):
            runs = ", ".join(f"{v:,.0f}" for v in table[name])
            print(f"  {label:<14} {name + ':':<16} {median:,.0f} images/s   (runs: {runs})")
        print(f"  {label:<14} overhead: {1 - ours / plain:+.1%} (target < 5%)")


class _TestProbe(keras.callbacks.Callback):
    """Scores the test set after each epoch with the training clock paused."""

    def __init__(self, x, y, target):
        super().__init__()
        self.x, self.y, self.target = x, y, target
        self.train_s, self.hit, self.log = 0.0, None, []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_s += time.perf_counter() - self._t
        acc = float((self.model.predict(self.x, batch_size=1000, verbose=0).argmax(1) == self.y).mean())
        self.log.append((epoch + 1, self.train_s, acc, float(logs.get("val_accuracy", 0))))
        if self.hit is None and acc >= self.target:
            self.hit = (epoch + 1, self.train_s)


def time_to_target(ds: mnist.Mnist, target: float = 0.995) -> None:
    rec = models.recipe("fast")
    keras.utils.set_random_seed(0)
    steps = -(-len(ds.x_train) // rec.batch_size)
    model = models.compile_model(models.build("fast"), rec, rec.lr, steps * rec.epochs)
    probe = _TestProbe(ds.x_test, ds.y_test, target)
    with tempfile.TemporaryDirectory() as tmp:
        monitor = TrainingMonitor(RunDir(tmp), epochs=rec.epochs, steps=steps)
        model.fit(ds.x_train, _one_hot(ds.y_train), batch_size=rec.batch_size, epochs=rec.epochs,
                  validation_data=(ds.x_val, _one_hot(ds.y_val)), callbacks=[monitor, probe],
                  verbose=0, shuffle=True)
    print(f"fast recipe ({rec.epochs} epochs, {len(ds.x_train)} training images), clock = training only:")
    for epoch, seconds, acc, val in probe.log:
        print(f"  epoch {epoch}: {seconds:6.1f} s  val {val:.2%}  test {acc:.2%}")
    if probe.hit:
        print(f"  reached {target:.1%} test accuracy after epoch {probe.hit[0]} in {probe.hit[1]:.0f} s "
              f"(target <= 180 s)")
    else:
        print(f"  did not reach {target:.1%} within {rec.epochs} epochs ({probe.train_s:.0f} s)")


def latency(calls: int = 200, warmup: int = 20) -> None:
    entries = [e for e in find_models(config.models_dir(), Path("/nonexistent"), "mnist") if e.ok]
    (_, _), (x_test, _), _ = mnist.load_raw()
    image = tf.constant(mnist.to_float(x_test[:1]))
    print(f"single-image latency, median of {calls} calls after {warmup} warm-up (target <= 10 ms):")
    for entry in entries:
        model = keras.models.load_model(entry.model_path, compile=False)
        compiled = tf.function(lambda x, m=model: m(x, training=False), reduce_retracing=True)
        figures = []
        direct = lambda m=model: m(image, training=False)  # noqa: E731
        for label, fn in (("direct call", direct), ("tf.function", lambda c=compiled: c(image))):
            for _ in range(warmup):
                np.asarray(fn())
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                np.asarray(fn())
                times.append(time.perf_counter() - start)
            figures.append(f"{label} {np.median(times) * 1000:.2f} ms")
        print(f"  {entry.name:<20} {', '.join(figures)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fast", action="store_true", help="skip the time-to-99.5%% training run")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--images", type=int, default=16384, help="images per throughput round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {system.machine_info().describe_device()}, "
          f"keras {keras.__version__} ({keras.backend.backend()})")
    ds = mnist.load()
    latency()
    if not args.skip_throughput:
        throughput(ds, "fast", args.images, args.rounds)
    if not args.skip_fast:
        time_to_target(ds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
