"""Elastic distortion (Simard, Steinkraus & Platt, 2003) as a Keras layer.

Keras ships ``RandomElasticTransform``, but it loops over a static batch size
(a functional model's batch is unknown) and caps the distortion far below the
paper's. This one is built from ``keras.ops`` only, so it traces once, runs on
any backend, and is a no-op at inference like the other ``Random*`` layers.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _gaussian(sigma: float) -> np.ndarray:
    radius = max(1, int(round(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype="float32")
    g = np.exp(-(t ** 2) / (2 * sigma ** 2))
    return g / g.sum()


@keras.saving.register_keras_serializable(package="cnn_studio")
class RandomElastic(keras.layers.Layer):
    """Move every pixel by a smooth random field: uniform(-1, 1) noise per pixel and
    axis, blurred by a Gaussian of ``sigma`` pixels, scaled by ``alpha``; sample
    bilinearly, zero outside the image. Single-channel, channels-last images."""

    def __init__(self, alpha: float = 34.0, sigma: float = 4.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.sigma, self.seed = float(alpha), float(sigma), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        g = _gaussian(self.sigma)
        # Separable blur of both displacement channels: a (k, 1) then a (1, k) depthwise pass.
        self._blur_v = np.tile(g.reshape(-1, 1, 1, 1), (1, 1, 2, 1))
        self._blur_h = np.tile(g.reshape(1, -1, 1, 1), (1, 1, 2, 1))

    def call(self, images, training=False):
        if not training:
            return images
        shape = ops.shape(images)
        n, h, w = shape[0], images.shape[1], images.shape[2]
        field = keras.random.uniform((n, h, w, 2), -1.0, 1.0, seed=self.seed_generator)
        field = ops.depthwise_conv(field, ops.cast(self._blur_v, field.dtype), padding="same")
        field = ops.depthwise_conv(field, ops.cast(self._blur_h, field.dtype), padding="same")
        field = field * self.alpha
        rows = ops.reshape(ops.arange(h, dtype="float32"), (1, h, 1)) + field[..., 0]
        cols = ops.reshape(ops.arange(w, dtype="float32"), (1, 1, w)) + field[..., 1]
        return ops.cast(_bilinear(images[..., 0], rows, cols), images.dtype)[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"alpha": self.alpha, "sigma": self.sigma, "seed": self.seed}


def _bilinear(images, rows, cols):
    """Sample (n, h, w) ``images`` at float ``rows``/``cols`` of shape (n, h, w); zero outside."""
    n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]
    flat = ops.reshape(ops.cast(images, "float32"), (-1,))
    base = ops.reshape(ops.arange(n, dtype="int32") * (h * w), (-1, 1, 1))
    r0, c0 = ops.floor(rows), ops.floor(cols)
    out = 0.0
    for dr in (0, 1):
        for dc in (0, 1):
            r, c = r0 + dr, c0 + dc
            weight = (1 - ops.abs(rows - r)) * (1 - ops.abs(cols - c))
            inside = (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
            ri = ops.cast(ops.clip(r, 0, h - 1), "int32")
            ci = ops.cast(ops.clip(c, 0, w - 1), "int32")
            value = ops.take(flat, base + ri * w + ci)
            out = out + ops.where(inside, weight * value, 0.0)
    return out
