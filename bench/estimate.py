"""How good is the Train page's time estimate? Probe, then really train, and compare.

    python -m bench.estimate [--quick]

For each configuration: the probe's prediction (core.training.estimate), then a real run
(``python -m core.train``) in a temporary folder: its training time from the card (fit,
validation and test) and its whole wall time (process start to exit, data loading included).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core import fmt
from core.training.estimate import estimate
from core.training.settings import MnistSettings, TransferSettings

CONFIGS = [
    ("mnist seed, 2 ep, 3,000 images", MnistSettings(arch="seed", epochs=2, limit=3000)),
    ("mnist fast, 2 ep, 3,000 images", MnistSettings(arch="fast", epochs=2, limit=3000)),
    ("mnist fast, 1 ep, 20,000 images", MnistSettings(arch="fast", epochs=1, limit=20000)),
    ("flowers mobilenet_v2_0.35 96px, 1+1 ep, 40/class",
     TransferSettings(backbone="mobilenet_v2_0.35", image_size=96, epochs_head=1, epochs_fine=1,
                      limit_per_class=40, batch_size=16)),
]


def n_train(cfg) -> tuple[int, int]:
    if isinstance(cfg, MnistSettings):
        from core.data import mnist

        return mnist.split_sizes(mnist.TRAIN_IMAGES, cfg.val_split, cfg.limit)[0], 10
    from core import config
    from core.data import folders

    counts = folders.scan(config.data_root() / cfg.data).counts
    return folders.split_sizes(counts, cfg.val_frac, cfg.test_frac, cfg.limit_per_class)["train"], len(counts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the first configuration")
    args = parser.parse_args(argv)
    print(f"{'configuration':50} {'estimate':>10} {'training':>10} {'whole run':>10} {'est/training':>12}")
    for name, cfg in CONFIGS[:1] if args.quick else CONFIGS:
        images, classes = n_train(cfg)
        predicted = estimate(cfg, images, classes)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            start = time.perf_counter()
            command = [sys.executable, "-m", "core.train", cfg.TASK, *cfg.to_argv(), "--out", str(out)]
            proc = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode:
                print(f"{name:50} run failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            fit = json.loads((out / "card.json").read_text())["training"]["wall_time_s"]
        print(f"{name:50} {fmt.duration(predicted.seconds):>10} {fmt.duration(fit):>10} "
              f"{fmt.duration(wall):>10} {predicted.seconds / fit:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
