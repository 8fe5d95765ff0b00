"""Export every shipped model in every format and check each export on 100 real test images.

    python -m bench.export_shipped [--out DIR] [--images 100] [NAME ...]

MNIST models see the first N images of the MNIST test split, the flowers model the first
N photos of its own test split (its ``NAME.split.json``). Each exported file is loaded by
its own runtime (Keras, TensorFlow, LiteRT, onnxruntime) and compared with the Keras
model: file size, top-class agreement and the largest probability difference.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import core
from core import config
from core.data import folders, photo
from core.data import mnist as mnist_data
from core.models import export
from core.models.cards import SHIPPED_SUFFIX, read_card


def test_images(name: str, card: dict, count: int) -> np.ndarray:
    """The first ``count`` test images of the model's own data, as the model takes them."""
    if card["task"] == "mnist":
        _, (x_test, _), _ = mnist_data.load_raw()
        return mnist_data.to_float(x_test[:count])
    split = folders.load_split(config.models_dir() / card["data"]["split_file"])
    folder = Path(split["folder"])
    folder = folder if folder.is_absolute() else config.data_root() / folder
    size = int(card["input_shape"][0])
    return np.stack([photo.model_input(photo.load_photo(folder / path), size).astype(np.float32)
                     for path, _ in split["test"][:count]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="shipped model names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="keep the exports here (default: a temp dir)")
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args(argv)
    core.import_tensorflow()
    import keras

    names = args.names or sorted(p.name[: -len(SHIPPED_SUFFIX)]
                                 for p in config.models_dir().glob(f"*{SHIPPED_SUFFIX}"))
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        print(f"{'model':22} {'file':22} {'MB':>7} {'top-1 agree':>11} {'max |dp|':>9}")
        for name in names:
            card = read_card(config.models_dir() / f"{name}{SHIPPED_SUFFIX}")
            images = test_images(name, card, args.images)
            model = keras.saving.load_model(config.models_dir() / card["model_file"], compile=False)
            reference = np.asarray(model(images, training=False))
            start = time.perf_counter()
            out = export.export(name, root / name)
            seconds = time.perf_counter() - start
            for file, figures in export.compare(out, images, reference).items():
                print(f"{name:22} {file:22} {figures['bytes'] / 1e6:7.2f} "
                      f"{figures['top_agreement']:>10.0%} {figures['max_abs_diff']:9.2e}")
            print(f"{name:22} exported all formats in {seconds:.0f} s ({len(images)} test images)")


if __name__ == "__main__":
    main()
