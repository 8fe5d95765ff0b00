"""The Draw page through AppTest: a drawing injected through the canvas key gets predicted."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from core import config
from tests.fixtures.drawing import canvas_png_state, canvas_with, train_shape_model, write_card

TIMEOUT = 120
CANVAS_KEY = "draw_canvas"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "tiny.keras"
    train_shape_model(path)
    return path


@pytest.fixture
def models(isolated, trained):
    """The isolated shipped-models folder holding the tiny shape model and its card."""
    (isolated["models"] / "tiny.keras").write_bytes(trained.read_bytes())
    write_card(isolated["models"], "tiny", "tiny.keras", accuracy=0.9876)
    return isolated["models"]


def open_draw_page(drawing=None, insides=False):
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/draw.py")
    if drawing is not None:
        at.session_state[CANVAS_KEY] = canvas_png_state(drawing)
    at.session_state["draw_insides"] = insides
    return at.run()


def text_of(at):
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def bar_chart(at):
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["data"] and spec["data"][0]["type"] == "bar":
            return spec
    raise AssertionError("no bar chart of probabilities on the page")


@pytest.mark.parametrize("digit", [0, 1, 7])
def test_drawing_is_predicted_with_chart_and_network_view(models, digit):
    at = open_draw_page(canvas_with(digit, scale=0.7, dx=40, dy=-30), insides=True)
    assert not at.exception
    assert f"**Prediction: {digit}** with probability" in text_of(at)
    spec = bar_chart(at)
    probs = spec["data"][0]["y"]
    assert len(probs) == 10 and max(range(10), key=lambda i: probs[i]) == digit
    assert abs(sum(probs) - 1) < 1e-4
    # The 28x28 input, the feature maps of both conv layers, titled by role and shape, and the
    # saliency as a heat overlay with its legend.
    assert len(at.get("image")) == 1
    assert "Layer 1 of 2 · 8 filters · 26×26 — edges and stroke directions" in text_of(at)
    assert "Layer 2 of 2 · 8 filters · 11×11" in text_of(at)
    assert at.session_state["last_drawing"].shape == (28, 28)  # offered to the Theory page
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 4  # probabilities, one grid per conv layer, saliency
    assert charts[-1]["data"][1]["colorbar"]["title"]["text"] == "influence"
    # The picker offers the model with its test accuracy from the card.
    assert "test 98.76%" in at.selectbox(key="draw_model").format_func(0)


def test_empty_canvas_shows_a_prompt_not_an_error(models):
    at = open_draw_page()
    assert not at.exception and not at.error
    assert "Draw a digit on the black canvas" in text_of(at)
    assert "Prediction" not in text_of(at)


def test_network_view_is_built_only_when_asked_for(models):
    at = open_draw_page(canvas_with(1))
    assert "**Prediction: 1**" in text_of(at)
    assert len(at.get("plotly_chart")) == 1 and "Layer 1 of 2" not in text_of(at)


def test_broken_model_file_says_what_is_wrong_and_how_to_fix(isolated):
    (isolated["models"] / "tiny.keras").write_bytes(b"garbage, not a model")
    write_card(isolated["models"], "tiny", "tiny.keras")
    at = open_draw_page(canvas_with(1))
    assert not at.exception
    (error,) = at.error
    assert "cannot read tiny.keras" in error.value
    assert "git checkout assets/models" in error.value and "Train" in error.value


def test_no_model_at_all_says_how_to_get_one(isolated):
    at = open_draw_page(canvas_with(1))
    assert not at.exception
    assert any("git checkout assets/models" in e.value for e in at.error)


def test_low_confidence_says_not_sure(isolated):
    """A model with all-zero weights gives 10% to every digit: the page must not pretend."""
    from tests.fixtures.drawing import tiny_cnn

    model = tiny_cnn("flat")
    model.set_weights([w * 0 for w in model.get_weights()])
    model.save(isolated["models"] / "flat.keras")
    write_card(isolated["models"], "flat", "flat.keras")
    at = open_draw_page(canvas_with(7))
    assert not at.exception
    text = text_of(at)
    assert "Not sure" in text and "**Prediction:" not in text
    probs = bar_chart(at)["data"][0]["y"]
    assert max(probs) < 0.2


def test_a_stray_dot_asks_for_a_larger_digit(models):
    dot = canvas_with(1, scale=0.05)  # a blob no longer than the 20 px brush
    at = open_draw_page(dot)
    assert not at.exception and not at.error
    assert "looks like a dot" in text_of(at)
    assert "Prediction" not in text_of(at)
