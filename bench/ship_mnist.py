"""Ship a finished MNIST run with the app: ``python bench/ship_mnist.py RUN_DIR NAME``.

Copies ``RUN_DIR/model.keras`` to ``assets/models/NAME.keras`` and its card to
``NAME.card.json`` (name, model file and the file's sha256 updated). The card's
figures are the ones the training script measured; nothing is re-chosen here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import config
from core.io import atomic_write_json, sha256_file
from core.models.cards import SHIPPED_SUFFIX, read_card

MAX_MB = 20


def _copy_without_optimizer(source: Path, target: Path) -> None:
    """Same weights, no optimizer state: older runs saved it, the app never needs it."""
    import core

    core.import_tensorflow()
    import keras

    from core.models import augment  # noqa: F401 - registers RandomAffine for loading
    from core.rundir import save_clean_model

    save_clean_model(keras.models.load_model(source, compile=False), target)


def ship(run_dir: Path, name: str, models_dir: Path | None = None, allow_stopped: bool = False) -> Path:
    run_dir, models_dir = Path(run_dir), Path(models_dir or config.models_dir())
    card = read_card(run_dir / "card.json")
    if card["task"] != "mnist":
        raise SystemExit(f"{run_dir}: not an MNIST run (task {card['task']!r})")
    if card.get("stopped") and not allow_stopped:
        raise SystemExit(f"{run_dir}: the run was stopped early (pass --allow-stopped to ship it anyway)")
    source = run_dir / card["model_file"]
    size_mb = source.stat().st_size / 2**20
    if size_mb > MAX_MB:
        raise SystemExit(f"{source}: {size_mb:.1f} MB is over the {MAX_MB} MB limit for git")
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"{name}.keras"
    _copy_without_optimizer(source, target)
    size_mb = target.stat().st_size / 2**20
    card |= {"name": name, "model_file": target.name, "model_sha256": sha256_file(target),
             "model_mb": round(size_mb, 2), "shipped_from": run_dir.name}
    card_path = models_dir / f"{name}{SHIPPED_SUFFIX}"
    atomic_write_json(card_path, card)
    return card_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name", help="e.g. mnist_seed, mnist_best, mnist_ensemble")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: assets/models")
    parser.add_argument("--allow-stopped", action="store_true", help="ship a run that was stopped early")
    args = parser.parse_args()
    card_path = ship(args.run_dir, args.name, args.models_dir, args.allow_stopped)
    card = read_card(card_path)
    m = card["metrics"]
    val = "none held out" if m["val_accuracy"] is None else f"{m['val_accuracy']:.2%}"  # a refit
    print(f"shipped {card_path.parent / card['model_file']} ({card['model_mb']} MB): "
          f"test {m['test_accuracy']:.2%} ({m['test_errors']} errors), val {val}")


if __name__ == "__main__":
    main()
