"""The Theory page's numbers: each computed claim checked against Keras/TensorFlow or by hand."""
import json

import numpy as np
import pytest

import core
from core.learn import calculator as memory
from core.learn import theory


@pytest.fixture(scope="module")
def keras():
    core.import_tensorflow()
    import keras

    return keras


def test_dense_vs_conv_counts(keras):
    counts = theory.dense_vs_conv(8, 8, 3, 4, 3)
    assert counts["conv"] == 3 * 3 * 3 * 4 + 4
    assert counts["dense"] == (8 * 8 * 3) * (8 * 8 * 4) + 8 * 8 * 4
    dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(256)])
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same")])
    assert (counts["dense"], counts["conv"]) == (dense.count_params(), conv.count_params())


@pytest.mark.parametrize(("stride", "padding"), [(1, "same"), (2, "same"), (3, "valid"), (2, "valid")])
def test_convolution_matches_keras_and_the_shape_rule(keras, stride, padding):
    image = theory.synthetic_image(17)
    kernel = theory.KERNELS["Vertical edges (Sobel x)"]
    out = theory.convolve(image, kernel, stride, padding)
    assert out.shape == (theory.output_size(17, 3, stride, padding),) * 2
    layer = keras.layers.Conv2D(1, 3, stride, padding, use_bias=False)
    layer.build((None, 17, 17, 1))
    layer.set_weights([np.asarray(kernel, np.float32)[:, :, None, None]])
    expected = layer(image[None, :, :, None]).numpy()[0, :, :, 0]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_identity_kernel_and_bad_kernels():
    image = theory.synthetic_image(16)
    np.testing.assert_allclose(theory.convolve(image, theory.KERNELS["Identity"]), image, atol=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        theory.convolve(image[:2, :2], theory.KERNELS["Identity"], padding="valid")


def test_shift_moves_pixels_and_fills_with_zeros():
    image = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    moved = theory.shift(image, 1)
    assert (moved[:, 0] == 0).all() and (moved[:, 1:] == image[:, :-1]).all()


def test_max_pool_ignores_a_shift_inside_its_window():
    # One bright pixel moving within its 2x2 window leaves the pooled map unchanged,
    # while the strided convolution (which samples every other position) sees it change.
    image = np.zeros((8, 8), np.float32)
    image[3, 2] = 1.0
    kernel = theory.KERNELS["Identity"]
    assert np.array_equal(theory.pooled(image, kernel), theory.pooled(theory.shift(image, 1), kernel))
    assert not np.array_equal(theory.strided(image, kernel), theory.strided(theory.shift(image, 1), kernel))
    rows = theory.shift_experiment(image[None], kernel, shifts=(1,))
    pooled_change, strided_change = (r["relative change"] for r in rows)
    assert pooled_change == 0.0 and strided_change > 1.0


def test_lrn_matches_the_formula():
    maps = np.random.default_rng(0).uniform(0, 6, (5, 6, 16)).astype(np.float32)
    for params in [(2, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.5)]:
        np.testing.assert_allclose(theory.lrn(maps, *params), theory.lrn_formula(maps, *params), rtol=1e-5)


def test_architecture_json_matches_keras(keras):
    cached = json.loads(theory.ARCH_JSON.read_text())
    assert set(cached["params"]) == set(theory.KERAS_MODELS)
    for name in ("MobileNetV2", "ResNet50"):  # the quickest to build
        assert cached["params"][name] == theory.keras_params(name)


def test_architecture_table(keras):
    rows = {r["name"]: r for r in theory.architecture_table()}
    assert list(rows) == ["AlexNet", "GoogLeNet", "ResNet", "Xception", "SENet"]
    assert rows["AlexNet"]["params"] == memory.analyze(*theory.alexnet_layers()).params == 62_378_344
    # An SE block built in Keras has the parameters se_block_params counts.
    block = keras.Sequential([keras.Input((4, 4, 256)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(16), keras.layers.Dense(256)])
    assert theory.se_block_params(256) == block.count_params()
    se = sum(theory.se_block_params(c) * n for c, n in theory.RESNET50_BLOCKS)
    assert rows["SENet"]["params"] == theory.cached_params()["ResNet50"] + se


def test_dense_head_becomes_convolutions_with_the_same_outputs(keras):
    model = theory.small_classifier(seed=3)
    fcn = theory.dense_to_conv(model)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (6, 28, 28, 1)).astype(np.float32)
    assert theory.compare_dense_conv(model, fcn, images) < 1e-5
    # On a wider image the FCN gives a map: each position equals the classifier on that window.
    wide = rng.uniform(0, 1, (1, 28, 60, 1)).astype(np.float32)
    heat = fcn.predict(wide, verbose=0)[0]
    assert heat.shape == (1, 9, 10)  # (60 - 28) / 4 + 1 positions, stride 4 from two 2x2 pools
    for j in (0, 4, 8):
        window = model.predict(wide[:, :, 4 * j:4 * j + 28], verbose=0)[0]
        np.testing.assert_allclose(heat[0, j], window, atol=1e-5)


def test_dense_to_conv_refuses_other_heads(keras):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="Flatten followed only by Dense"):
        theory.dense_to_conv(model)


def test_segmentation_detail_is_lost_with_output_stride():
    mask = np.zeros((64, 64), bool)
    mask[10:50, 20:24] = True  # a thin bar: 4 pixels wide
    rows = theory.upsample_factor_rows(mask, strides=(1, 2, 16))
    assert rows[0]["IoU with the true mask"] == 1.0
    assert rows[1]["IoU with the true mask"] == 1.0  # a stride-2 grid still holds a 4-px bar
    assert rows[2]["IoU with the true mask"] < 0.5


@pytest.mark.parametrize("dilations", [[1], [1, 1, 1, 1], [1, 2, 4, 8], [2, 3]])
def test_receptive_field_formula_matches_measurement(dilations):
    assert theory.receptive_field(dilations) == theory.measured_receptive_field(dilations)
