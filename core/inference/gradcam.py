"""Grad-CAM: where in the photo the network found evidence for a class.

The heat map is the last convolutional feature map weighted by the gradient of the
class score (its logit, so a confident softmax does not flatten the gradient),
averaged over space (Selvaraju et al., 2017). The transfer model's backbone is a
nested model whose output *is* its last conv block, so it counts as the last conv layer.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

import core


def last_conv_layer(model):
    """The last top-level layer with a 4-D output: the nested backbone, or a Conv2D."""
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer
    raise ValueError(f"{model.name} has no convolutional layer to explain")


_traced: dict[int, tuple[object, object]] = {}


def _cam_function(model):
    """One traced function per model: (image batch, class index or -1) -> (cam, class index).

    Traced once, Grad-CAM runs as one graph call instead of a Python loop over the
    layers in eager mode (about 9x slower for MobileNetV2).
    """
    cached = _traced.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    keras = core.import_keras()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    split = layers.index(last_conv_layer(model)) + 1
    head = layers[-1]
    # Score by the logit (the softmax Dense's input times its kernel, plus bias).
    use_logit = isinstance(head, keras.layers.Dense) and head.activation.__name__ == "softmax"
    after = layers[split:-1] if use_logit else layers[split:]
    if keras.backend.backend() == "jax":
        run = _jax_cam(layers[:split], after, head, use_logit)
        _traced[id(model)] = (model, run)
        return run
    tf = core.import_tensorflow()

    @tf.function(reduce_retracing=True)
    def run(image, class_index):
        features = image
        for layer in layers[:split]:
            features = layer(features, training=False)
        with tf.GradientTape() as tape:
            tape.watch(features)
            x = features
            for layer in after:
                x = layer(x, training=False)
            scores = tf.matmul(x, head.kernel) + head.bias if use_logit else x
            index = tf.where(class_index < 0, tf.argmax(scores[0], output_type=tf.int32), class_index)
            score = scores[0, index]
        grads = tape.gradient(score, features)[0]
        weights = tf.reduce_mean(grads, axis=(0, 1))
        return tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1)), index

    _traced[id(model)] = (model, run)
    return run


def _jax_cam(before, after, head, use_logit):
    """The same Grad-CAM as ``_cam_function`` for Keras on JAX, compiled with ``jax.jit``."""
    import jax
    import jax.numpy as jnp

    def scores_of(features):
        x = features
        for layer in after:
            x = layer(x, training=False)
        return jnp.matmul(x, head.kernel.value) + head.bias.value if use_logit else x

    @jax.jit
    def run(image, class_index):
        features = image
        for layer in before:
            features = layer(features, training=False)
        index = jnp.where(class_index < 0, jnp.argmax(scores_of(features)[0]), class_index)
        grads = jax.grad(lambda f: scores_of(f)[0, index])(features)[0]
        weights = jnp.mean(grads, axis=(0, 1))
        return jax.nn.relu(jnp.sum(features[0] * weights, axis=-1)), index

    return run


def heatmap(model, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """A (h, w) map in [0, 1] at the feature map's resolution for one (H, W, 3) 0-255 image.

    The layers are applied one by one (image and CNN models here are chains at the top
    level), which reaches inside a reloaded nested backbone without graph surgery.
    """
    run = _cam_function(model)
    index = np.int32(-1 if class_index is None else int(class_index))
    cam, _ = run(np.asarray(image, np.float32)[None], index)
    cam = np.asarray(cam)
    top = cam.max()
    return cam / top if top > 0 else cam


def _jet(values: np.ndarray) -> np.ndarray:
    """A blue-cyan-yellow-red colour map for values in [0, 1], as uint8 RGB."""
    stops = np.array([[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0], [128, 0, 0]],
                     dtype=np.float64)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def overlay(photo: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The photo with the heat map, stretched to its size, blended on top."""
    resized = Image.fromarray((np.clip(cam, 0, 1) * 255).astype(np.uint8)).resize(
        photo.size, Image.Resampling.BICUBIC)
    colours = Image.fromarray(_jet(np.asarray(resized, np.float64) / 255.0))
    return Image.blend(photo.convert("RGB"), colours, alpha)


def legend(width: int = 256, height: int = 14) -> np.ndarray:
    """The overlay's colour scale as a (height, width, 3) uint8 strip: little evidence left, most right."""
    return np.repeat(_jet(np.linspace(0, 1, width))[None], height, axis=0)
