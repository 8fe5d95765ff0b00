"""Honest probabilities: temperature scaling (Guo et al., 2017) and its check, ECE.

A network trained with label smoothing never says more than about 90%, and one trained
without it can say 100% too often. Dividing its logits by one number T, fitted on
held-out data by minimising the negative log-likelihood, fixes the scale without
changing any prediction. The models here end in a softmax (an ensemble averages its
members' softmaxes), so the log of a probability stands in for its logit: for one
softmax they differ by a constant per image, which the softmax ignores.

``calibrate`` is the one place probabilities are scaled before a page or a command
line shows them; the temperature lives in the model's card (``card["calibration"]``).
"""
from __future__ import annotations

import numpy as np

ECE_BINS = 15
_T_RANGE = (0.05, 20.0)  # temperatures searched; far beyond any sensible fit


def logits_of(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities, usable as logits (softmax(log p) = p)."""
    return np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities rescaled by ``temperature`` (T > 1 softens, T < 1 sharpens), float32."""
    return softmax(logits_of(probs) / float(temperature)).astype(np.float32)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    ``logits`` (N, classes) may be real logits or log-probabilities (``logits_of``).
    A golden-section search on log T: the NLL is smooth and unimodal in T.
    The training runner can call this at the end of a run on its validation split.
    """
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64).ravel()
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need (N, classes) logits and N labels, got {logits.shape} and {labels.shape}")
    lo, hi = np.log(_T_RANGE[0]), np.log(_T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, labels, np.exp(a)), _nll(logits, labels, np.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over
    ``bins`` equal-width confidence bins weighted by how many predictions fall in each."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels).ravel()
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(total)


def temperature(card: dict | None) -> float:
    """The card's fitted temperature, or 1 (no change) for a model without one."""
    value = ((card or {}).get("calibration") or {}).get("temperature")
    return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def calibrate(probs: np.ndarray, card: dict | None) -> np.ndarray:
    """The probabilities a person is shown: the model's, scaled by its card's temperature."""
    t = temperature(card)
    return np.asarray(probs, np.float32) if t == 1.0 else apply_temperature(probs, t)
