"""Shared helpers for the Draw tests: canvas drawings of simple shapes and a tiny model that reads them.

The shapes stand in for three digits (a ring is 0, a bar is 1, a bar with a top stroke
is 7) so a model trained in a few seconds recognises them reliably.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
SHAPES = {0: "ring", 1: "bar", 7: "seven"}


def canvas_with(digit: int, scale: float = 1.0, dx: int = 0, dy: int = 0, width: int = 20) -> np.ndarray:
    """A white-on-black RGBA canvas (alpha 255 everywhere) with a shape standing for ``digit``."""
    img = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    cx, cy, h = CANVAS / 2 + dx, CANVAS / 2 + dy, 90 * scale

    def pt(x, y):
        return (cx + x * h, cy + y * h)

    if digit == 0:
        draw.ellipse([pt(-0.6, -1), pt(0.6, 1)], outline="white", width=width)
    elif digit == 1:
        draw.line([pt(0.1, -1), pt(-0.1, 1)], fill="white", width=width)
    elif digit == 7:
        draw.line([pt(-0.6, -1), pt(0.6, -1), pt(-0.1, 1)], fill="white", width=width, joint="curve")
    else:
        raise ValueError(f"no shape for {digit}")
    return np.asarray(img)


def canvas_png_state(rgba: np.ndarray) -> dict:
    """The session-state value of an st_canvas that makes AppTest deliver ``rgba`` as image_data."""
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    data = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": {"raw": {"objects": []}, "data": data}, "backgroundFit": None}


def shape_dataset(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n preprocessed 28x28 shapes with random size, place and stroke, and their digit labels."""
    from core.data.canvas import canvas_to_mnist

    rng = np.random.default_rng(seed)
    labels = rng.choice(list(SHAPES), size=n)
    images = [
        canvas_to_mnist(canvas_with(int(d), rng.uniform(0.4, 1.3), int(rng.integers(-40, 41)),
                                    int(rng.integers(-40, 41)), int(rng.integers(8, 30))))
        for d in labels
    ]
    return np.stack(images)[..., None], labels


def tiny_cnn(name: str = "tiny"):
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name=f"{name}_conv1"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, activation="relu", name=f"{name}_conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ], name=name)


def train_shape_model(path: Path, name: str = "tiny", seed: int = 0):
    """Train a tiny CNN on the shapes (a few seconds on a CPU) and save it to ``path``."""
    import core

    core.import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    x, y = shape_dataset(300, seed)
    model = tiny_cnn(name)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=12, batch_size=32, verbose=0)
    model.save(path)
    return model


def write_card(folder: Path, name: str, model_file: str, accuracy: float = 0.99) -> Path:
    card = folder / f"{name}.card.json"
    card.write_text(json.dumps({"name": name, "task": "mnist", "model_file": model_file,
                                "title": f"{name} CNN", "metrics": {"test_accuracy": accuracy}}))
    return card
