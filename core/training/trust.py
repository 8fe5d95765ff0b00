"""Honest answers from every trained run: a temperature and an unknown-input check, fitted as it ends.

The shipped models got theirs from ``bench.calibration`` and ``bench.unknown``; a run made on the
Train page or with ``python -m core.train`` gets the same two card fields here, so the Draw and
Classify pages and the command-line predictors treat it alike (see core.inference.served):

- ``calibration``: the temperature that minimises the validation split's negative log-likelihood,
  with the expected calibration error (15 bins) on the test split before and after;
- ``unknown``: Mahalanobis distance on the penultimate features (class means and a shared
  covariance from training images, kept to 64 principal directions with the rest counted at
  their mean variance: PPCA), its threshold set on the validation split so that, with 90%
  confidence, at most ``unknown.FLAG_RATE`` of real inputs are flagged. Runs have no home-made
  negatives to choose a score with, so they use the one that separated best on validation for
  the shipped models.

A run that held nothing out for validation (a refit) gets neither: nothing honest to fit on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.inference import calibration, unknown

TRAIN_SAMPLE = 10_000  # training images for the class means (the shipped digit models used as many)


def fit(model, task: str, model_path: str | Path, train: tuple, val: tuple, test: tuple,
        batch_size: int = 256) -> dict:
    """Card fields ``calibration`` and ``unknown`` for ``model`` ({} when nothing was held out).

    ``train``, ``val`` and ``test`` are (inputs, labels) arrays as the model takes them;
    ``task`` is the card's task ("mnist" or "image").
    """
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = train, val, test
    if len(y_val) < 2:
        return {}
    p_val = model.predict(x_val, batch_size=batch_size, verbose=0)
    p_te = model.predict(x_te, batch_size=batch_size, verbose=0)
    t = calibration.fit_temperature(calibration.logits_of(p_val), y_val)
    fields = {"calibration": {
        "method": "temperature", "temperature": round(t, 4),
        "fitted_on": f"validation split ({len(y_val):,} images), held out of training",
        "ece_bins": calibration.ECE_BINS,
        "ece_test_before": round(calibration.ece(p_te, y_te), 5),
        "ece_test_after": round(calibration.ece(calibration.apply_temperature(p_te, t), y_te), 5),
        "measured_by": "core.training.trust at the end of training",
    }}
    keep = np.random.default_rng(0).permutation(len(y_tr))[:TRAIN_SAMPLE]
    stats = unknown.fit_mahalanobis(unknown.features(model, x_tr[keep]), np.asarray(y_tr)[keep],
                                    dims=64, residual=True)
    rate = unknown.FLAG_RATE[task]
    val_scores = stats.score(unknown.features(model, x_val))
    threshold = unknown.threshold_for(val_scores, rate)
    sidecar = unknown.sidecar_path(model_path)
    stats.save(sidecar)
    test_scores = stats.score(unknown.features(model, x_te))
    fields["unknown"] = {
        "method": "mahalanobis", "dims": 64, "residual": True,
        "threshold": round(float(threshold), 6), "stats_file": sidecar.name,
        "fitted_on": f"class means and covariance: {len(keep):,} training images; threshold: "
                     f"{len(y_val):,} validation images",
        "flag_rate_target": rate, "flag_confidence": unknown.FLAG_CONFIDENCE,
        "flagged_val": round(float((val_scores > threshold).mean()), 4),
        "flagged_test": round(float((test_scores > threshold).mean()), 4),
        "measured_by": "core.training.trust at the end of training",
    }
    return fields
