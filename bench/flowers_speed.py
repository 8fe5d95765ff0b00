"""Median time to classify one photo on the CPU: file bytes to probabilities.

    CNN_STUDIO_DATA=/path/to/data python -m bench.flowers_speed [--photos 100]

Each shipped image model is timed at its own input size and, when that differs, at
224x224 (the same architecture rebuilt at 224, random weights: speed only). One photo
at a time, as on the Classify page: decode (core.data.photo), resize, forward pass.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU figures, even on a GPU machine

import core

core.import_tensorflow()

from core import config
from core import machine as system
from core.data import folders, photo
from core.inference import photos as classify
from core.models import transfer


def photos_for(entry, count: int) -> list[bytes]:
    split = folders.load_split(entry.card_path.parent / entry.card["data"]["split_file"])
    folder = Path(split["folder"])
    folder = folder if folder.is_absolute() else config.data_root() / folder
    return [(folder / p).read_bytes() for p, _ in split["test"][:count]]


def camera_photo() -> bytes:
    """A 12-megapixel JPEG, as a phone takes them: the case draft() decoding is for."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def time_model(model, data: list[bytes]) -> float:
    size = classify.input_size(model)
    times = []
    for i, blob in enumerate([data[0]] * 5 + data):  # five warm-up calls
        start = time.perf_counter()
        x = photo.model_input(photo.load_photo(blob), size)[None]
        classify.probabilities(model, x)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    args = parser.parse_args()
    print(f"CPU: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for entry in (e for e in system.models("image") if e.ok and e.source == "shipped"):
        data = photos_for(entry, args.photos)
        start = time.perf_counter()
        model = classify.load(entry.model_path)
        load_s = time.perf_counter() - start
        size = classify.input_size(model)
        print(f"{entry.name}: model file loaded in {load_s:.2f}s; {len(data)} photos one at a time")
        print(f"  {size}x{size}: median {time_model(model, data):.1f} ms per photo (target <= 150 ms at 224)")
        print(f"  12-megapixel JPEG: median {time_model(model, [camera_photo()] * 10):.1f} ms per photo")
        if size != 224 and entry.card.get("backbone") in transfer.BACKBONES:
            same = transfer.build_model(entry.card["backbone"], len(entry.card["classes"]), 224, weights=None)
            print(f"  224x224 (same architecture): median {time_model(same, data):.1f} ms per photo")


if __name__ == "__main__":
    main()
