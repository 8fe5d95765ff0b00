""""Not one of my classes": fit, choose and check the unknown-input score of every shipped model.

    CNN_STUDIO_DATA=/work/shared/data python -m bench.unknown           # print the figures
    CNN_STUDIO_DATA=/work/shared/data python -m bench.unknown --write   # store them (card + sidecar)

Digits are scored as the Draw page sees them: MNIST digits redrawn like canvas drawings
(``bench.canvas_accuracy.draw_like_a_person``) and put through ``canvas_to_mnist``.
Photos are scored on the network's features. For each model:

1. Class means and a shared covariance of penultimate features, from training images only.
2. The method (max calibrated probability, or Mahalanobis kept to 16-128 directions, with
   or without the left-out directions counted at their mean variance: "ppca")
   with the best AUROC between real validation inputs and negatives made with seed 0
   (``bench.negatives``: letters, symbols, scribbles...; textures, checkerboards...).
3. The threshold: from the real validation inputs' scores, set so that with 90% confidence
   at most ``core.inference.unknown.FLAG_RATE`` of all real inputs are flagged (2% of
   digits, 5% of photos; ``unknown.threshold_for``).
4. Report, with that threshold: the share flagged of real validation and test inputs and
   of a fresh draw of negatives (seed 1), per kind, through the page's whole path
   (for digits, the dot rule comes first).
"""
from __future__ import annotations

import argparse

import numpy as np

import core
from bench import negatives
from bench.canvas_accuracy import draw_like_a_person
from bench.trust_data import flowers_split, mnist_data
from core import machine
from core.data import canvas, photo
from core.inference import unknown
from core.io import atomic_write_json
from core.models.cards import read_card

DIMS = (16, 32, 64, 128)
N_TRAIN, N_VAL, N_TEST, PER_KIND = 10000, 2000, 2000, 40


def as_drawn(digits: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    uint8 = (digits[..., 0] * 255).round().astype(np.uint8)
    return np.stack([canvas.canvas_to_mnist(draw_like_a_person(d, rng)) for d in uint8])[..., None]


def digit_inputs() -> dict:
    data = mnist_data()
    train = np.stack([canvas.canvas_to_mnist(d[..., 0]) for d in data.x_train[:N_TRAIN]])[..., None]
    sets = {"train": (train, data.y_train[:N_TRAIN]),
            "val": (as_drawn(data.x_val[:N_VAL], 0), None), "test": (as_drawn(data.x_test[:N_TEST], 1), None)}
    for name, seed in (("neg_choose", 0), ("neg_report", 1)):
        images, kinds = negatives.digit_negatives(PER_KIND, seed)
        dots = np.array([canvas.is_dot(im) for im in images])
        x = np.stack([canvas.canvas_to_mnist(im) for im in images])[..., None]
        sets[name] = (x, np.array(kinds), dots)
    return sets


def photo_inputs(entry, size: int) -> dict:
    sets = {part: flowers_split(entry, part, size) for part in ("train", "val", "test")}
    for name, seed in (("neg_choose", 0), ("neg_report", 1)):
        images, kinds = negatives.photo_negatives(PER_KIND // 2, seed)
        x = np.stack([photo.model_input(im, size) for im in images])
        sets[name] = (x, np.array(kinds), np.zeros(len(images), bool))
    return sets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="store the chosen detector per shipped model")
    parser.add_argument("--only", help="just these model names (comma-separated)")
    args = parser.parse_args(argv)
    core.import_tensorflow()
    from core.inference import digits, photos, served

    digit_sets = None
    for entry in machine.models():
        wanted = args.only.split(",") if args.only else None
        if entry.source != "shipped" or not entry.ok or (wanted and entry.name not in wanted):
            continue
        model = served.load(entry.model_path)
        if entry.task == "mnist":
            digit_sets = digit_sets or digit_inputs()
            sets = digit_sets
        else:
            sets = photo_inputs(entry, photos.input_size(model.model))

        def probs(x, model=model):
            return model.calibrate(np.concatenate([digits.probabilities(model.model, x[i:i + 64])
                                                   for i in range(0, len(x), 64)]))

        feats = {name: unknown.features(model.model, s[0], batch_size=64) for name, s in sets.items()}
        candidates = {"max_probability": (None, {n: unknown.max_probability_score(probs(s[0]))
                                                 for n, s in sets.items() if n != "train"})}
        for dims in DIMS:
            for residual in (False, True):
                if dims < feats["train"].shape[1]:
                    stats = unknown.fit_mahalanobis(feats["train"], sets["train"][1], dims, residual)
                    name = f"{'ppca' if residual else 'mahalanobis'}_{dims}"
                    candidates[name] = (stats, {n: stats.score(f) for n, f in feats.items() if n != "train"})
        not_dot = ~sets["neg_choose"][2]
        aurocs = {name: unknown.auroc(sc["val"], sc["neg_choose"][not_dot])
                  for name, (_, sc) in candidates.items()}
        best = max(aurocs, key=aurocs.get)
        stats, scores = candidates[best]
        rate = unknown.FLAG_RATE[entry.task]
        threshold = unknown.threshold_for(scores["val"], rate)
        flagged = {n: scores[n] > threshold for n in ("val", "test", "neg_report")}
        flagged["neg_report"] |= sets["neg_report"][2]  # the page calls a dot a dot before the model
        kinds = sets["neg_report"][1]
        per_kind = {k: float(flagged["neg_report"][kinds == k].mean()) for k in dict.fromkeys(kinds)}
        print(f"\n{entry.name}: AUROC on validation (real vs negatives, seed 0): "
              + ", ".join(f"{k} {v:.3f}" for k, v in aurocs.items()))
        print(f"  chosen {best}; threshold {threshold:.4g}: at most {rate:.0%} of real inputs flagged "
              f"with {unknown.FLAG_CONFIDENCE:.0%} confidence")
        print(f"  flagged: real validation {flagged['val'].mean():.1%} ({len(flagged['val'])}), "
              f"real test {flagged['test'].mean():.1%} ({len(flagged['test'])}), "
              f"negatives (seed 1) {flagged['neg_report'].mean():.1%} ({len(kinds)})")
        print("  negatives flagged per kind: " + ", ".join(f"{k} {v:.0%}" for k, v in per_kind.items()))
        if args.write:
            method = "max_probability" if stats is None else "mahalanobis"
            spec = {"method": method, "variant": best, "threshold": round(threshold, 6),
                    "fitted_on": ("class means and covariance: first 10,000 training images after canvas "
                                  "preprocessing; threshold: 2,000 validation digits redrawn like canvas "
                                  "drawings" if entry.task == "mnist" else
                                  "class means and covariance: the training split; threshold: the "
                                  "validation split"),
                    "flag_rate_target": rate, "flag_confidence": unknown.FLAG_CONFIDENCE,
                    "auroc_val": {k: round(v, 4) for k, v in aurocs.items()},
                    "flagged_val": round(float(flagged["val"].mean()), 4),
                    "flagged_test": round(float(flagged["test"].mean()), 4),
                    "flagged_negatives": round(float(flagged["neg_report"].mean()), 4),
                    "flagged_negatives_per_kind": {k: round(v, 3) for k, v in per_kind.items()},
                    "measured_by": "python -m bench.unknown"}
            if stats is not None:
                sidecar = unknown.sidecar_path(entry.model_path)
                stats.save(sidecar)
                spec |= {"dims": int(stats.projection.shape[1]), "stats_file": sidecar.name}
            card = read_card(entry.card_path)
            card["unknown"] = spec
            atomic_write_json(entry.card_path, card)


if __name__ == "__main__":
    main()
