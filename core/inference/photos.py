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
from core.inference import gradcam, unsure
from core.inference.digits import forward
from core.inference.served import Served
from core.inference.served import load as served_model


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
    top: list[tuple[str, float]] = field(default_factory=list)  # calibrated, most likely first
    error: str | None = None
    known: bool | None = None  # False: unlike any of the model's classes; None: no check

    @property
    def unsure(self) -> bool:
        return bool(self.top) and unsure(self.top[0][1])

    @property
    def ok(self) -> bool:
        return self.error is None


def classes_problem(model, classes: list[str]) -> str | None:
    """Why ``classes`` cannot name this model's outputs (a card that does not match), or None."""
    outputs = int(model.outputs[0].shape[-1])
    if len(classes) != outputs:
        return f"the model's card names {len(classes)} classes but the model has {outputs} outputs"
    return None


def classify_photo(served: Served, name: str, data, k: int = 5) -> PhotoResult:
    """One file (bytes, path or file object) to its calibrated top-k classes and whether it
    looks like any of them, or its error. Any decoder failure becomes this file's error."""
    problem = classes_problem(served.model, list(served.card.get("classes") or []))
    if problem:
        return PhotoResult(name, error=f"{name}: {problem}")
    try:
        image = photo.load_photo(data)
        x = photo.model_input(image, input_size(served.model))[None]
    except photo.PhotoError as exc:
        return PhotoResult(name, error=f"{name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a decoder bug must cost this file only
        return PhotoResult(name, error=f"{name}: this file could not be read as a photo "
                                       f"({type(exc).__name__})")
    probs = served.calibrate(probabilities(served.model, x))
    known = served.known(x, probs)
    return PhotoResult(name, image, top_k(probs[0], served.classes, k), known=None if known is None
                       else bool(known[0]))


_cams: dict[tuple, Image.Image] = {}
_CAM_CACHE = 32  # overlays kept (one per photo, model and class)


def explain(model, image: Image.Image, class_index: int | None = None) -> Image.Image:
    """The photo with its Grad-CAM heat map for ``class_index`` (default: the top class).

    Cached per model, photo and class: toggling Grad-CAM off and on again costs nothing.
    """
    key = (id(model), image.size, hash(image.tobytes()), class_index)
    if key not in _cams:
        x = photo.model_input(image, input_size(model))
        if len(_cams) >= _CAM_CACHE:
            _cams.pop(next(iter(_cams)))
        _cams[key] = gradcam.overlay(image, gradcam.heatmap(model, x, class_index))
    return _cams[key]


def load(model_path: str | Path) -> Served:
    """The cached served model at ``model_path`` (raises core.inference.digits.ModelLoadError)."""
    return served_model(model_path)
