"""Accuracy and speed of the whole Draw-page path: canvas drawing -> preprocess -> model.

Each MNIST digit is turned into a drawing the way a person makes one on the
280x280 canvas: enlarged to a random size, redrawn with a canvas-like brush
(solid stroke of a random width), and put at a random place. The drawings go
through ``core.data.canvas.canvas_to_mnist`` and the model; the accuracy is
printed next to the model's plain accuracy on the same digits.

    CNN_STUDIO_DATA=/work/shared/data python -m bench.canvas_accuracy            # test set
    python -m bench.canvas_accuracy --split val --stroke 3.0   # held-out validation digits

Choose preprocessing settings (``--stroke``: the stroke width drawings are brought to)
with ``--split val``; run the test split once for the figures. ``--model PATH`` benches
any .keras file; the default is the most accurate shipped MNIST model.
Targets: canvas accuracy within 0.5 pp of plain accuracy; median image -> probabilities
at most 20 ms on CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import core
from core import config
from core import machine as system
from core.data import canvas as preprocess
from core.data import mnist
from core.data.canvas import grow, stroke_width

CANVAS = 280


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and labels of the test set, or of the validation digits
    held out of the shipped models' training (same fixed split as ``core.data.mnist``)."""
    data = mnist.load()
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    return (x[..., 0] * 255).round().astype(np.uint8), y


def draw_like_a_person(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 uint8 MNIST digit as a 280x280 RGBA canvas drawing (white on black, alpha 255)."""
    rows = np.flatnonzero((digit > 25).any(axis=1))
    cols = np.flatnonzero((digit > 25).any(axis=0))
    crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
    height = rng.uniform(110, 250)  # how tall people draw on a 280 px canvas
    scale = min(height / crop.shape[0], CANVAS / crop.shape[1])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    big = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BICUBIC))
    mask = big > 0.5  # a canvas stroke is solid
    brush = rng.uniform(14, 26)  # stroke width in canvas pixels (around the page's default, 20)
    change = round((brush - stroke_width(mask)) / 2)  # pixels to add (or remove) on each side
    if change > 0:
        mask = grow(np.pad(mask, change).astype(np.float32), change) > 0.5
    elif change < 0:  # a thinner brush, but never erode a stroke away
        thinner = grow(mask.astype(np.float32), change) > 0.5
        mask = thinner if thinner.sum() > 0.3 * mask.sum() else mask
    h, w = mask.shape
    h, w = min(h, CANVAS), min(w, CANVAS)
    top = rng.integers(0, CANVAS - h + 1)
    left = rng.integers(0, CANVAS - w + 1)
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[top:top + h, left:left + w, :3] = mask[:h, :w, None] * np.uint8(255)
    return canvas


def best_shipped_mnist_model() -> tuple[Path, str, float | None]:
    """(model path, name, card test accuracy) of the most accurate shipped MNIST model."""
    shipped = [e for e in system.models("mnist") if e.ok and e.source == "shipped"]
    if not shipped:
        sys.exit(f"No shipped MNIST model in {config.models_dir()}: restore with "
                 "`git checkout assets/models` or pass --model PATH.")
    best = max(shipped, key=lambda e: e.test_accuracy or 0.0)
    return best.model_path, best.name, best.test_accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a .keras file (default: best shipped MNIST model)")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stroke", type=float, default=preprocess.STROKE,
                        help="stroke width the drawing is brought to, 20 px box (0: off)")
    parser.add_argument("--timing-runs", type=int, default=200)
    args = parser.parse_args(argv)

    core.import_tensorflow()
    from core.inference import digits as predict

    if args.model:
        path, name, card_acc = args.model, args.model.name, None
    else:
        path, name, card_acc = best_shipped_mnist_model()
    model = predict.load_model(path)
    x, y = load_digits(args.split)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]

    plain = (predict.probabilities(model, x / 255.0).argmax(1) == y).mean()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    drawings = [draw_like_a_person(d, rng) for d in x]
    synth_s = time.perf_counter() - started
    inputs = np.stack([preprocess.canvas_to_mnist(d, stroke=args.stroke) for d in drawings])
    canvas = (predict.probabilities(model, inputs).argmax(1) == y).mean()

    times = []
    for drawing in drawings[:args.timing_runs]:
        t0 = time.perf_counter()
        predict.probabilities(model, preprocess.canvas_to_mnist(drawing, stroke=args.stroke))
        times.append(time.perf_counter() - t0)
    median_ms = statistics.median(times[5:] or times) * 1000  # skip the first calls (tracing)

    print(f"model: {name} ({path})")
    print(f"split: {args.split}, {len(y)} digits, seed {args.seed}, stroke {args.stroke} "
          f"(drawings made in {synth_s:.1f} s)")
    if card_acc is not None:
        print(f"card test accuracy:    {card_acc:.2%}")
    print(f"plain MNIST accuracy:  {plain:.2%}")
    print(f"canvas-path accuracy:  {canvas:.2%}  (gap {100 * (plain - canvas):+.2f} pp, target <= 0.5)")
    print(f"median image->probs:   {median_ms:.1f} ms  (target <= 20 ms on CPU)")


if __name__ == "__main__":
    main()
