"""Training throughput on this machine's accelerator, float32 against mixed_float16.

    KERAS_BACKEND=jax python -m bench.gpu_throughput     # or the TensorFlow backend

For the MNIST `best` CNN and the flowers transfer model (MobileNetV2 alpha 0.5 at
224 px, top 50 backbone layers unfrozen), it times `model.fit` on random inputs of
the real shapes (speed does not depend on pixel values) and prints images/s and the
epoch time of the real training split. The first epoch (compilation) is not timed.
"""
from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from core.models import mnist, transfer

# (name, builder, input shape, classes, images in a real training epoch, batch size)
CASES = [
    ("mnist best", lambda: mnist.build("best"), (28, 28, 1), 10, 54_000, 128),
    ("mnist best, no augmentation", lambda: _without_augmentation(mnist.build("best")), (28, 28, 1), 10,
     54_000, 128),
    ("flowers mobilenet_v2_0.5 224px", lambda: _flowers(), (224, 224, 3), 5, 1_750, 32),
]


def _without_augmentation(model):
    """The same chain of layers minus the Random* ones, to see what augmentation costs."""
    x = inputs = keras.Input(model.input_shape[1:])
    for layer in model.layers[1:]:
        if not layer.__class__.__name__.startswith("Random"):
            x = layer(x)
    return keras.Model(inputs, x)


def _flowers():
    model = transfer.build_model("mobilenet_v2_0.5", 5, image_size=224, weights=None)
    transfer.set_trainable(model, 50)
    return model


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def measure(build, shape, classes, images, batch, policy, epochs=3, steps=None) -> float:
    """Median seconds per epoch of ``images`` images (timed on ``steps`` batches when given)."""
    keras.mixed_precision.set_global_policy(policy)
    model = build()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    scale = 255 if shape[-1] == 3 else 1
    count = min(images, steps * batch) if steps else images
    x = (rng.random((count, *shape), dtype=np.float32) * scale).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, classes, count), classes)
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
    keras.mixed_precision.set_global_policy("float32")
    return float(np.median(timer.times[1:])) * images / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, help="time this many batches per epoch, not a whole epoch")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--policies", default="float32,mixed_float16")
    args = parser.parse_args()
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    if keras.backend.backend() == "jax":
        import jax

        print("devices:", [d.device_kind for d in jax.devices()])
    for name, build, shape, classes, images, batch in CASES:
        if args.only and args.only not in name:
            continue
        for policy in args.policies.split(","):
            seconds = measure(build, shape, classes, images, batch, policy, args.epochs, args.steps)
            print(f"{name:32s} {policy:14s} batch {batch:4d}: {images / seconds:9.0f} images/s, "
                  f"epoch of {images} images {seconds:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
