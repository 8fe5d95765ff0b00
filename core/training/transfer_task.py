"""The ``transfer`` task: fine-tune an ImageNet backbone on a folder of class subfolders.

``python -m core.train transfer --data flowers --backbone mobilenet_v2_0.5 --out runs/f1``

Two phases: the head alone on the frozen backbone, then the top ``--fine-tune-layers``
backbone layers too at a lower learning rate (batch-norm stays in inference mode).
Each phase stops early on validation loss; the weights kept at the end are the best
on validation (accuracy, then loss) over both phases. The split is saved as
``split.json`` in the run folder; the test split is evaluated once, for the card.
"""
from __future__ import annotations

import math
import os
import sys
import time

import core

keras = core.import_keras()
import numpy as np

from core.data import folders, uploads
from core.io import sha256_file
from core.models import transfer
from core.rundir import RunDir
from core.training import TrainingError
from core.training.monitor import TrainingMonitor
from core.training.runner import TaskResult
from core.training.settings import TransferSettings

BEST_WEIGHTS = "best.weights.h5"


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


def train(cfg: TransferSettings, run: RunDir, resume: bool = False) -> TaskResult:
    """Scan, split, train both phases, and score validation and test once."""
    if resume:
        raise TrainingError("transfer runs cannot be resumed: start a new run")
    started = time.time()
    if run.model_path.exists() or run.checkpoint_path.exists():
        raise TrainingError(f"{run.path} already holds a run: choose a new --out")
    try:
        folder = folders.resolve_inside(cfg.data)  # the data root or the uploads folder
        uploads.mark_used(folder)  # an uploaded set in use is the last the quota names
        scanned = folders.scan(folder, cfg.min_per_class)
        split = folders.split(scanned, cfg.val_frac, cfg.test_frac, cfg.seed, cfg.limit_per_class)
    except folders.FolderError as exc:
        raise TrainingError(str(exc)) from None
    split_path = run.path / folders.SPLIT_FILE
    folders.save_split(split, split_path)
    if scanned.skipped:
        print(f"skipped {len(scanned.skipped)} unusable file(s):", file=sys.stderr)
        for path, reason in scanned.skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    problems = cfg.problems(len(split["train"]))
    if problems:
        raise TrainingError("; ".join(problems))
    classes, size, batch = scanned.classes, cfg.image_size, cfg.batch_size
    run.write_config({"task": "transfer", **cfg.as_dict(), "folder": str(folder), "classes": classes})

    make = lambda items, training=False: folders.make_dataset(  # noqa: E731
        folder, items, size, batch, training=training, seed=cfg.seed)
    train_ds, val_ds = make(split["train"], training=True), make(split["val"])
    steps = math.ceil(len(split["train"]) / batch)
    weights = None if str(cfg.weights).lower() == "none" else cfg.weights
    model = transfer.build_model(cfg.backbone, len(classes), size, cfg.dropout, weights)
    if weights is None or transfer.weights_source(cfg.backbone) is None:
        # random weights: give batch-norm real statistics first
        sample = folders.make_dataset(folder, split["train"][::-1][:256], size, 256, cache=False)
        transfer.calibrate_batchnorm(model, next(iter(sample))[0])
    best = BestWeights(str(run.checkpoint_dir / BEST_WEIGHTS))
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    transfer.set_trainable(model, 0)
    stopped, head_epochs, head_time = _fit(
        model, train_ds, val_ds, run=run, phase="head", epochs=cfg.epochs_head, steps=steps,
        patience=cfg.patience, best=best, lr=cfg.lr)
    fine_epochs, fine_time = 0, 0.0
    if not stopped and cfg.epochs_fine > 0 and cfg.fine_tune_layers > 0:
        best.restore()  # fine-tune from the best head, not the last one
        transfer.set_trainable(model, cfg.fine_tune_layers)
        stopped, fine_epochs, fine_time = _fit(
            model, train_ds, val_ds, run=run, phase="fine", epochs=cfg.epochs_fine, steps=steps,
            patience=cfg.patience, best=best, lr=cfg.fine_lr)
    best.restore()

    val = evaluate(model, val_ds, _labels(split["val"]), classes)
    test_ds = make(split["test"])
    test = evaluate(model, test_ds, _labels(split["test"]), classes)  # once, for the card
    spec = transfer.BACKBONES[cfg.backbone]
    return TaskResult(
        model=model, val=val, test=test, stopped=stopped, card_task="image", settings=cfg,
        card={
            "title": f"{spec.title} fine-tuned on {os.path.basename(split['folder'])} ({size}px)",
            "backbone": cfg.backbone,
            "classes": split["classes"],
            "input_shape": [size, size, 3],
            "input_range": [0, 255],
            "input_note": "RGB photo resized to a square, raw 0-255 values (preprocessing is in the model)",
            "data": {"folder": split["folder"], "split_file": split_path.name,
                     "split_sha256": sha256_file(split_path),
                     "images": {k: len(split[k]) for k in ("train", "val", "test")},
                     "skipped_files": len(scanned.skipped)},
        },
        metrics={"per_class": test["per_class"], "confusion_matrix": test["confusion_matrix"]},
        training={"epochs": {"head": head_epochs, "fine": fine_epochs}, "best": best.best_where,
                  "train_time_s": round(head_time + fine_time, 1),
                  "wall_time_s": round(time.time() - started, 1)},
        config={"folder": str(folder), "classes": classes},
        trust_data={name: (ds.images, ds.labels) for name, ds in
                    (("train", train_ds), ("val", val_ds), ("test", test_ds))},
    )


def _labels(items: list) -> np.ndarray:
    return np.array([label for _, label in items], dtype=int)
