"""The ``mnist`` task: train one named architecture from scratch, end to end.

``python -m core.train mnist --arch best --epochs 30 --out runs/best1`` or, from Python,
``core.training.mnist_task.train(arch="fast", out="runs/fast1")``. The run folder follows
core.rundir: config.json, metrics.jsonl, checkpoints/last.keras every epoch,
model.keras and card.json at the end. ``--resume`` continues from the last checkpoint.

Works on any Keras backend: TensorFlow is imported only when it is the backend.
The test split is evaluated once, after training, for the card; nothing is chosen on it.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import core


def keras_backend_name() -> str:
    """The backend Keras will pick, read the way Keras reads it, without importing Keras."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        import json

        conf = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
        try:
            name = json.loads(conf.read_text()).get("backend")
        except (OSError, ValueError):
            name = None
    return name or "tensorflow"


if keras_backend_name() == "tensorflow":
    core.import_tensorflow()  # quiet import before Keras pulls TensorFlow in

import keras
import numpy as np

from core.data import mnist as data
from core.io import atomic_write_json
from core.models import mnist as models
from core.rundir import RunDir, save_clean_model
from core.training import TrainingError
from core.training.monitor import TrainingMonitor

CARD_VERSION = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="fast",
                        help=f"architecture: {', '.join(models.ARCHS)} (default: fast)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the arch's recipe)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: recipe)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: recipe)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for weights and shuffling")
    parser.add_argument("--val-split", type=float, default=0.1,
                        help="fraction of the 60,000 training images held out for validation; 0 refits "
                             "a recipe already chosen on a split on every training image")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training (and test) images, for quick runs")
    parser.add_argument("--name", default=None, help="model name in the card (default: the run folder's)")
    parser.add_argument("--out", required=True, help="run folder to create (or resume)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")


def _settings(args: argparse.Namespace) -> dict:
    """Resolve defaults from the recipe and check every setting, with one clear message."""
    if args.arch not in models.ARCHS:
        raise TrainingError(f"unknown architecture {args.arch!r}: choose one of {', '.join(models.ARCHS)}")
    rec = models.recipe(args.arch)
    cfg = {
        "task": "mnist", "arch": args.arch,
        "epochs": rec.epochs if args.epochs is None else args.epochs,
        "batch_size": rec.batch_size if args.batch_size is None else args.batch_size,
        "lr": rec.lr if args.lr is None else args.lr,
        "seed": args.seed, "val_split": args.val_split, "limit": args.limit,
    }
    if cfg["epochs"] < 1:
        raise TrainingError(f"epochs must be at least 1, got {cfg['epochs']}")
    if cfg["batch_size"] < 1:
        raise TrainingError(f"batch size must be at least 1, got {cfg['batch_size']}")
    if not cfg["lr"] > 0:
        raise TrainingError(f"learning rate must be positive, got {cfg['lr']}")
    if not 0 <= cfg["val_split"] < 1:
        raise TrainingError(f"validation split must be at least 0 and below 1, got {cfg['val_split']}")
    if cfg["limit"] is not None and cfg["limit"] < 2:
        raise TrainingError(f"limit must be at least 2 images, got {cfg['limit']}")
    return cfg | {"recipe": rec.as_dict()}


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[labels]


def hardware() -> dict:
    """Where this process computes: backend devices and the CPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus: list[str] = []
    backend = keras.backend.backend()
    if backend == "tensorflow":
        tf = sys.modules["tensorflow"]
        for dev in tf.config.list_physical_devices("GPU"):
            gpus.append(tf.config.experimental.get_device_details(dev).get("device_name", dev.name))
    elif backend == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return {"device": "GPU" if gpus else "CPU", "gpus": gpus, "cpu": cpu, "cpu_count": os.cpu_count(),
            "platform": platform.platform()}


def versions() -> dict:
    out = {"python": platform.python_version(), "keras": keras.__version__,
           "keras_backend": keras.backend.backend(), "numpy": np.__version__}
    for lib in ("tensorflow", "jax", "jaxlib"):
        if lib in sys.modules:
            out[lib] = getattr(sys.modules[lib], "__version__", None)
    return out


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict:
    """Accuracy and error count from the model's probabilities (None each for no images)."""
    if len(y) == 0:
        return {"accuracy": None, "errors": None, "images": 0}
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    pred = probs.argmax(axis=1)
    errors = int((pred != y).sum())
    return {"accuracy": float(1 - errors / len(y)), "errors": errors, "images": int(len(y))}


def _train_time(run: RunDir) -> float:
    """Seconds spent in training epochs, summed over resumes (the last record per epoch wins)."""
    per_epoch = {r["epoch"]: r.get("epoch_time", 0.0) for r in run.read_metrics("epoch")
                 if r.get("phase") == "train"}
    return float(sum(per_epoch.values()))


def _jit_compile():
    """XLA as chosen with core.train's --xla (TensorFlow backend), else Keras's own choice."""
    from core.training import devices

    plan = devices.current() if keras.backend.backend() == "tensorflow" else None
    return plan.jit_compile() if plan else "auto"


def _prepare(run: RunDir, args: argparse.Namespace) -> tuple[dict, int]:
    """The settings to train with and the epoch to start from (resume or fresh)."""
    state = run.checkpoint_state()
    if args.resume:
        saved = run.read_config()
        if state is None or not saved:
            raise TrainingError(f"nothing to resume in {run.path}: no checkpoint (checkpoints/last.keras)")
        if args.epochs is not None:  # resuming may extend a run; everything else stays as it was
            saved["epochs"] = args.epochs
        args = argparse.Namespace(**{**vars(args), **{k: saved[k] for k in (
            "arch", "epochs", "batch_size", "lr", "seed", "val_split", "limit")}})
        return _settings(args), int(state.get("epoch", 0))
    if state is not None or run.model_path.exists():
        raise TrainingError(f"{run.path} already holds a run: pass --resume or choose a new --out")
    return _settings(args), 0


def run(args: argparse.Namespace) -> dict:
    """Train, evaluate and write the model and its card; return the card."""
    out = RunDir(args.out).create()
    cfg, start_epoch = _prepare(out, args)
    try:
        ds = data.load(cfg["val_split"], cfg["limit"])
    except data.MnistDataError as exc:
        raise TrainingError(str(exc)) from None
    n_train = len(ds.x_train)
    if cfg["batch_size"] > n_train:
        raise TrainingError(f"batch size {cfg['batch_size']} is larger than the {n_train} training images")
    steps = math.ceil(n_train / cfg["batch_size"])
    rec = models.Recipe(**cfg["recipe"])
    out.write_config(cfg | {"device": hardware()["device"], "backend": keras.backend.backend()})

    keras.utils.set_random_seed(cfg["seed"] + start_epoch)  # a resumed run reshuffles differently
    if start_epoch:
        model = keras.models.load_model(out.checkpoint_path)
        print(f"resuming {cfg['arch']} from epoch {start_epoch}/{cfg['epochs']}", file=sys.stderr)
    else:
        model = models.compile_model(models.build(cfg["arch"]), rec, cfg["lr"], steps * cfg["epochs"],
                                     jit_compile=_jit_compile())
    monitor = TrainingMonitor(out, epochs=cfg["epochs"], steps=steps,
                              extra_state={"arch": cfg["arch"], "seed": cfg["seed"]})
    if start_epoch < cfg["epochs"]:
        model.fit(ds.x_train, _one_hot(ds.y_train), batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                  initial_epoch=start_epoch,
                  validation_data=(ds.x_val, _one_hot(ds.y_val)) if len(ds.y_val) else None,
                  callbacks=[monitor], verbose=0, shuffle=True)

    state = out.checkpoint_state() or {}
    val = evaluate(model, ds.x_val, ds.y_val)
    test = evaluate(model, ds.x_test, ds.y_test)  # once, for the card only
    out.append_metrics({"type": "test", "phase": "final", "val_accuracy": val["accuracy"],
                        "test_accuracy": test["accuracy"], "test_errors": test["errors"]})
    save_clean_model(model, out.model_path)
    card = make_card(out, cfg, model, val, test, ds.source, n_train=n_train,
                     epochs_done=int(state.get("epoch", 0)), name=args.name or out.name,
                     stopped=monitor.stopped)
    atomic_write_json(out.card_path, card)
    val_text = f"{val['accuracy']:.4%}" if val["images"] else "none held out"
    print(f"{card['name']}: val {val_text}, test {test['accuracy']:.4%} "
          f"({test['errors']} errors) in {card['training']['wall_time_s']:.0f}s", file=sys.stderr)
    return card


def make_card(out: RunDir, cfg: dict, model, val: dict, test: dict, source: dict, *, n_train: int,
              epochs_done: int, name: str, stopped: bool) -> dict:
    hw = hardware()
    rec = models.recipe(cfg["arch"])
    card = {
        "name": name,
        "task": "mnist",
        "model_file": out.model_path.name,
        "title": f"{rec.title} ({cfg['arch']})",
        "arch": cfg["arch"],
        "input_shape": list(data.INPUT_SHAPE),
        "input_range": [0.0, 1.0],
        "input_note": "grayscale 28x28, white digit on black, float32 scaled to [0, 1]",
        "classes": data.CLASSES,
        "metrics": {
            "test_accuracy": test["accuracy"], "test_errors": test["errors"], "test_images": test["images"],
            "val_accuracy": val["accuracy"], "val_errors": val["errors"], "val_images": val["images"],
        },
        "params": int(model.count_params()),
        "data": source | {"train_images": n_train, "val_images": val["images"], "test_images": test["images"],
                          "split_seed": data.SPLIT_SEED},
        "config": cfg,
        "training": {"epochs": epochs_done, "epochs_planned": cfg["epochs"],
                     "wall_time_s": round(_train_time(out), 2), "hardware": hw, "device": hw["device"]},
        "versions": versions(),
        "seed": cfg["seed"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "card_version": CARD_VERSION,
    }
    if stopped:
        card["stopped"] = True
    return card


def train(**options) -> dict:
    """Python entry point: ``train(arch="fast", out="runs/x", epochs=3)`` returns the card."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return run(parser.parse_args(argv))
