"""The elastic-distortion layer: exact bilinear sampling, a real but gentle distortion, and
a saved model that reloads with it."""
from __future__ import annotations

import core

core.import_tensorflow()
import keras
import numpy as np

from core.models.elastic import RandomElastic, _bilinear
from tests.mnist_fixtures import patterns


def _grid(n=2, h=5, w=6):
    rows = np.broadcast_to(np.arange(h, dtype="float32")[None, :, None], (n, h, w))
    cols = np.broadcast_to(np.arange(w, dtype="float32")[None, None, :], (n, h, w))
    return rows, cols


def test_bilinear_shifts_and_interpolates_exactly():
    images = np.random.default_rng(0).random((2, 5, 6)).astype("float32")
    rows, cols = _grid()
    np.testing.assert_allclose(_bilinear(images, rows, cols), images, atol=1e-6)
    # Reading one row down moves the picture up a row, with zeros coming in at the bottom.
    shifted = np.asarray(_bilinear(images, rows + 1, cols))
    np.testing.assert_allclose(shifted[:, :-1], images[:, 1:], atol=1e-6)
    assert (shifted[:, -1] == 0).all()
    # Halfway between two columns is their mean.
    half = np.asarray(_bilinear(images, rows, cols + 0.5))
    np.testing.assert_allclose(half[:, :, :-1], (images[:, :, :-1] + images[:, :, 1:]) / 2, atol=1e-6)


def test_distortion_is_random_gentle_and_off_at_inference():
    images = patterns(64)[0][..., None].astype("float32") / 255
    layer = RandomElastic(seed=3)
    np.testing.assert_array_equal(layer(images, training=False), images)
    np.testing.assert_allclose(RandomElastic(alpha=0.0)(images, training=True), images, atol=1e-6)

    first, second = np.asarray(layer(images, training=True)), np.asarray(layer(images, training=True))
    assert not np.allclose(first, second)  # a fresh field every call
    changed = np.abs(first - images).mean(axis=(1, 2, 3))
    assert (changed > 0.005).all()  # every image moves...
    ink_before, ink_after = images.sum(axis=(1, 2, 3)), first.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ink_after, ink_before, rtol=0.25)  # ...but stays the same digit-sized blob
    assert first.min() >= 0 and first.max() <= 1


def test_model_with_the_layer_saves_and_reloads(tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = RandomElastic(alpha=20, sigma=3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = loaded.layers[1]
    assert isinstance(layer, RandomElastic) and (layer.alpha, layer.sigma) == (20.0, 3.0)
    images = patterns(4)[0][..., None].astype("float32") / 255
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
