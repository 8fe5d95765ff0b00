"""What augmentation costs per training step, on this machine and Keras backend.

    KERAS_BACKEND=tensorflow python -m bench.augment_cost
    KERAS_BACKEND=jax        python -m bench.augment_cost [--only best] [--json out.json]

For each model it times training steps (``model.fit`` on random inputs of the real
shape; speed does not depend on pixel values) three ways: with the model's
``RandomAffine`` layer (core.models.augment), without any augmentation, and, for
MNIST ``best``, with the Keras layers it replaced (RandomRotation + RandomZoom +
RandomTranslation). The variants take turns, round after round, so a busy machine
slows all of them alike; the figure is the median round. Besides wall time it
records this process's CPU time per step (all threads): on a shared, overloaded
CPU that is the steadier measure of what a step costs. Target (issue 16): with
augmentation at most 1.3x the plain step on a 2-core CPU, at most 2x on a GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import core

keras = core.import_keras()
import numpy as np

from core.models import mnist, transfer

# name -> (builder, input shape, classes, batch size)
CASES = {
    "mnist fast": (lambda: mnist.build("fast"), (28, 28, 1), 10, 128),
    "mnist best": (lambda: mnist.build("best"), (28, 28, 1), 10, 128),
    "flowers mobilenet_v2_0.5 224px": (lambda: _flowers(), (224, 224, 3), 5, 32),
}


def _flowers():
    model = transfer.build_model("mobilenet_v2_0.5", 5, image_size=224, weights=None)
    transfer.set_trainable(model, 40)
    return model


def without_augmentation(model):
    """The same layers minus the augmentation (the first layer after the input)."""
    x = inputs = keras.Input(model.input_shape[1:])
    for layer in model.layers[1:]:
        if layer.name != "augment":
            x = layer(x)
    return keras.Model(inputs, x)


def with_keras_layers(model):
    """MNIST best with the three Keras layers it used before RandomAffine (same settings)."""
    x = inputs = keras.Input(model.input_shape[1:])
    x = keras.layers.RandomRotation(10 / 360, fill_mode="constant")(x)
    x = keras.layers.RandomZoom(0.1, fill_mode="constant")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
    for layer in model.layers[1:]:
        if layer.name != "augment":
            x = layer(x)
    return keras.Model(inputs, x)


def measure(name: str, policy: str = "float32", steps: int = 20, rounds: int = 5) -> dict:
    """Median seconds per step of each variant, and images/s."""
    build, shape, classes, batch = CASES[name]
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        full = build()
        variants = {"augmented": full, "plain": without_augmentation(full)}
        if name == "mnist best":
            variants["keras_layers"] = with_keras_layers(full)
        rng = np.random.default_rng(0)
        scale = 255.0 if shape[-1] == 3 else 1.0
        x = (rng.random((steps * batch, *shape), dtype=np.float32) * scale).astype(np.float32)
        y = rng.integers(0, classes, steps * batch)
        for model in variants.values():
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)  # compile
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            for key, model in variants.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
                wall[key].append((time.perf_counter() - start) / steps)
                cpu[key].append((time.process_time() - start_cpu) / steps)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    step = {k: statistics.median(v) for k, v in wall.items()}
    cpu_step = {k: statistics.median(v) for k, v in cpu.items()}
    result = {"case": name, "policy": policy, "batch_size": batch, "steps": steps, "rounds": rounds,
              "step_s": {k: round(v, 5) for k, v in step.items()},
              "cpu_step_s": {k: round(v, 5) for k, v in cpu_step.items()},
              "images_per_s": {k: round(batch / v, 1) for k, v in step.items()}}
    for key in variants:
        if key != "plain":
            result[f"ratio_{key}"] = round(step[key] / step["plain"], 3)
            result[f"cpu_ratio_{key}"] = round(cpu_step[key] / cpu_step["plain"], 3)
    return result


def environment() -> dict:
    info = {"keras": keras.__version__, "backend": keras.backend.backend()}
    if info["backend"] == "jax":
        import jax

        info |= {"jax": jax.__version__, "devices": [d.device_kind for d in jax.devices()]}
    elif info["backend"] == "tensorflow":
        import tensorflow as tf

        info |= {"tensorflow": tf.__version__,
                 "devices": [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]
                 or ["CPU"]}
    import os

    info["cpu_count"] = os.cpu_count()
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--policies", default="float32", help="comma-separated, e.g. float32,mixed_float16")
    parser.add_argument("--steps", type=int, default=20, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    env = environment()
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    results = []
    for name in CASES:
        if args.only and args.only not in name:
            continue
        for policy in args.policies.split(","):
            r = measure(name, policy, args.steps, args.rounds)
            results.append(r)
            extra = (f"; Keras's three layers {r['ratio_keras_layers']:.2f}x "
                     f"(CPU time {r['cpu_ratio_keras_layers']:.2f}x)" if "ratio_keras_layers" in r else "")
            ips = r["images_per_s"]
            print(f"{name:32s} {policy:13s} batch {r['batch_size']:3d}: "
                  f"{ips['augmented']:8.0f} img/s augmented, {ips['plain']:8.0f} plain -> "
                  f"augmentation {r['ratio_augmented']:.2f}x the plain step "
                  f"(CPU time {r['cpu_ratio_augmented']:.2f}x){extra}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "results": results}, indent=1))


if __name__ == "__main__":
    main()
