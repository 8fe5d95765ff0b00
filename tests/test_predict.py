"""core.inference.digits: cached loading, clear load errors, batch probabilities, activations and saliency."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import core
from core.config import PROJECT_ROOT
from core.data.canvas import canvas_to_mnist
from core.inference import digits as predict
from tests.fixtures.drawing import SHAPES, canvas_with, shape_dataset, train_shape_model


@pytest.fixture(scope="module")
def shape_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    train_shape_model(path)
    return path


@pytest.fixture(scope="module")
def ensemble(shape_model, tmp_path_factory):
    """A functional model averaging two member models, like the shipped ensemble."""
    core.import_tensorflow()
    import keras

    members = [predict.load_model(shape_model)]
    second = keras.models.clone_model(members[0])
    second.set_weights(members[0].get_weights())
    second.name = "member_b"
    members.append(second)
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, keras.layers.Average()([m(inp) for m in members]), name="ensemble")
    path = tmp_path_factory.mktemp("models") / "ensemble.keras"
    model.save(path)
    return path


def test_probabilities_for_a_batch_match_the_model(shape_model):
    model = predict.load_model(shape_model)
    x, y = shape_dataset(60, seed=11)
    probs = predict.probabilities(model, x)
    assert probs.shape == (60, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(probs, model(x, training=False).numpy(), atol=1e-6)
    assert (probs.argmax(axis=1) == y).mean() >= 0.95  # fresh drawings, not the training ones
    # One 28x28 image or a (28, 28) batch-less array works too, in small or big batches.
    np.testing.assert_allclose(predict.probabilities(model, x[0, ..., 0]), probs[:1], atol=1e-6)
    np.testing.assert_allclose(predict.probabilities(model, x, batch_size=7), probs, atol=1e-6)


def test_model_is_loaded_once_and_reloaded_when_the_file_changes(shape_model, tmp_path):
    first = predict.load_model(shape_model)
    assert predict.load_model(str(shape_model)) is first
    copy = tmp_path / "copy.keras"
    copy.write_bytes(shape_model.read_bytes())
    loaded = predict.load_model(copy)
    assert loaded is not first
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a retrained model on disk
    assert predict.load_model(copy) is not loaded


def test_missing_model_file_raises_a_clear_error(tmp_path):
    with pytest.raises(predict.ModelLoadError, match="not found.*nothing.keras"):
        predict.load_model(tmp_path / "nothing.keras")


def test_corrupt_model_file_raises_a_clear_error(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(predict.ModelLoadError, match="cannot read broken.keras as a Keras model"):
        predict.load_model(bad)


@pytest.mark.parametrize("digit", sorted(SHAPES))
def test_explain_gives_prediction_activations_and_saliency(shape_model, digit):
    model = predict.load_model(shape_model)
    image = canvas_to_mnist(canvas_with(digit))
    result = predict.explain(model, image)
    assert result.top == digit and not result.unsure
    np.testing.assert_allclose(result.probabilities, predict.probabilities(model, image)[0], atol=1e-5)
    names = [name for name, _ in result.activations]
    assert names == ["tiny_conv1", "tiny_conv2"]
    assert [a.shape for _, a in result.activations] == [(26, 26, 8), (11, 11, 8)]
    assert all((a >= 0).all() and a.max() > 0 for _, a in result.activations)  # ReLU maps, not blank
    assert result.saliency.shape == (28, 28) and result.saliency.max() == pytest.approx(1.0)
    # The gradient lives where the drawing is: more saliency on and around the ink than far off it.
    near = np.zeros((28, 28), bool)
    ys, xs = np.nonzero(image > 0.1)
    for y, x in zip(ys, xs, strict=True):
        near[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = True
    assert result.saliency[near].mean() > 1.3 * result.saliency[~near].mean()


def test_ensemble_is_explained_through_its_first_member(ensemble, shape_model):
    model = predict.load_model(ensemble)
    image = canvas_to_mnist(canvas_with(7))
    result = predict.explain(model, image)
    assert result.top == 7
    assert result.source == "tiny"  # activations of the first member
    assert [name for name, _ in result.activations] == ["tiny_conv1", "tiny_conv2"]
    single = predict.explain(predict.load_model(shape_model), image)
    for (_, a), (_, b) in zip(result.activations, single.activations, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert predict.probabilities(model, image).shape == (1, 10)


def test_unsure_when_the_top_probability_is_low():
    flat = predict.Explanation(np.full(10, 0.1), [], np.zeros((28, 28)), "m")
    sure = predict.Explanation(np.eye(10)[3] * 0.9 + 0.01, [], np.zeros((28, 28)), "m")
    assert flat.unsure and not sure.unsure and sure.top == 3


def test_saliency_overlay_marks_salient_pixels_red():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1
    saliency = np.zeros((28, 28), np.float32)
    saliency[5, 5] = 1
    rgb = predict.saliency_overlay(image, saliency)
    assert rgb.shape == (28, 28, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[5, 5]) == (255, 0, 0)  # salient background pixel: pure red
    assert rgb[12, 13, 0] == rgb[12, 13, 1] > 0  # ink without saliency: grey
    assert tuple(rgb[0, 0]) == (0, 0, 0)


def test_mosaic_tiles_the_most_active_channels_with_gaps():
    maps = np.zeros((4, 5, 20), np.float32)
    for c in range(20):
        maps[..., c] = c  # channel c has mean c: the most active are 19, 18, ...
        maps[0, 0, c] = 2 * c + 1  # and each has a peak in its corner
    grid, channels = predict.mosaic(maps, count=10, columns=4)
    assert channels == list(range(19, 9, -1))
    assert grid.shape == (3 * 5 - 1, 4 * 6 - 1)  # 3 rows of 4 tiles, 1-pixel gaps
    assert grid[0, 0] == 1.0 and grid[1, 1] == 0.0  # each tile scaled to [0, 1] on its own
    assert np.isnan(grid[4, :]).all() and np.isnan(grid[:, 5]).all()  # gaps between tiles
    assert np.isnan(grid[10:, 12:]).all()  # the unused tiles of the last row stay blank


def test_conv_then_batchnorm_then_relu_shows_the_maps_after_the_relu(tmp_path):
    core.import_tensorflow()
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((28, 28, 1))
    conv = keras.layers.Conv2D(4, 3, name="c1")(inp)  # no activation of its own
    relu = keras.layers.Activation("relu", name="r1")(keras.layers.BatchNormalization()(conv))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(relu))
    model = keras.Model(inp, out)
    image = canvas_to_mnist(canvas_with(0))
    ((name, maps),) = predict.explain(model, image).activations
    expected = keras.Model(inp, relu)(image[None, ..., None]).numpy()[0]
    assert name == "c1" and maps.min() >= 0
    np.testing.assert_allclose(maps, expected, atol=1e-5)


_ON_JAX = """
import json, sys
import numpy as np
from core.inference import digits, gradcam
model = digits.load_model(sys.argv[1])
x = np.load(sys.argv[2])
e = digits.explain(model, x)
print(json.dumps({"backend": __import__("keras").backend.backend(),
                  "probs": np.asarray(digits.probabilities(model, x[None])).tolist(),
                  "saliency": e.saliency.tolist(), "cam": gradcam.heatmap(model, x[..., None]).tolist()}))
"""


def test_prediction_saliency_and_grad_cam_agree_on_tensorflow_and_jax(shape_model, tmp_path):
    """`make run BACKEND=jax` serves the pages on Keras-on-JAX: the same model file must give the
    same answer and the same explanations there (they used TensorFlow's tape and crashed)."""
    pytest.importorskip("jax")
    from core.inference import gradcam

    x = canvas_to_mnist(canvas_with(7))
    np.save(tmp_path / "x.npy", x)
    env = os.environ | {"KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", _ON_JAX, str(shape_model), str(tmp_path / "x.npy")],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    jax_side = json.loads(out.stdout.strip().splitlines()[-1])
    assert jax_side["backend"] == "jax"
    model = predict.load_model(shape_model)
    assert np.allclose(jax_side["probs"], predict.probabilities(model, x[None]), atol=1e-4)
    assert np.allclose(jax_side["saliency"], predict.explain(model, x).saliency, atol=1e-3)
    assert np.allclose(jax_side["cam"], gradcam.heatmap(model, x[..., None]), atol=1e-3)
