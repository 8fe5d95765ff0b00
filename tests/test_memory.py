"""The memory calculator: the exercise's figures by hand, and everything else against Keras."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core
from core.learn import calculator as memory
from core.learn.calculator import Layer

EXERCISE = "Exercise: 3 conv layers on 200x300 RGB"


def test_exercise_preset_gives_the_right_answer():
    shape, layers = memory.preset(EXERCISE)
    report = memory.analyze(shape, layers, batch=50)
    assert [r.params for r in report.layers] == [2_800, 180_200, 720_400]
    assert report.params == 903_400
    assert [r.output_shape for r in report.layers] == [(100, 150, 100), (50, 75, 200), (25, 38, 400)]
    t = report.totals
    # One image: conv1 + conv2 outputs (6 MB + 3 MB) + 903,400 float32 params (3.6136 MB).
    assert t["inference_bytes_one"] == 6_000_000 + 3_000_000 + 3_613_600 == 12_613_600
    # Batch of 50: activations of every layer (10.52 MB) and the input (0.72 MB) per image.
    assert t["training_activation_bytes"] == (720_000 + 6_000_000 + 3_000_000 + 1_520_000) * 50
    assert t["training_activation_bytes"] + t["parameter_bytes"] == 565_613_600
    assert t["gradient_bytes"] == 3_613_600 and t["optimizer_bytes"] == 0
    assert t["training_bytes"] == 569_227_200
    assert memory.book_answer(layers) == {"params": 6_300, "bytes": 25_200}


def test_optimizer_and_dtype_conventions():
    shape, layers = memory.preset(EXERCISE)
    sgd = memory.analyze(shape, layers, batch=50).totals
    adam = memory.analyze(shape, layers, batch=50, optimizer="adam").totals
    momentum = memory.analyze(shape, layers, batch=50, optimizer="momentum").totals
    assert momentum["training_bytes"] - sgd["training_bytes"] == 3_613_600
    assert adam["training_bytes"] - sgd["training_bytes"] == 2 * 3_613_600
    half = memory.analyze(shape, layers, batch=50, dtype="float16").totals
    assert half["training_bytes"] * 2 == sgd["training_bytes"]
    mixed = memory.analyze(shape, layers, batch=50, dtype="mixed").totals
    # Mixed: activations halve, float32 weights, gradients stay.
    assert mixed["training_activation_bytes"] * 2 == sgd["training_activation_bytes"]
    assert mixed["parameter_bytes"] == sgd["parameter_bytes"]
    assert mixed["inference_bytes_one"] == 4_500_000 + 3_613_600


def test_batch_norm_moving_statistics_get_no_gradient():
    report = memory.analyze((8, 8, 3), [Layer("Conv2D", 4, bias=False), Layer("BatchNormalization")])
    assert report.params == 3 * 3 * 3 * 4 + 4 * 4 and report.trainable == 3 * 3 * 3 * 4 + 2 * 4
    assert report.totals["gradient_bytes"] == report.trainable * 4


@pytest.mark.parametrize(("layers", "message"), [
    ([Layer("Conv2D", 8, kernel=7, padding="valid")], "does not fit"),
    ([Layer("Flatten"), Layer("Conv2D", 8)], "image-shaped input"),
    ([Layer("Conv3D", 8)], "unknown type"),
    ([Layer("Dense", 0)], "at least 1"),
    ([Layer("Conv2D", 8, padding="full")], "padding"),
])
def test_bad_layers_get_a_clear_message(layers, message):
    with pytest.raises(ValueError, match=message):
        memory.analyze((5, 5, 1), layers)


def test_table_rows_round_trip_and_bad_cells_are_named():
    _, layers = memory.preset("MNIST CNN (notebook style)")
    assert memory.from_rows(memory.to_rows(layers)) == layers
    rows = memory.to_rows(layers) + [{"kind": None}]  # an empty row the editor adds
    assert memory.from_rows(rows) == layers
    with pytest.raises(ValueError, match="Row 1: filters must be a whole number"):
        memory.from_rows([{"kind": "Conv2D", "filters": "many"}])
    with pytest.raises(ValueError, match="Row 1: kernel must be a whole number"):
        memory.from_rows([{"kind": "Conv2D", "filters": 3, "kernel": 2.5}])


# --- Against Keras -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    core.import_tensorflow()
    import keras

    return keras


def _check_against_keras(shape, layers):
    report = memory.analyze(shape, layers)
    model = memory.to_keras(shape, layers)
    assert report.params == model.count_params()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert report.trainable == trainable
    assert [r.output_shape for r in report.layers] == [tuple(kl.output.shape[1:]) for kl in model.layers]
    assert [r.params for r in report.layers] == [kl.count_params() for kl in model.layers]
    assert all(r.activations == math.prod(r.output_shape) for r in report.layers)
    # Reading the Keras model back gives the same table.
    assert memory.from_keras(model) == (tuple(shape), layers)
    return report


SPATIAL_KINDS = ["Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
                 "AveragePooling2D", "BatchNormalization", "ReLU"]


@st.composite
def stacks(draw):
    shape = (draw(st.integers(6, 40)), draw(st.integers(6, 40)), draw(st.integers(1, 4)))
    layers = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(SPATIAL_KINDS))
        layers.append(Layer(
            kind, filters=draw(st.integers(1, 12)), kernel=draw(st.integers(1, 5)),
            stride=draw(st.integers(1, 3)), padding=draw(st.sampled_from(["same", "valid"])),
            bias=draw(st.booleans()), depth_multiplier=draw(st.integers(1, 2))))
    head = draw(st.sampled_from(["none", "Flatten", "GlobalAveragePooling2D"]))
    if head != "none":
        layers.append(Layer(head))
        for _ in range(draw(st.integers(0, 2))):
            layers.append(Layer("Dense", draw(st.integers(1, 20)), bias=draw(st.booleans())))
    # Normalize fields a kind ignores, so the Keras round trip compares like with like.
    for layer in layers:
        if layer.kind not in ("Conv2D", "SeparableConv2D", "Dense"):
            layer.filters = 0
        if layer.kind not in memory.SPATIAL:
            layer.kernel, layer.stride, layer.padding = 3, 1, "same"
        if layer.kind not in ("DepthwiseConv2D", "SeparableConv2D"):
            layer.depth_multiplier = 1
        if layer.kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            layer.bias = True
    return shape, layers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_random_stacks_match_keras(keras, stack):
    shape, layers = stack
    try:
        memory.analyze(shape, layers)
    except ValueError:
        # Our calculator refuses a stack (a kernel larger than its input): Keras must too.
        with pytest.raises(ValueError):
            memory.to_keras(shape, layers)
        return
    _check_against_keras(shape, layers)


@pytest.mark.parametrize("name", list(memory.PRESETS))
def test_presets_match_keras(keras, name):
    shape, layers = memory.preset(name)
    _check_against_keras(shape, layers)


def test_mobilenet_preset_matches_the_real_mobilenet_v2(keras):
    """The preset's layers are the first blocks of keras.applications.MobileNetV2."""
    real = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    upto = [kl for kl in real.layers[: real.layers.index(real.get_layer("block_2_project_BN")) + 1]
            if type(kl).__name__ not in ("InputLayer", "ZeroPadding2D", "Add")]
    shape, layers = memory.preset("MobileNetV2 first blocks")
    report = memory.analyze(shape, layers)
    assert [type(kl).__name__ for kl in upto] == [layer.kind for layer in layers]
    assert [r.params for r in report.layers] == [kl.count_params() for kl in upto]
    assert [r.output_shape for r in report.layers] == [tuple(kl.output.shape[1:]) for kl in upto]


def test_from_keras_refuses_what_it_cannot_model(keras):
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Add()([inputs, a]))
    with pytest.raises(ValueError, match="Add.*not supported"):
        memory.from_keras(model)
    dilated = keras.Sequential([keras.Input((9, 9, 1)), keras.layers.Conv2D(2, 3, dilation_rate=2)])
    with pytest.raises(ValueError, match="dilated"):
        memory.from_keras(dilated)
