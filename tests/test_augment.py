"""core.models.augment: one batched affine resampling, checked pixel by pixel on both backends.

The same checks run in this process (TensorFlow) and, through ``test_same_checks_on_jax``,
in a child process with ``KERAS_BACKEND=jax``.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from core.config import PROJECT_ROOT
from core.models import augment, mnist, transfer

H, W = 15, 17  # odd and unequal, so rows and columns cannot be mixed up


def _dot(row: int, col: int, batch: int = 1) -> np.ndarray:
    x = np.zeros((batch, H, W, 1), np.float32)
    x[:, row, col] = 1.0
    return x


def _matrices(angle=0.0, scale=1.0, dx=0.0, dy=0.0, flip=1.0):
    one = lambda v: np.array([v], np.float32)  # noqa: E731
    return augment.affine_matrices(one(angle), one(scale), one(dx), one(dy), one(flip), H, W)


def _where(image) -> tuple[int, int]:
    image = ops.convert_to_numpy(image)[0, ..., 0]
    return tuple(int(i) for i in np.unravel_index(np.argmax(image), image.shape))


def test_zero_transform_is_the_identity():
    x = np.random.default_rng(0).random((4, H, W, 3)).astype(np.float32)
    for mode in augment.FILL_MODES:
        out = ops.convert_to_numpy(augment.warp(x, np.repeat(ops.convert_to_numpy(_matrices()), 4, 0), mode))
        np.testing.assert_allclose(out, x, atol=1e-6)
    # A layer asked for nothing changes nothing, even while training.
    np.testing.assert_allclose(ops.convert_to_numpy(augment.RandomAffine()(x, training=True)), x, atol=1e-6)


def test_known_moves_land_where_expected():
    cy, cx = (H - 1) // 2, (W - 1) // 2
    # a shift of 3 right and 2 up moves the pixel by exactly that, at full strength
    out = augment.warp(_dot(10, 4), _matrices(dx=3, dy=-2))
    assert _where(out) == (8, 7)
    assert float(ops.max(out)) == pytest.approx(1.0)
    # a half-pixel shift splits the pixel between two neighbours (bilinear)
    half = ops.convert_to_numpy(augment.warp(_dot(10, 4), _matrices(dx=0.5)))[0, 10, :, 0]
    np.testing.assert_allclose(half[4:6], [0.5, 0.5], atol=1e-6)
    # +90 degrees turns a point right of the centre to above it (counter-clockwise on screen)
    assert _where(augment.warp(_dot(cy, cx + 4), _matrices(angle=math.pi / 2))) == (cy - 4, cx)
    # the flip mirrors columns; a scale of 2 (zoom out) halves distances from the centre
    assert _where(augment.warp(_dot(3, 2), _matrices(flip=-1.0))) == (3, W - 1 - 2)
    assert _where(augment.warp(_dot(cy, cx + 4), _matrices(scale=2.0))) == (cy, cx + 2)
    # what leaves the frame is gone; what comes in is black (constant) or the mirrored edge (reflect)
    assert float(ops.max(augment.warp(_dot(5, W - 1), _matrices(dx=2)))) == 0.0
    row = lambda mode: ops.convert_to_numpy(  # noqa: E731
        augment.warp(_dot(5, W - 1), _matrices(dx=-2), mode))[0, 5, :, 0]
    assert np.flatnonzero(row("constant")).tolist() == [W - 3]
    assert np.flatnonzero(row("reflect")).tolist() == [W - 3, W - 2]


def test_matches_keras_affine_transform():
    """Same numbers as keras.ops.image.affine_transform (what RandomRotation & co. call), per matrix."""
    rng = np.random.default_rng(1)
    x = rng.random((3, H, W, 2)).astype(np.float32)
    rand = lambda lo, hi: rng.uniform(lo, hi, 3).astype(np.float32)  # noqa: E731
    matrices = ops.convert_to_numpy(augment.affine_matrices(
        rand(-0.6, 0.6), rand(0.8, 1.2), rand(-3, 3), rand(-3, 3), np.array([1, -1, 1], np.float32), H, W))
    keras_form = np.concatenate([matrices, np.zeros((3, 2), np.float32)], axis=1)
    for mode in augment.FILL_MODES:
        ours = ops.convert_to_numpy(augment.warp(x, matrices, mode))
        theirs = ops.convert_to_numpy(ops.image.affine_transform(x, keras_form, fill_mode=mode))
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_layer_draws_per_image_keeps_range_and_is_off_at_inference():
    x = np.repeat(np.random.default_rng(2).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32), 6, 0)
    layer = augment.RandomAffine(**transfer.PHOTO_AUGMENTATION, seed=3)
    out = ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert len({o.tobytes() for o in out}) == 6  # every image drew its own transform
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)


def test_saved_model_reloads_with_its_settings(tmp_path):
    inputs = keras.Input((28, 28, 1))  # best's augmentation in a small model (quick on JAX too)
    x = augment.RandomAffine(**mnist.AUGMENTATION["best"], name="augment")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x)))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    layer = again.get_layer("augment")
    assert isinstance(layer, augment.RandomAffine)
    assert (layer.rotation, layer.zoom, layer.shift, layer.fill_mode) == (10.0, 0.1, 0.1, "constant")
    x = np.random.default_rng(4).random((5, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), ops.convert_to_numpy(model(x)), atol=1e-5)


def test_under_mixed_precision_the_layer_computes_in_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = augment.RandomAffine(rotation=10, shift=0.1)
        out = layer(np.ones((2, H, W, 1), np.float32), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float16"


@pytest.mark.slow  # about a minute: JAX compiles every eager operation on first use
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already the JAX run")
def test_same_checks_on_jax():
    pytest.importorskip("jax")
    env = os.environ | {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "6 passed, 1 skipped" in proc.stdout
