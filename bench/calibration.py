"""Temperature scaling for every shipped model: fit on validation, check on test.

    CNN_STUDIO_DATA=/work/shared/data python -m bench.calibration           # print the figures
    CNN_STUDIO_DATA=/work/shared/data python -m bench.calibration --write   # and store T in the cards

For each model: the temperature T fitted on its validation split (negative
log-likelihood, ``core.inference.calibration.fit_temperature``), and on the test split
the expected calibration error (15 bins), the log-loss and the mean top probability of a
correct answer, before and after. The refit ensemble saw its validation images in
training; it is still fitted on them (the only held-out data the project has apart from
test, which we never tune on), and the card says so.
"""
from __future__ import annotations

import argparse

import numpy as np

import core
from bench.trust_data import flowers_split, mnist_data
from core import machine
from core.inference import calibration as cal
from core.io import atomic_write_json
from core.models.cards import read_card

REFIT_NOTE = ("validation split of core.data.mnist (6,000 images), which this refit ensemble also "
              "trained on: the only held-out data besides the test set, never used for tuning. "
              "Fitting on seen images makes T, if anything, too small (over-confident).")


def probabilities(entry, part: str) -> tuple[np.ndarray, np.ndarray]:
    from core.inference import digits, photos, served

    model = served.load(entry.model_path).model
    if entry.task == "mnist":
        data = mnist_data()
        x, y = (data.x_val, data.y_val) if part == "val" else (data.x_test, data.y_test)
        return digits.probabilities(model, x), y
    x, y = flowers_split(entry, part, photos.input_size(model))
    return np.concatenate([photos.probabilities(model, x[i:i + 64]) for i in range(0, len(x), 64)]), y


def nll(probs, labels) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="store each fitted T in the model's card")
    parser.add_argument("--only", help="just this model name")
    args = parser.parse_args(argv)
    core.import_tensorflow()
    print(f"{'model':<22} {'T':>6}  {'ECE before':>10} {'ECE after':>10}  {'NLL before':>10} "
          f"{'NLL after':>10}  {'acc':>7}")
    for entry in machine.models():
        if entry.source != "shipped" or not entry.ok or (args.only and entry.name != args.only):
            continue
        p_val, y_val = probabilities(entry, "val")
        p_test, y_test = probabilities(entry, "test")
        t = cal.fit_temperature(cal.logits_of(p_val), y_val)
        after = cal.apply_temperature(p_test, t)
        before_ece, after_ece = cal.ece(p_test, y_test), cal.ece(after, y_test)
        print(f"{entry.name:<22} {t:6.3f}  {before_ece:10.4f} {after_ece:10.4f}  {nll(p_test, y_test):10.4f} "
              f"{nll(after, y_test):10.4f}  {(p_test.argmax(1) == y_test).mean():7.2%}")
        if args.write:
            card = read_card(entry.card_path)
            refit = entry.task == "mnist" and card.get("data", {}).get("train_images") == 60000
            fitted_on = REFIT_NOTE if refit else (
                f"validation split ({len(y_val)} images), held out of training")
            card["calibration"] = {
                "method": "temperature", "temperature": round(t, 4), "fitted_on": fitted_on,
                "ece_bins": cal.ECE_BINS, "ece_test_before": round(before_ece, 5),
                "ece_test_after": round(after_ece, 5), "nll_test_before": round(nll(p_test, y_test), 5),
                "nll_test_after": round(nll(after, y_test), 5), "measured_by": "python -m bench.calibration"}
            atomic_write_json(entry.card_path, card)


if __name__ == "__main__":
    main()
