"""Average several trained MNIST runs into one model, choosing members on validation only.

``python -m core.ensemble --out DIR RUN1 RUN2 ...`` (or ``--runs-from FOLDER``):

1. every member predicts the shared validation split (same split seed for all runs);
2. members: ``--select all`` (the default) averages every run given; ``--select greedy``
   is forward selection (Caruana et al. 2004) on validation log-loss. Greedy picking
   over-fits a 6,000-image validation set and log-loss ranks label-smoothed members
   poorly, so "all" is the safer default;
3. test-time augmentation (``--tta auto``): each member also sees the digit shifted by one
   pixel four ways and zoomed in and out by a pixel, and all the views are averaged.
   It is kept only when it lowers the validation errors;
4. the ensemble is kept only when it beats the best single member on validation
   (fewer errors, or as many errors and a lower log-loss); ``selection.json`` says
   which was chosen and which single run is the best;
5. ``--refits RUN ...``: the same recipes (architecture, epochs, batch size, learning rate,
   seed) retrained with ``--val-split 0`` on all 60,000 training images replace the chosen
   members in the saved model. Every choice above is still made on the split-trained twins'
   validation predictions (a refit has seen the validation images), and the card says so;
6. the test split is evaluated once, for the cards.

The ensemble is one functional Keras model (members inside, the views and their softmax
outputs averaged by built-in layers and ops), so it loads and predicts like any other model.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import core

keras = core.import_keras()
import numpy as np

from core import fmt
from core.data import mnist as data
from core.errors import StudioError
from core.io import atomic_write_json
from core.models.cards import read_card
from core.rundir import RunDir
from core.training.runner import TaskResult, card_for


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean())


def errors(probs: np.ndarray, labels: np.ndarray) -> int:
    return int((probs.argmax(axis=1) != labels).sum())


def greedy_select(val_probs: list[np.ndarray], labels: np.ndarray) -> list[int]:
    """Indices of members chosen by forward selection on validation log-loss."""
    losses = [log_loss(p, labels) for p in val_probs]
    chosen = [int(np.argmin(losses))]
    best = losses[chosen[0]]
    while len(chosen) < len(val_probs):
        total = sum(val_probs[i] for i in chosen)
        trials = {i: log_loss((total + val_probs[i]) / (len(chosen) + 1), labels)
                  for i in range(len(val_probs)) if i not in chosen}
        pick = min(trials, key=trials.get)
        if trials[pick] >= best:
            break
        chosen.append(pick)
        best = trials[pick]
    return chosen


def tta_views(inputs):
    """The digit as is, shifted one pixel up, down, left and right, zoomed in and out.

    Built from stock layers only (pad + crop is a shift, resize + crop/pad a zoom), so
    the saved model needs no custom code. Returns the views stacked along the batch axis.
    """
    layers = keras.layers
    h, w = data.INPUT_SHAPE[:2]
    shifts = {"up": ((0, 1), (0, 0)), "down": ((1, 0), (0, 0)),
              "left": ((0, 0), (0, 1)), "right": ((0, 0), (1, 0))}
    views = [inputs]
    for name, pad in shifts.items():
        crop = tuple(tuple(reversed(p)) for p in pad)  # cut the opposite edge
        padded = layers.ZeroPadding2D(pad, name=f"pad_{name}")(inputs)
        views.append(layers.Cropping2D(crop, name=f"shift_{name}")(padded))
    zoomed_in = layers.Resizing(h + 2, w + 2, name="zoom_in_resize")(inputs)
    views.append(layers.Cropping2D(1, name="zoom_in")(zoomed_in))
    zoomed_out = layers.Resizing(h - 2, w - 2, name="zoom_out_resize")(inputs)
    views.append(layers.ZeroPadding2D(1, name="zoom_out")(zoomed_out))
    return keras.layers.Concatenate(axis=0, name="views")(views), len(views)


def average_model(members: list[keras.Model], tta: bool = False) -> keras.Model:
    """One model whose output is the mean of the members' probabilities (over all views)."""
    inputs = keras.Input(data.INPUT_SHAPE)
    batch, n_views = tta_views(inputs) if tta else (inputs, 1)
    outputs = []
    for i, member in enumerate(members):
        member.name = f"member_{i}"  # nested models need distinct names to save
        outputs.append(member(batch))
    averaged = keras.layers.Average(name="average")(outputs) if len(outputs) > 1 else outputs[0]
    if n_views > 1:  # (views * N, 10) -> (views, N, 10) -> mean over the views
        averaged = keras.ops.mean(keras.ops.reshape(averaged, (n_views, -1, len(data.CLASSES))), axis=0)
    return keras.Model(inputs, averaged, name="mnist_ensemble")


class EnsembleError(StudioError):
    """Runs that cannot make an ensemble, said in one sentence."""


def _title(cards: list[dict], tta: bool) -> str:
    """E.g. "Ensemble of 6 CNNs (5 best, 1 fast) with test-time augmentation"."""
    archs = [c.get("arch", "?") for c in cards]
    counts = ", ".join(f"{archs.count(a)} {a}" for a in dict.fromkeys(archs))
    return f"Ensemble of {len(cards)} CNNs ({counts})" + (" with test-time augmentation" if tta else "")


REFIT_NOTE = ("validation figures are the split-trained twins' ensemble: the shipped members were refit on "
              "every training image, validation ones included")
RECIPE_KEYS = ("arch", "epochs", "batch_size", "lr", "seed", "limit")


def _recipe(card: dict) -> tuple:
    return tuple(card["config"][k] for k in RECIPE_KEYS)


def index_refits(refit_dirs: list[Path]) -> dict[tuple, tuple[Path, dict]]:
    """Refit runs (``val_split`` 0) and their cards by recipe and seed; anything else is refused."""
    refits = {}
    for d in refit_dirs:
        if not (d / "card.json").is_file():
            raise EnsembleError(f"{d} is not a finished run folder (no card.json)")
        card = read_card(d / "card.json")
        held_out = card["config"]["val_split"]
        if held_out != 0:
            raise EnsembleError(f"{d} is not a refit: it held out {fmt.pct(held_out, 0)} for validation")
        refits[_recipe(card)] = (d, card)
    return refits


def match_refits(cards: list[dict], refits: dict[tuple, tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """For each split-trained card, the refit (folder, card) of the same recipe and seed."""
    missing = [c["name"] for c in cards if _recipe(c) not in refits]
    if missing:
        raise EnsembleError(f"no refit (same arch, epochs, batch size, lr, seed) for: {', '.join(missing)}")
    return [refits[_recipe(c)] for c in cards]


def _load(run_dirs: list[Path], cards: list[dict]) -> list[keras.Model]:
    return [keras.models.load_model(d / c["model_file"], compile=False)
            for d, c in zip(run_dirs, cards, strict=True)]


def _choose(models: list, ds, select: str, tta: str) -> dict:
    """Every choice, on validation only: members, test-time augmentation, ensemble vs best single run."""
    val_probs = [m.predict(ds.x_val, batch_size=1000, verbose=0) for m in models]
    val_errors = [errors(p, ds.y_val) for p in val_probs]
    val_losses = [log_loss(p, ds.y_val) for p in val_probs]
    # Best single run: fewest validation errors, ties broken by log-loss.
    single = min(range(len(models)), key=lambda i: (val_errors[i], val_losses[i]))
    chosen = list(range(len(models))) if select == "all" else greedy_select(val_probs, ds.y_val)
    ens_val = sum(val_probs[i] for i in chosen) / len(chosen)
    plain_errors = errors(ens_val, ds.y_val)
    tta_errors, use_tta = None, False
    if tta != "off":
        tta_val = average_model([models[i] for i in chosen], tta=True).predict(
            ds.x_val, batch_size=500, verbose=0)
        tta_errors = errors(tta_val, ds.y_val)
        use_tta = tta == "on" or tta_errors < plain_errors
        ens_val = tta_val if use_tta else ens_val
    ens_errors, ens_loss = errors(ens_val, ds.y_val), log_loss(ens_val, ds.y_val)
    keep = (len(chosen) > 1 or use_tta) and (ens_errors, ens_loss) < (val_errors[single], val_losses[single])
    return {"chosen": chosen, "single": single, "val_errors": val_errors, "val_losses": val_losses,
            "plain_errors": plain_errors, "tta_errors": tta_errors, "use_tta": use_tta,
            "ens_errors": ens_errors, "ens_loss": ens_loss, "keep": keep}


def build(run_dirs: list[Path], out: Path, name: str | None = None, select: str = "all",
          tta: str = "auto", refit_dirs: list[Path] | None = None) -> dict:
    """Select, build, evaluate and save the ensemble; return the selection summary.

    ``select``: "all" or "greedy"; ``tta``: "auto" (kept when it lowers validation errors),
    "on" or "off"; ``refit_dirs``: full-data retrains that replace the chosen members.
    """
    if len(run_dirs) < 2:
        raise EnsembleError("an ensemble needs at least two finished runs")
    if select not in ("all", "greedy") or tta not in ("auto", "on", "off"):
        raise EnsembleError(f"unknown --select {select!r} or --tta {tta!r}")
    started = time.time()
    refits = index_refits(refit_dirs) if refit_dirs else None  # checked before any slow work
    cards = [read_card(d / "card.json") for d in run_dirs]
    split = {(c["config"]["val_split"], c["config"]["limit"]) for c in cards}
    if len(split) != 1:
        raise EnsembleError(f"members were trained on different splits {split}: cannot compare on validation")
    val_split, limit = split.pop()
    ds = data.load(val_split, limit)
    models = _load(run_dirs, cards)
    c = _choose(models, ds, select, tta)
    chosen = c["chosen"]

    if refits:
        pairs = match_refits([cards[i] for i in chosen], refits)
        shipped, shipped_cards = [d for d, _ in pairs], [card for _, card in pairs]
        shipped_models = _load(shipped, shipped_cards)
    else:
        shipped, shipped_cards = [run_dirs[i] for i in chosen], [cards[i] for i in chosen]
        shipped_models = [models[i] for i in chosen]

    run = RunDir(out).create()
    model = average_model(shipped_models, tta=c["use_tta"])
    test_probs = model.predict(ds.x_test, batch_size=1000, verbose=0)  # once, for the card
    tmp = run.path / f".model.{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, run.model_path)

    n_val, n_test = len(ds.y_val), len(ds.y_test)
    test_err = errors(test_probs, ds.y_test)
    candidates = [{"run": run_dirs[i].name, "seed": cards[i].get("seed"), "val_errors": c["val_errors"][i],
                   "val_log_loss": round(c["val_losses"][i], 5),
                   "test_accuracy": cards[i]["metrics"]["test_accuracy"]} for i in range(len(models))]
    config = {"arch": "ensemble", "members": [d.name for d in shipped], "candidates": candidates,
              "tta": c["use_tta"],
              "selection": ("every candidate" if select == "all"
                            else "greedy forward selection on validation log-loss"),
              "val_errors_plain": c["plain_errors"], "val_errors_tta": c["tta_errors"],
              "val_split": val_split, "limit": limit}
    if refits:
        config["validated_as"] = [run_dirs[i].name for i in chosen]
    result = TaskResult(
        model=model, stopped=False,
        val={"accuracy": 1 - c["ens_errors"] / n_val, "errors": c["ens_errors"], "images": n_val},
        test={"accuracy": 1 - test_err / n_test, "errors": test_err, "images": n_test},
        metrics={"val_log_loss": round(c["ens_loss"], 5)} | ({"val_note": REFIT_NOTE} if refits else {}),
        card={"title": _title(shipped_cards, c["use_tta"]) + ", refit on all training images" * bool(refits),
              "arch": "ensemble", "input_shape": list(data.INPUT_SHAPE), "input_range": [0.0, 1.0],
              "input_note": "grayscale 28x28, white digit on black, float32 scaled to [0, 1]",
              "classes": data.CLASSES,
              "data": ds.source | {"train_images": shipped_cards[0]["data"]["train_images"],
                                   "val_images": n_val, "test_images": n_test,
                                   "split_seed": data.SPLIT_SEED}},
        training={"epochs": max(s["training"]["epochs"] for s in shipped_cards),
                  "wall_time_s": round(sum(s["training"]["wall_time_s"] for s in shipped_cards), 2),
                  "wall_time_note": "sum of the chosen members' training times"})
    seeds = [s.get("seed") for s in shipped_cards]
    card = card_for(run, config, seeds, result, "mnist", name or run.name)
    atomic_write_json(run.card_path, card)
    run.write_config(card["config"])
    single = c["single"]
    selection = {"ensemble_kept": bool(c["keep"]), "best_single": str(run_dirs[single]),
                 "best_single_val_errors": c["val_errors"][single], "ensemble_val_errors": c["ens_errors"],
                 "tta": c["use_tta"], "val_errors_plain": c["plain_errors"],
                 "val_errors_tta": c["tta_errors"],
                 "members": config["members"], "validated_as": config.get("validated_as"),
                 "seconds": round(time.time() - started, 1)}
    atomic_write_json(run.path / "selection.json", selection)
    return selection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="finished MNIST run folders")
    parser.add_argument("--runs-from", type=Path, help="use every finished run (card.json) in this folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--select", choices=["all", "greedy"], default="all",
                        help="average every run (default) or pick greedily on validation log-loss")
    parser.add_argument("--tta", choices=["auto", "on", "off"], default="auto",
                        help="test-time augmentation; auto keeps it when it lowers validation errors")
    parser.add_argument("--refits", nargs="+", type=Path, default=None,
                        help="runs trained with --val-split 0 that replace the chosen members (same recipes)")
    args = parser.parse_args(argv)
    runs = list(args.runs)
    if args.runs_from:
        runs += sorted(p.parent for p in args.runs_from.glob("*/card.json")
                       if p.parent.resolve() != args.out.resolve())
    selection = build(runs, args.out, args.name, args.select, args.tta, args.refits)
    for key, value in selection.items():
        print(f"{key}: {value}")
    return 0

