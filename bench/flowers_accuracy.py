"""Test-split accuracy, per-class precision/recall and confusion matrix of every shipped image model.

    CNN_STUDIO_DATA=/path/to/data python -m bench.flowers_accuracy

Reads each card's saved split (NAME.split.json), so the test photos are exactly those
held out in training. Photos go through core.data.photo and the model as on the Classify page.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import core

core.import_tensorflow()

from core import config
from core import machine as system
from core.data import folders, photo
from core.inference import photos as classify


def evaluate(entry) -> dict | None:
    card = entry.card
    split_file = (card.get("data") or {}).get("split_file")
    if not split_file:
        print(f"{entry.name}: no saved split in its card, skipped")
        return None
    split = folders.load_split(entry.card_path.parent / split_file)
    folder = Path(split["folder"])
    folder = folder if folder.is_absolute() else config.data_root() / folder
    if not folder.is_dir():
        print(f"{entry.name}: data folder {folder} is missing, skipped")
        return None
    model = classify.load(entry.model_path)
    size = classify.input_size(model)
    classes = card["classes"]
    preds, labels = [], []
    for path, label in split["test"]:
        x = photo.model_input(photo.load_photo(folder / path), size)[None]
        preds.append(int(classify.probabilities(model, x)[0].argmax()))
        labels.append(label)
    preds, labels = np.array(preds), np.array(labels)
    k = len(classes)
    confusion = np.zeros((k, k), int)
    np.add.at(confusion, (labels, preds), 1)
    acc = float((preds == labels).mean())
    print(f"\n{entry.name} ({card.get('title')}), {size}x{size}, {len(labels)} test photos")
    print(f"test accuracy: {acc:.2%} ({int((preds != labels).sum())} errors); card says "
          f"{card['metrics']['test_accuracy']:.2%}; target >= 93%: {'MET' if acc >= 0.93 else 'NOT MET'}")
    print(f"{'class':<12}{'precision':>10}{'recall':>8}{'photos':>8}")
    for i, name in enumerate(classes):
        precision = confusion[i, i] / max(confusion[:, i].sum(), 1)
        recall = confusion[i, i] / max(confusion[i].sum(), 1)
        print(f"{name:<12}{precision:>10.2%}{recall:>8.2%}{confusion[i].sum():>8}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(" " * 12 + "".join(f"{c[:9]:>10}" for c in classes))
    for name, row in zip(classes, confusion, strict=True):
        print(f"{name:<12}" + "".join(f"{v:>10}" for v in row))
    return {"name": entry.name, "accuracy": acc}


def main() -> int:
    entries = [e for e in system.models("image") if e.ok and e.source == "shipped"]
    if not entries:
        print("no shipped image models in", config.models_dir())
        return 1
    results = [r for r in map(evaluate, entries) if r]
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
