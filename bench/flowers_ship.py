"""Copy a finished flowers run into assets/models as the shipped model.

    python -m bench.flowers_ship runs/flowers_224 [--name flowers_mobilenet_v2]

Writes NAME.keras, NAME.card.json and NAME.split.json; the card's numbers are the
run's own (from ``python -m core.train transfer``); only names and paths change, and
the data folder is stored relative to the data root so the bench finds it anywhere.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from core import config
from core.data import folders
from core.io import atomic_write_json, sha256_file
from core.models.cards import read_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default="flowers_mobilenet_v2")
    args = parser.parse_args()
    card = read_card(args.run / "card.json")
    out = config.models_dir()
    out.mkdir(parents=True, exist_ok=True)
    model_file, split_file = f"{args.name}.keras", f"{args.name}.split.json"
    shutil.copyfile(args.run / card["model_file"], out / model_file)
    split = folders.load_split(args.run / card["data"]["split_file"])
    folder = Path(split["folder"])
    try:
        split["folder"] = folder.relative_to(config.data_root()).as_posix()
    except ValueError:
        pass  # outside the data root: keep it as it was
    atomic_write_json(out / split_file, split)
    card |= {"name": args.name, "model_file": model_file}
    card["data"] |= {"folder": split["folder"], "split_file": split_file,
                     "split_sha256": sha256_file(out / split_file),
                     "model_sha256": sha256_file(out / model_file), "run": args.run.name}
    atomic_write_json(out / f"{args.name}.card.json", card)
    size = (out / model_file).stat().st_size
    print(f"shipped {args.name}: {model_file} ({size / 2**20:.1f} MB), test accuracy "
          f"{card['metrics']['test_accuracy']:.2%}")


if __name__ == "__main__":
    main()
