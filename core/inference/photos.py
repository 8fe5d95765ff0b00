"""Classify photos with an image model: load, predict, top-k, Grad-CAM.

Models are loaded once through ``core.inference.digits.load_model`` (cached by file). Each
uploaded file is classified on its own, so one broken file gives one error
(``PhotoResult.error``) and the others still get their answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.data import photo
from core.inference import gradcam
from core.inference.digits import forward, load_model


def input_size(model) -> int:
    """The square side the model takes (its input shape is (None, H, W, 3))."""
    return int(model.inputs[0].shape[1])


def probabilities(model, images: np.ndarray) -> np.ndarray:
    """(N, classes) probabilities for (N, H, W, 3) raw 0-255 images."""
    x = np.asarray(images, dtype=np.float32)
    return np.asarray(forward(model)(x))


def top_k(probs: np.ndarray, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most likely (class, probability) pairs, most likely first."""
    order = np.argsort(probs)[::-1][:k]
    return [(classes[i], float(probs[i])) for i in order]


@dataclass
class PhotoResult:
    name: str
    image: Image.Image | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def classes_problem(model, classes: list[str]) -> str | None:
    """Why ``classes`` cannot name this model's outputs (a card that does not match), or None."""
    outputs = int(model.outputs[0].shape[-1])
    if len(classes) != outputs:
        return f"the model's card names {len(classes)} classes but the model has {outputs} outputs"
    return None


def classify_photo(model, classes: list[str], name: str, data, k: int = 5) -> PhotoResult:
    """One uploaded file (bytes, path or file object) to its top-k classes, or its error."""
    problem = classes_problem(model, classes)
    if problem:
        return PhotoResult(name, error=f"{name}: {problem}")
    try:
        image = photo.load_photo(data)
    except photo.PhotoError as exc:
        return PhotoResult(name, error=f"{name}: {exc}")
    x = photo.model_input(image, input_size(model))[None]
    return PhotoResult(name, image, top_k(probabilities(model, x)[0], classes, k))


def explain(model, image: Image.Image, class_index: int | None = None) -> Image.Image:
    """The photo with its Grad-CAM heat map for ``class_index`` (default: the top class)."""
    x = photo.model_input(image, input_size(model))
    return gradcam.overlay(image, gradcam.heatmap(model, x, class_index))


def load(model_path: str | Path):
    """The cached model at ``model_path`` (raises core.inference.digits.ModelLoadError)."""
    return load_model(model_path)
