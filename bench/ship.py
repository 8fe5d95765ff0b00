"""Ship a finished run with the app: ``python -m bench.ship RUN_DIR NAME [--allow-stopped]``.

Copies the run's model (without optimizer state) to ``assets/models/NAME.keras`` and its card
to ``NAME.card.json`` with the name, file, size and sha256 updated; an image run also ships its
split as ``NAME.split.json`` with the data folder relative to the data root, so the bench
finds it on any machine. The card's figures are the ones training measured; nothing is
re-chosen here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import cli, config
from core.data import folders
from core.errors import StudioError
from core.io import atomic_write_json, sha256_file
from core.models.cards import SHIPPED_SUFFIX, read_card

MAX_MB = 20  # larger files do not belong in git


class ShipError(StudioError):
    """A run that cannot be shipped, in one sentence."""


def _copy_without_optimizer(source: Path, target: Path) -> None:
    """Same weights, no optimizer state: the app never needs it."""
    import core

    keras = core.import_keras()
    from core.models import augment  # noqa: F401 - registers RandomAffine for loading
    from core.rundir import save_clean_model

    save_clean_model(keras.models.load_model(source, compile=False), target)


def _ship_split(run_dir: Path, card: dict, models_dir: Path, name: str) -> None:
    split = folders.load_split(run_dir / card["data"]["split_file"])
    try:
        split["folder"] = Path(split["folder"]).relative_to(config.data_root()).as_posix()
    except ValueError:
        pass  # outside the data root: keep it as it was
    split_file = f"{name}.split.json"
    atomic_write_json(models_dir / split_file, split)
    card["data"] |= {"folder": split["folder"], "split_file": split_file,
                     "split_sha256": sha256_file(models_dir / split_file)}


def ship(run_dir: Path, name: str, models_dir: Path | None = None, allow_stopped: bool = False) -> Path:
    run_dir, models_dir = Path(run_dir), Path(models_dir or config.models_dir())
    card = read_card(run_dir / "card.json")
    if card.get("stopped") and not allow_stopped:
        raise ShipError(f"{run_dir}: the run was stopped early (pass --allow-stopped to ship it anyway)")
    source = run_dir / card["model_file"]
    size_mb = source.stat().st_size / 2**20
    if size_mb > MAX_MB:
        raise ShipError(f"{source}: {size_mb:.1f} MB is over the {MAX_MB} MB limit for git")
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"{name}.keras"
    _copy_without_optimizer(source, target)
    if card["task"] == "image":
        _ship_split(run_dir, card, models_dir, name)
    card |= {"name": name, "model_file": target.name, "model_sha256": sha256_file(target),
             "model_mb": round(target.stat().st_size / 2**20, 2), "shipped_from": run_dir.name}
    card_path = models_dir / f"{name}{SHIPPED_SUFFIX}"
    atomic_write_json(card_path, card)
    return card_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ship", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name", help="e.g. mnist_best, mnist_ensemble, flowers_mobilenet_v2")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: assets/models")
    parser.add_argument("--allow-stopped", action="store_true", help="ship a run that was stopped early")
    args = parser.parse_args(argv)
    card = read_card(ship(args.run_dir, args.name, args.models_dir, args.allow_stopped))
    m = card["metrics"]
    val = "none held out" if m["val_accuracy"] is None else f"{m['val_accuracy']:.2%}"  # a refit
    print(f"shipped {card['name']} ({card['model_mb']} MB): test {m['test_accuracy']:.2%} "
          f"({m['test_errors']} errors), val {val}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
