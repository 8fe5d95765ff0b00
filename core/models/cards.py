"""Model cards: the JSON file beside each model that says what it is and how good.

A shipped model is ``assets/models/NAME.keras`` with ``NAME.card.json``; a model a
user trained is ``runs/RUN/model.keras`` with ``runs/RUN/card.json``. Cards are
written atomically so a crash never leaves half a card.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePath

from core import fmt
from core.errors import StudioError
from core.io import JsonFileError, read_json

SHIPPED_SUFFIX = ".card.json"
RUN_CARD = "card.json"
REQUIRED = ("name", "task", "model_file")
TASKS = ("mnist", "image")


class CardError(StudioError):
    """A model card that is missing, unreadable or incomplete."""


def read_card(path: str | Path) -> dict:
    """Parse and check one card; raise CardError saying what is wrong."""
    path = Path(path)
    try:
        card = read_json(path)
    except JsonFileError as exc:
        raise CardError(str(exc)) from None
    if card is None:
        raise CardError(f"{path.name}: no such card")
    missing = [key for key in REQUIRED if key not in card]
    if missing:
        raise CardError(f"{path.name}: missing field(s) {', '.join(missing)}")
    if card["task"] not in TASKS:
        raise CardError(f"{path.name}: unknown task {str(card['task'])[:40]!r} (expected one of {TASKS})")
    problem = check_values(card)
    if problem:
        raise CardError(f"{path.name}: {problem}")
    return card


def _number_or_none(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def check_values(card: dict) -> str | None:
    """What is wrong with the types in a card (a page formats them), or None.

    ``model_file`` must be a plain file name, so the model lies in the card's own folder.
    """
    model_file = card.get("model_file", "model.keras")
    if (not isinstance(model_file, str) or model_file in ("", ".", "..")
            or PurePath(model_file).name != model_file or "\\" in model_file or "\0" in model_file):
        return f"model_file must be a file name beside the card (got {str(model_file)[:60]!r})"
    classes = card.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return "classes must be a list of names"
    metrics = card.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return "metrics must be an object"
        for key in ("test_accuracy", "val_accuracy", "test_errors"):
            if not _number_or_none(metrics.get(key)):
                return f"metrics.{key} must be a number (got {str(metrics.get(key))[:20]!r})"
    for key in ("title", "name"):
        if key in card and not isinstance(card[key], str):
            return f"{key} must be text"
    if "params" in card and not _number_or_none(card["params"]):
        return "params must be a number"
    training = card.get("training")
    if training is not None and not (isinstance(training, dict)
                                     and _number_or_none(training.get("wall_time_s"))):
        return "training.wall_time_s must be a number"
    return None


@dataclass
class ModelEntry:
    """One model the app can offer, or a card that could not be read."""

    name: str
    source: str  # "shipped" or "run"
    card_path: Path
    card: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def task(self) -> str | None:
        return self.card.get("task")

    @property
    def model_path(self) -> Path:
        """The model file, always in the card's folder (read_card refuses any other ``model_file``)."""
        return self.card_path.parent / PurePath(str(self.card.get("model_file", "model.keras"))).name

    @property
    def title(self) -> str:
        return self.card.get("title") or self.name

    @property
    def test_accuracy(self) -> float | None:
        return (self.card.get("metrics") or {}).get("test_accuracy")

    def label(self) -> str:
        """A short human label for pickers: title, accuracy and where it comes from."""
        acc = self.test_accuracy
        score = f" · test {fmt.pct(acc, 2)}" if isinstance(acc, (int, float)) else ""
        where = "shipped" if self.source == "shipped" else f"your run {self.card_path.parent.name}"
        return f"{self.title}{score} ({where})"


def _entry(name: str, source: str, card_path: Path) -> ModelEntry:
    try:
        card = read_card(card_path)
    except CardError as exc:
        return ModelEntry(name, source, card_path, error=str(exc))
    entry = ModelEntry(card.get("name", name), source, card_path, card)
    if entry.model_path.resolve().parent != card_path.parent.resolve():
        entry.error = f"model file {entry.model_path.name} links outside the folder of {card_path.name}"
    elif not entry.model_path.is_file():
        entry.error = f"model file {entry.model_path.name} is missing next to {card_path.name}"
    return entry


def find_models(models_dir: Path, runs_root: Path, task: str | None = None) -> list[ModelEntry]:
    """Every model card under the shipped folder and the runs folder.

    Broken cards are returned with ``error`` set rather than raising, so a page
    can show what is wrong next to the models that work.
    """
    entries: list[ModelEntry] = []
    if models_dir.is_dir():
        for card_path in sorted(models_dir.glob(f"*{SHIPPED_SUFFIX}")):
            entries.append(_entry(card_path.name[: -len(SHIPPED_SUFFIX)], "shipped", card_path))
    if runs_root.is_dir():
        for card_path in sorted(runs_root.glob(f"*/{RUN_CARD}")):
            entries.append(_entry(card_path.parent.name, "run", card_path))
    if task is not None:
        entries = [e for e in entries if e.task == task]
    return entries
