"""A model as the pages and command lines serve it: the network, its card, its
temperature and its unknown-input check, loaded once per file.

``load`` finds the card beside the model (``NAME.card.json`` for a shipped
``NAME.keras``, ``card.json`` in a run folder); a bare model file without a card is
served as it is (no calibration, no unknown check).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import machine
from core.inference import calibration, unknown
from core.inference.digits import ModelLoadError, load_model
from core.models.cards import RUN_CARD, SHIPPED_SUFFIX, CardError, ModelEntry, read_card


@dataclass
class Served:
    path: Path
    model: object
    card: dict = field(default_factory=dict)
    detector: unknown.Detector | None = None

    @property
    def classes(self) -> list[str]:
        names = self.card.get("classes") or []
        count = int(self.model.outputs[0].shape[-1])
        return list(names) if len(names) == count else [f"class {i}" for i in range(count)]

    @property
    def temperature(self) -> float:
        return calibration.temperature(self.card)

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        return calibration.calibrate(probs, self.card)

    def known(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        """Per input, whether it looks like the training data (None: this model has no check)."""
        return None if self.detector is None else self.detector.known(self.model, x, probs)


def card_path(model_path: str | Path) -> Path | None:
    model_path = Path(model_path)
    for candidate in (model_path.with_name(model_path.stem + SHIPPED_SUFFIX), model_path.with_name(RUN_CARD)):
        if candidate.is_file():
            return candidate
    return None


_cache: dict[tuple, Served] = {}
_lock = threading.Lock()


def load(model_path: str | Path) -> Served:
    """The served model at ``model_path``, cached until the model or its card changes.

    Raises ModelLoadError (a StudioError) for a missing or unreadable model.
    """
    model_path = Path(model_path).resolve()
    model = load_model(model_path)
    cpath = card_path(model_path)
    stamp = cpath.stat().st_mtime_ns if cpath else None
    key = (str(model_path), id(model), stamp)
    with _lock:
        if key not in _cache:
            try:
                card = read_card(cpath) if cpath else {}
            except CardError as exc:
                raise ModelLoadError(str(exc)) from None
            _cache[key] = Served(model_path, model, card, unknown.detector(card, model_path))
        return _cache[key]


def default_entry(task: str) -> ModelEntry:
    """The model a page offers first for ``task`` (the first usable card), as the CLIs' default."""
    usable = [e for e in machine.models(task=task) if e.ok]
    if not usable:
        raise ModelLoadError(f"no usable {task} model found; restore assets/models or pass --model")
    return usable[0]
