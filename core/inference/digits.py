"""Load a saved classifier once and ask it what it sees.

``probabilities`` runs a batch through a compiled function (``model.predict``
costs tens of milliseconds of setup per call, too slow for a live canvas);
``explain`` adds, for one image, the activations of each conv layer and a
saliency map: the gradient of the top class with respect to the input pixels.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import core
from core.errors import StudioError
from core.inference import unsure


class ModelLoadError(StudioError):
    """A model file that is missing or cannot be read as a Keras model."""


_cache: dict[tuple[str, int, int], object] = {}
_lock = threading.Lock()


def load_model(path: str | Path):
    """The Keras model at ``path``, loaded once and cached by path, mtime and size.

    A file replaced on disk (a retrained model) is loaded afresh.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise ModelLoadError(f"model file not found: {path}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key not in _cache:
            core.import_tensorflow()
            import keras

            from core.models import augment  # noqa: F401 - registers RandomAffine for models that hold it

            try:
                model = keras.saving.load_model(path, compile=False)
            except Exception as exc:  # Keras raises many types for a bad file
                raise ModelLoadError(f"cannot read {path.name} as a Keras model: {exc}") from None
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]
            _cache[key] = model
        return _cache[key]


_compiled: dict[int, object] = {}


def forward(model):
    """A compiled ``model(x, training=False)``, one per model, reused across calls: a
    ``tf.function`` on TensorFlow, ``jax.jit`` on JAX (the app may run Keras on either)."""
    fn = _compiled.get(id(model))
    if fn is None or fn[0] is not model:
        backend = core.import_keras().backend.backend()
        if backend == "tensorflow":
            tf = core.import_tensorflow()
            fn = (model, tf.function(lambda x: model(x, training=False), reduce_retracing=True))
        elif backend == "jax":
            import jax

            fn = (model, jax.jit(lambda x: model(x, training=False)))
        else:
            fn = (model, model.predict_on_batch)
        _compiled[id(model)] = fn
    return fn[1]


def as_batch(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28), (28, 28) or (N, 28, 28, 1) to float32 (N, 28, 28, 1)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[..., None]
    return x


def probabilities(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities, shape (N, classes), for a batch of 28x28 images in [0, 1]."""
    x = as_batch(images)
    fn = forward(model)
    parts = [np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts)


def conv_layers(model) -> tuple[object, list]:
    """The (sub)model holding the conv layers and those layers, in order.

    An ensemble is a functional model wrapping member models: its own layers
    hold no convolutions, so the first member that has some is used.
    """
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if convs:
        return model, convs
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            owner, convs = conv_layers(layer)
            if convs:
                return owner, convs
    return model, []


@dataclass
class Explanation:
    probabilities: np.ndarray  # (classes,)
    # (conv layer name, (H, W, channels)) per conv layer, after its activation when it has one
    activations: list[tuple[str, np.ndarray]]
    saliency: np.ndarray  # (28, 28) in [0, 1]: how much each pixel moves the top class
    source: str  # the (sub)model the activations come from

    @property
    def top(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    @property
    def unsure(self) -> bool:
        return unsure(self.confidence)


_feature_models: dict[int, tuple[object, object]] = {}
_ACTIVATIONS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")


def _shown_output(owner, conv):
    """The conv layer's output after its activation.

    A conv without its own activation is often followed by BatchNormalization and an
    activation layer; the maps after those are what the next layer sees. Falls back
    to the conv output when the chain is anything else.
    """
    import keras

    if conv.activation is not keras.activations.linear:
        return conv.output
    layers = owner.layers
    out = conv.output
    for layer in layers[layers.index(conv) + 1:]:
        try:
            if layer.input is not out:
                break
        except (AttributeError, ValueError):  # a layer used more than once
            break
        out = layer.output
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        return out if type(layer).__name__ in _ACTIVATIONS else conv.output
    return conv.output


def _feature_model(model):
    """A model from the input to every conv layer's output (cached per model)."""
    cached = _feature_models.get(id(model))
    if cached is None or cached[0] is not model:
        import keras

        owner, convs = conv_layers(model)
        outputs = [_shown_output(owner, c) for c in convs]
        features = keras.Model(owner.inputs, outputs) if convs else None
        cached = (model, (owner, convs, features))
        _feature_models[id(model)] = cached
    return cached[1]


def _explainer(model):
    """One traced function giving probabilities, input gradient and conv maps (cached per model).

    Traced once, it runs as a single graph call: eager mode would make hundreds of
    small calls, each waiting for Python's GIL in a busy server.
    """
    cached = _explainers.get(id(model))
    if cached is None or cached[0] is not model:
        owner, convs, features = _feature_model(model)
        if core.import_keras().backend.backend() == "jax":
            import jax
            import jax.numpy as jnp

            def score(x):  # log keeps the gradient alive when the top probability is close to 1
                probs = model(x, training=False)
                return jnp.log(jnp.max(probs[0]) + 1e-12), probs

            @jax.jit
            def run(x):
                grad, probs = jax.grad(score, has_aux=True)(x)
                return probs, grad, features(x, training=False) if features is not None else []
        else:
            tf = core.import_tensorflow()

            @tf.function(reduce_retracing=True)
            def run(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    probs = model(x, training=False)
                    score = tf.math.log(tf.reduce_max(probs[0]) + 1e-12)
                maps = features(x, training=False) if features is not None else []
                return probs, tape.gradient(score, x), maps

        cached = (model, (owner, convs, run))
        _explainers[id(model)] = cached
    return cached[1]


_explainers: dict[int, tuple[object, object]] = {}


def explain(model, image: np.ndarray) -> Explanation:
    """Probabilities, conv activations and an input-gradient saliency map for one image."""
    owner, convs, run = _explainer(model)
    probs, grad, maps = run(as_batch(image)[:1])
    grad = np.abs(np.asarray(grad)[0, ..., 0])
    # Scale by the 99th percentile, not the max: one extreme pixel would leave the rest invisible.
    top_grad = np.percentile(grad, 99)
    saliency = np.clip(grad / top_grad, 0, 1) if top_grad > 0 else np.zeros_like(grad)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    activations = [(c.name, np.asarray(m)[0]) for c, m in zip(convs, maps, strict=True)]
    return Explanation(np.asarray(probs)[0], activations, saliency.astype(np.float32), owner.name)


def mosaic(maps: np.ndarray, count: int = 16, columns: int = 8) -> tuple[np.ndarray, list[int]]:
    """The ``count`` most active channels of (H, W, C) feature maps tiled in one 2-D grid.

    Each map is scaled to [0, 1] on its own and tiles are separated by NaN gaps (drawn
    blank), so one heatmap shows them all: far faster to draw than one plot per map.
    Returns the grid and the channel numbers, row by row.
    """
    h, w, c = maps.shape
    order = [int(i) for i in np.argsort(maps.mean(axis=(0, 1)))[::-1][:count]]
    columns = min(columns, len(order))
    rows = -(-len(order) // columns)
    grid = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan, np.float32)
    for i, channel in enumerate(order):
        tile = maps[..., channel].astype(np.float32)
        span = tile.max() - tile.min()
        tile = (tile - tile.min()) / span if span > 0 else np.zeros_like(tile)
        r, col = divmod(i, columns)
        grid[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = tile
    return grid, order


def saliency_overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The input in grey with the saliency in red on top, as uint8 RGB (H, W, 3)."""
    grey = np.clip(np.asarray(image, np.float32), 0, 1) * 0.6
    heat = np.clip(np.asarray(saliency, np.float32), 0, 1)
    rgb = np.stack([np.maximum(grey, heat), grey * (1 - heat), grey * (1 - heat)], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


def layer_title(index: int, count: int, maps: np.ndarray) -> str:
    """A learner's title for conv layer ``index`` of ``count``: its role and shape,
    e.g. "Layer 1 of 4 · 32 filters · 28×28 — edges and stroke directions"."""
    h, w, c = maps.shape
    if index == 0:
        role = "edges and stroke directions"
    elif index == count - 1:
        role = "large parts of digits: loops, bars, corners"
    else:
        role = "strokes combined into curves and junctions"
    return f"Layer {index + 1} of {count} · {c} filters · {h}×{w} — {role}"
