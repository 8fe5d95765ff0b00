""""Not one of my classes": a score for inputs unlike anything the model was trained on.

A softmax always picks a class, even for a zigzag or a checkerboard. Two scores are
offered; the one each shipped model uses was picked on validation data (``bench.unknown``):

- ``mahalanobis``: the distance of the network's penultimate features (the input of its
  last Dense layer; every member's, side by side, for an ensemble) to the nearest class
  mean, with one covariance shared by all classes (Lee et al., 2018). Features are first
  projected on their top principal directions and whitened, which keeps the stored
  statistics small (``NAME.unknown.npz`` beside the model).
- ``max_probability``: one minus the calibrated top probability (Hendrycks & Gimpel, 2017).

Higher scores are less familiar; above the card's threshold the input is "unknown". The
threshold is a quantile of the scores of real validation inputs, set so that, with 90%
confidence, at most ``FLAG_RATE`` of all real inputs are flagged: on a few hundred
validation photos the plain 95% quantile flags 5% of them but, by chance, 7% of the next
few hundred.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import core

METHODS = ("mahalanobis", "max_probability")
# Largest share of real inputs we accept to call unknown, per task, and how sure we want to
# be of it when the threshold comes from a validation sample.
FLAG_RATE = {"mnist": 0.02, "image": 0.05}
FLAG_CONFIDENCE = 0.9

_features: dict[int, tuple[object, object]] = {}


def heads(model) -> list:
    """The models whose last layer is the classifying Dense: the model, or each ensemble member."""
    import keras

    if isinstance(model.layers[-1], keras.layers.Dense):
        return [model]
    found = [layer for layer in model.layers
             if isinstance(layer, keras.Model) and isinstance(layer.layers[-1], keras.layers.Dense)]
    if not found:
        raise ValueError(f"{model.name} has no final Dense layer to take features from")
    return found


def feature_function(model):
    """A traced function: a batch of model inputs -> (N, D) penultimate features (cached per model)."""
    cached = _features.get(id(model))
    if cached is None or cached[0] is not model:
        keras = core.import_keras()
        parts = [keras.Model(h.inputs, h.layers[-1].input) for h in heads(model)]
        if keras.backend.backend() == "tensorflow":
            tf = core.import_tensorflow()

            @tf.function(reduce_retracing=True)
            def run(x):
                outs = [p(x, training=False) for p in parts]
                return outs[0] if len(outs) == 1 else tf.concat(outs, axis=-1)
        else:  # Keras on JAX (or torch): its own compiled predict step, no TensorFlow needed
            def run(x):
                outs = [p.predict_on_batch(x) for p in parts]
                return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)

        cached = (model, run)
        _features[id(model)] = cached
    return cached[1]


def features(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Penultimate features (N, D) float32 for a batch of model inputs."""
    fn = feature_function(model)
    x = np.asarray(x, np.float32)
    return np.concatenate([np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


@dataclass
class Mahalanobis:
    """Whitened class means: score = squared distance to the nearest one.

    With ``noise`` > 0 the directions left out count too, each with that variance
    (a probabilistic-PCA covariance): the distance off the training features' subspace
    is often what gives an odd input away.
    """

    centre: np.ndarray  # (D,) mean of all training features
    projection: np.ndarray  # (D, r): principal directions divided by their spread
    means: np.ndarray  # (classes, r) class means in the whitened space
    scales: np.ndarray | None = None  # (r,) the spread of each kept direction
    noise: float = 0.0  # mean variance of the directions left out (0: ignore them)

    def score(self, feats: np.ndarray) -> np.ndarray:
        d = np.asarray(feats, np.float32) - self.centre
        z = d @ self.projection
        dist = ((z[:, None, :] - self.means[None]) ** 2).sum(axis=-1).min(axis=1)
        if self.noise > 0 and self.scales is not None:
            basis = self.projection * self.scales  # orthonormal directions
            residual = d - (d @ basis) @ basis.T
            dist = dist + (residual ** 2).sum(axis=1) / self.noise
        return dist

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        scales = self.scales if self.scales is not None else np.ones(self.projection.shape[1], np.float32)
        np.savez_compressed(tmp, centre=self.centre, projection=self.projection, means=self.means,
                            scales=scales, noise=np.float32(self.noise))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Mahalanobis:
        with np.load(path) as data:
            noise = float(data["noise"]) if "noise" in data else 0.0
            scales = data["scales"] if "scales" in data else None
            return cls(data["centre"], data["projection"], data["means"], scales, noise)


def fit_mahalanobis(feats: np.ndarray, labels: np.ndarray, dims: int = 64,
                    residual: bool = False) -> Mahalanobis:
    """Class means and a shared covariance from training features, kept to ``dims`` directions
    (``residual``: the rest counted with their mean variance, see ``Mahalanobis``)."""
    feats = np.asarray(feats, np.float64)
    labels = np.asarray(labels).ravel()
    centre = feats.mean(axis=0)
    classes = np.unique(labels)
    means = np.stack([feats[labels == c].mean(axis=0) for c in classes])
    within = feats - means[np.searchsorted(classes, labels)]
    cov = within.T @ within / max(1, len(feats) - len(classes))
    values, vectors = np.linalg.eigh(cov)
    keep = np.argsort(values)[::-1][:min(dims, len(values))]
    floor = values[keep].max() * 1e-6  # a direction with no spread would divide by zero
    scales = np.sqrt(np.maximum(values[keep], floor))
    projection = vectors[:, keep] / scales
    rest = np.setdiff1d(np.arange(len(values)), keep)
    noise = float(np.maximum(values[rest], floor).mean()) if residual and len(rest) else 0.0
    return Mahalanobis(centre.astype(np.float32), projection.astype(np.float32),
                       ((means - centre) @ projection).astype(np.float32), scales.astype(np.float32), noise)


def max_probability_score(probs: np.ndarray) -> np.ndarray:
    return 1.0 - np.asarray(probs, np.float64).max(axis=1)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Chance that an ``unknown`` input scores higher than a ``known`` one (ties count half)."""
    ks = np.sort(np.asarray(known, np.float64))
    u = np.asarray(unknown, np.float64)
    below = np.searchsorted(ks, u, "left")
    equal = np.searchsorted(ks, u, "right") - below
    return float((below + 0.5 * equal).sum() / (len(ks) * len(u)))


def allowed_flags(n: int, flag_rate: float, confidence: float = FLAG_CONFIDENCE) -> int:
    """How many of ``n`` real validation inputs may lie above the threshold: the most for which
    a true flag rate above ``flag_rate`` would have shown so few with chance ``1 - confidence``
    at most (a one-sided binomial bound: the largest k with P(Binomial(n, flag_rate) <= k)
    below that chance, its terms summed in log space)."""
    log_p, log_q, limit = math.log(flag_rate), math.log1p(-flag_rate), math.log(1 - confidence)
    log_cdf = -math.inf
    for k in range(n):
        log_cdf = np.logaddexp(log_cdf, math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                               + k * log_p + (n - k) * log_q)
        if log_cdf > limit:
            return max(k - 1, 0)
    return n - 1


def threshold_for(known_scores: np.ndarray, flag_rate: float, confidence: float = FLAG_CONFIDENCE) -> float:
    """The score above which, with ``confidence``, at most ``flag_rate`` of all real inputs lie,
    from a sample of their scores (the validation split)."""
    scores = np.sort(np.asarray(known_scores, np.float64))
    return float(scores[len(scores) - 1 - allowed_flags(len(scores), flag_rate, confidence)])


@dataclass
class Detector:
    """A model's fitted unknown-input check, as its card and sidecar describe it."""

    method: str
    threshold: float
    stats: Mahalanobis | None = None

    def scores(self, model, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        if self.method == "mahalanobis":
            return self.stats.score(features(model, x))
        return max_probability_score(probs)

    def known(self, model, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """True for each input that looks like the model's training data."""
        return self.scores(model, x, probs) <= self.threshold


def sidecar_path(model_path: str | Path) -> Path:
    """Where a model's Mahalanobis statistics live: NAME.unknown.npz beside NAME.keras."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".unknown.npz")


def detector(card: dict | None, model_path: str | Path) -> Detector | None:
    """The detector the card describes, or None when the model has none (or its file is gone)."""
    spec = (card or {}).get("unknown") or {}
    method, threshold = spec.get("method"), spec.get("threshold")
    if method not in METHODS or not isinstance(threshold, (int, float)):
        return None
    if method == "max_probability":
        return Detector(method, float(threshold))
    stats_file = Path(model_path).parent / spec.get("stats_file", sidecar_path(model_path).name)
    try:
        return Detector(method, float(threshold), Mahalanobis.load(stats_file))
    except (OSError, KeyError, ValueError):
        return None
