"""The ``transfer`` task: fine-tune an ImageNet backbone on a folder of class subfolders.

``python -m core.train transfer --data flowers --backbone mobilenet_v2_0.5 --out runs/f1``

Two phases: the head alone on the frozen backbone, then the top ``--fine-tune-layers``
backbone layers too at a lower learning rate (batch-norm stays in inference mode).
Each phase stops early on validation loss; the weights kept at the end are the best
on validation (accuracy, then loss) over both phases. The split is saved as
``split.json`` in the run folder; the test split is evaluated once, for the card.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import core

core.import_tensorflow()

import keras
import numpy as np

from core.data import folders, uploads
from core.io import atomic_write_json, sha256_file
from core.models import transfer
from core.rundir import RunDir, save_clean_model
from core.training import TrainingError
from core.training.monitor import TrainingMonitor

CARD_VERSION = 1
BEST_WEIGHTS = "best.weights.h5"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--data", default="flowers", help="image folder, inside the data root (default: flowers)")
    add("--backbone", default="mobilenet_v2_0.5", help=f"one of {', '.join(transfer.BACKBONES)}")
    add("--image-size", type=int, default=224, help="square input size in pixels (default: 224)")
    add("--epochs-head", type=int, default=5, help="epochs with the backbone frozen (default: 5)")
    add("--epochs-fine", type=int, default=10, help="fine-tuning epochs, 0 to skip (default: 10)")
    add("--fine-tune-layers", type=int, default=40, help="top backbone layers to unfreeze (default: 40)")
    add("--batch-size", type=int, default=32)
    add("--lr", type=float, default=1e-3, help="head learning rate (default: 1e-3)")
    add("--fine-lr", type=float, default=1e-4, help="fine-tuning learning rate (default: 1e-4)")
    add("--dropout", type=float, default=0.2)
    add("--patience", type=int, default=3, help="epochs without better validation loss before stopping")
    add("--val-frac", type=float, default=0.15)
    add("--test-frac", type=float, default=0.15)
    add("--seed", type=int, default=42)
    add("--limit-per-class", type=int, default=None, help="use at most N images per class (quick runs)")
    add("--min-per-class", type=int, default=folders.MIN_PER_CLASS, help=argparse.SUPPRESS)
    add("--weights", default="auto", help=argparse.SUPPRESS)  # "none" for tests: random weights
    add("--name", default=None, help="model name in the card (default: the run folder's)")
    add("--out", required=True, help="run folder to create")


def _settings(args: argparse.Namespace) -> dict:
    cfg = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    checks = [
        (cfg["backbone"] in transfer.BACKBONES,
         f"unknown backbone {cfg['backbone']!r}: choose one of {', '.join(transfer.BACKBONES)}"),
        (32 <= cfg["image_size"] <= 512, f"image size must be 32 to 512 pixels, got {cfg['image_size']}"),
        (cfg["epochs_head"] >= 1, f"head epochs must be at least 1, got {cfg['epochs_head']}"),
        (cfg["epochs_fine"] >= 0, f"fine-tuning epochs must be 0 or more, got {cfg['epochs_fine']}"),
        (cfg["fine_tune_layers"] >= 0, f"fine-tune layers must be 0 or more, got {cfg['fine_tune_layers']}"),
        (cfg["batch_size"] >= 1, f"batch size must be at least 1, got {cfg['batch_size']}"),
        (cfg["lr"] > 0 and cfg["fine_lr"] > 0, "learning rates must be positive"),
        (0 <= cfg["dropout"] < 1, f"dropout must be in [0, 1), got {cfg['dropout']}"),
        (cfg["patience"] >= 1, f"patience must be at least 1, got {cfg['patience']}"),
        (cfg["limit_per_class"] is None or cfg["limit_per_class"] >= 10,
         "limit per class must be at least 10 images"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainingError(message)
    return cfg


class BestWeights(keras.callbacks.Callback):
    """Keep the weights with the best validation (accuracy, then lower loss) across phases."""

    def __init__(self, path):
        super().__init__()
        self.path, self.best, self.best_where = path, None, None
        self.phase = "head"

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        score = (round(float(logs.get("val_accuracy", 0.0)), 6), -float(logs.get("val_loss", np.inf)))
        if self.best is None or score > self.best:
            self.best, self.best_where = score, {"phase": self.phase, "epoch": epoch + 1}
            self.weights = self.model.get_weights()
            self.model.save_weights(self.path)  # on disk too, for a look after a crash

    def restore(self):
        if self.best is not None:
            self.model.set_weights(self.weights)


def _fit(model, train_ds, val_ds, *, run, phase, epochs, steps, patience, best, lr):
    # Fine-tuning anneals its rate to zero (cosine): big steps early, gentle ones at the end.
    rate = keras.optimizers.schedules.CosineDecay(lr, epochs * steps) if phase == "fine" else lr
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    monitor = TrainingMonitor(run, epochs=epochs, steps=steps, phase=phase, extra_state={"phase": phase})
    best.phase = phase
    stopper = keras.callbacks.EarlyStopping("val_loss", patience=patience)
    run.append_metrics({"type": "phase", "phase": phase, "epochs": epochs, "lr": lr,
                        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights))})
    start = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0,
                        shuffle=False, callbacks=[monitor, best, stopper])  # the dataset shuffles
    return monitor.stopped, len(history.history.get("loss", [])), time.time() - start


def evaluate(model, dataset, labels: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision and recall, and the confusion matrix (rows: true)."""
    pred = model.predict(dataset, verbose=0).argmax(axis=1)
    k = len(classes)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion)
    precision = tp / np.maximum(confusion.sum(axis=0), 1)
    recall = tp / np.maximum(confusion.sum(axis=1), 1)
    return {
        "accuracy": float(tp.sum() / max(len(labels), 1)),
        "errors": int(len(labels) - tp.sum()),
        "images": int(len(labels)),
        "per_class": {c: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                          "support": int(s)}
                      for c, p, r, s in zip(classes, precision, recall, confusion.sum(axis=1), strict=True)},
        "confusion_matrix": confusion.tolist(),
    }


def hardware() -> dict:
    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")]
    return {"device": "GPU" if gpus else "CPU", "gpus": gpus, "cpu_count": os.cpu_count(),
            "platform": platform.platform()}


def versions() -> dict:
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def run(args: argparse.Namespace) -> dict:
    """Scan, split, train both phases, evaluate, write model.keras and card.json; return the card."""
    started = time.time()
    cfg = _settings(args)
    out = RunDir(args.out).create()
    if out.model_path.exists() or out.checkpoint_path.exists():
        raise TrainingError(f"{out.path} already holds a run: choose a new --out")
    try:
        folder = folders.resolve_inside(cfg["data"])  # the data root or the uploads folder
        uploads.mark_used(folder)  # an uploaded set in use is the last the quota names
        scanned = folders.scan(folder, cfg["min_per_class"])
        split = folders.split(scanned, cfg["val_frac"], cfg["test_frac"], cfg["seed"], cfg["limit_per_class"])
    except folders.FolderError as exc:
        raise TrainingError(str(exc)) from None
    split_path = out.path / folders.SPLIT_FILE
    folders.save_split(split, split_path)
    if scanned.skipped:
        print(f"skipped {len(scanned.skipped)} unusable file(s):", file=sys.stderr)
        for path, reason in scanned.skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    classes, size, batch = scanned.classes, cfg["image_size"], cfg["batch_size"]
    hw = hardware()
    out.write_config(cfg | {"task": "transfer", "folder": str(folder), "classes": classes,
                            "device": hw["device"]})

    keras.utils.set_random_seed(cfg["seed"])
    make = lambda items, training=False: folders.make_dataset(  # noqa: E731
        folder, items, size, batch, training=training, seed=cfg["seed"])
    train_ds, val_ds = make(split["train"], training=True), make(split["val"])
    steps = math.ceil(len(split["train"]) / batch)
    weights = None if str(cfg["weights"]).lower() == "none" else cfg["weights"]
    model = transfer.build_model(cfg["backbone"], len(classes), size, cfg["dropout"], weights)
    if weights is None or transfer.weights_source(cfg["backbone"]) is None:
        # random weights: give batch-norm real statistics first
        sample = folders.make_dataset(folder, split["train"][::-1][:256], size, 256, cache=False)
        transfer.calibrate_batchnorm(model, next(iter(sample))[0])
    best = BestWeights(str(out.checkpoint_dir / BEST_WEIGHTS))
    out.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    transfer.set_trainable(model, 0)
    stopped, head_epochs, head_time = _fit(
        model, train_ds, val_ds, run=out, phase="head", epochs=cfg["epochs_head"], steps=steps,
        patience=cfg["patience"], best=best, lr=cfg["lr"])
    fine_epochs, fine_time = 0, 0.0
    if not stopped and cfg["epochs_fine"] > 0 and cfg["fine_tune_layers"] > 0:
        best.restore()  # fine-tune from the best head, not the last one
        transfer.set_trainable(model, cfg["fine_tune_layers"])
        stopped, fine_epochs, fine_time = _fit(
            model, train_ds, val_ds, run=out, phase="fine", epochs=cfg["epochs_fine"], steps=steps,
            patience=cfg["patience"], best=best, lr=cfg["fine_lr"])
    best.restore()

    val = evaluate(model, val_ds, _labels(split["val"]), classes)
    test = evaluate(model, make(split["test"]), _labels(split["test"]), classes)  # once, for the card
    out.append_metrics({"type": "test", "phase": "final", "val_accuracy": val["accuracy"],
                        "test_accuracy": test["accuracy"], "test_errors": test["errors"]})
    save_clean_model(model, out.model_path)
    card = make_card(cfg, model, val, test, split, split_path, name=args.name or out.name,
                     hw=hw, epochs={"head": head_epochs, "fine": fine_epochs},
                     train_time=head_time + fine_time, wall=time.time() - started,
                     best_where=best.best_where, skipped=len(scanned.skipped))
    if stopped:
        card["stopped"] = True
    atomic_write_json(out.card_path, card)
    print(f"{card['name']}: val {val['accuracy']:.2%}, test {test['accuracy']:.2%} "
          f"({test['errors']}/{test['images']} errors) in {card['training']['wall_time_s']:.0f}s",
          file=sys.stderr)
    return card


def _labels(items: list) -> np.ndarray:
    return np.array([label for _, label in items], dtype=int)


def make_card(cfg, model, val, test, split, split_path, *, name, hw, epochs, train_time, wall,
              best_where, skipped) -> dict:
    spec = transfer.BACKBONES[cfg["backbone"]]
    size = cfg["image_size"]
    return {
        "name": name,
        "task": "image",
        "model_file": "model.keras",
        "title": f"{spec.title} fine-tuned on {os.path.basename(split['folder'])} ({size}px)",
        "backbone": cfg["backbone"],
        "classes": split["classes"],
        "input_shape": [size, size, 3],
        "input_range": [0, 255],
        "input_note": "RGB photo resized to a square, raw 0-255 values (preprocessing is in the model)",
        "metrics": {
            "test_accuracy": test["accuracy"], "test_errors": test["errors"], "test_images": test["images"],
            "val_accuracy": val["accuracy"], "val_errors": val["errors"], "val_images": val["images"],
            "per_class": test["per_class"], "confusion_matrix": test["confusion_matrix"],
        },
        "params": int(model.count_params()),
        "data": {"folder": split["folder"], "split_file": split_path.name,
                 "split_sha256": sha256_file(split_path),
                 "images": {k: len(split[k]) for k in ("train", "val", "test")},
                 "skipped_files": skipped},
        "config": cfg,
        "training": {"epochs": epochs, "best": best_where, "train_time_s": round(train_time, 1),
                     "wall_time_s": round(wall, 1), "hardware": hw, "device": hw["device"]},
        "versions": versions(),
        "seed": cfg["seed"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "card_version": CARD_VERSION,
    }
