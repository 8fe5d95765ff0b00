"""The ``mnist`` task: train one named architecture from scratch on MNIST.

``python -m core.train mnist --arch best --epochs 30 --out runs/best1`` or, from Python,
``core.training.runner.train("mnist", "runs/fast1", arch="fast")``. The runner owns the run
folder, device, seeding, the clean save and the card; this module supplies the data, the
model and its fit, with a checkpoint every epoch (``--resume`` continues from the last one).

Works on any Keras backend: TensorFlow is imported only when it is the backend.
The test split is evaluated once, after training, for the card; nothing is chosen on it.
"""
from __future__ import annotations

import math
import sys

import core

keras = core.import_keras()
import numpy as np

from core.data import mnist as data
from core.models import mnist as models
from core.rundir import RunDir
from core.training import TrainingError
from core.training.monitor import TrainingMonitor
from core.training.runner import TaskResult
from core.training.settings import MnistSettings


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[labels]


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


def _prepare(run: RunDir, cfg: MnistSettings, resume: bool) -> tuple[MnistSettings, int]:
    """The settings to train with and the epoch to start from (resume or fresh)."""
    state = run.checkpoint_state()
    if resume:
        saved = run.read_config()
        if state is None or not saved:
            raise TrainingError(f"nothing to resume in {run.path}: no checkpoint (checkpoints/last.keras)")
        # Resuming may extend a run (a new --epochs); everything else stays as it was.
        kept = MnistSettings.from_options(saved)
        epochs = cfg.epochs if cfg.epochs is not None else kept.epochs
        cfg = kept.with_changes(epochs=epochs, device=cfg.device, mixed_precision=cfg.mixed_precision,
                                xla=cfg.xla)
        problems = cfg.problems()
        if problems:
            raise TrainingError("; ".join(problems))
        return cfg.resolved(), int(state.get("epoch", 0))
    if state is not None or run.model_path.exists():
        raise TrainingError(f"{run.path} already holds a run: pass --resume or choose a new --out")
    return cfg.resolved(), 0


def train(cfg: MnistSettings, run: RunDir, resume: bool = False) -> TaskResult:
    """Load the data, build (or resume) the model, fit it, and score validation and test once."""
    cfg, start_epoch = _prepare(run, cfg, resume)
    try:
        ds = data.load(cfg.val_split, cfg.limit)
    except data.MnistDataError as exc:
        raise TrainingError(str(exc)) from None
    n_train = len(ds.x_train)
    problems = cfg.problems(n_train)
    if problems:
        raise TrainingError("; ".join(problems))
    steps = math.ceil(n_train / cfg.batch_size)
    rec = cfg.recipe()
    run.write_config({"task": "mnist", **cfg.as_dict(), "recipe": rec.as_dict(),
                      "backend": keras.backend.backend()})

    if start_epoch:
        keras.utils.set_random_seed(cfg.seed + start_epoch)  # a resumed run reshuffles differently
        model = keras.models.load_model(run.checkpoint_path)
        print(f"resuming {cfg.arch} from epoch {start_epoch}/{cfg.epochs}", file=sys.stderr)
    else:
        model = models.compile_model(models.build(cfg.arch), rec, cfg.lr, steps * cfg.epochs,
                                     jit_compile=_jit_compile())
    monitor = TrainingMonitor(run, epochs=cfg.epochs, steps=steps,
                              extra_state={"arch": cfg.arch, "seed": cfg.seed})
    if start_epoch < cfg.epochs:
        model.fit(ds.x_train, _one_hot(ds.y_train), batch_size=cfg.batch_size, epochs=cfg.epochs,
                  initial_epoch=start_epoch,
                  validation_data=(ds.x_val, _one_hot(ds.y_val)) if len(ds.y_val) else None,
                  callbacks=[monitor], verbose=0, shuffle=True)

    state = run.checkpoint_state() or {}
    val = evaluate(model, ds.x_val, ds.y_val)
    test = evaluate(model, ds.x_test, ds.y_test)  # once, for the card only
    return TaskResult(
        model=model, val=val, test=test, stopped=monitor.stopped, settings=cfg,
        card={
            "title": f"{rec.title} ({cfg.arch})",
            "arch": cfg.arch,
            "input_shape": list(data.INPUT_SHAPE),
            "input_range": [0.0, 1.0],
            "input_note": "grayscale 28x28, white digit on black, float32 scaled to [0, 1]",
            "classes": data.CLASSES,
            "data": ds.source | {"train_images": n_train, "val_images": val["images"],
                                 "test_images": test["images"], "split_seed": data.SPLIT_SEED},
        },
        config={"recipe": rec.as_dict()},
        training={"epochs": int(state.get("epoch", 0)), "epochs_planned": cfg.epochs,
                  "wall_time_s": round(_train_time(run), 2)},
        trust_data={"train": (ds.x_train, ds.y_train), "val": (ds.x_val, ds.y_val),
                    "test": (ds.x_test, ds.y_test)},
    )
