"""The Theory page through AppTest: every section renders and shows the core's numbers."""
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import config
from core.learn import theory

TIMEOUT = 180
DATA = config.PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture
def at(monkeypatch):
    if DATA.is_dir():  # MNIST digits and MobileNetV2 weights for sections 3, 4 and 6
        monkeypatch.setenv(config.DATA_ENV, str(DATA))
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/theory.py").run()
    assert not at.exception
    return at


_SECTIONS = theory.SECTIONS


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_dense_vs_conv_follows_the_inputs(at):
    assert at.radio(key="theory_section").options == _SECTIONS
    assert _metrics(at)["Conv layer parameters"] == "320"
    at.number_input(key="t1_h").set_value(100).run()
    counts = theory.dense_vs_conv(100, 28, 1, 32, 3)
    assert _metrics(at)["Dense layer parameters"] == f"{counts['dense']:,}"


def test_convolution_shape_follows_stride_and_padding(at):
    at.radio(key="theory_section").set_value(_SECTIONS[1]).run()
    at.selectbox(key="t2_src").set_value("Shapes")
    at.slider(key="t2_stride").set_value(3)
    at.radio(key="t2_pad").set_value("valid").run()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "by the rule: **21**; computed by TensorFlow: **21**" in text  # (64 - 3) // 3 + 1


def test_convolution_can_use_the_drawing_from_the_draw_page(at):
    at.radio(key="theory_section").set_value(_SECTIONS[1]).run()
    assert "Your drawing" not in at.selectbox(key="t2_src").options
    drawing = np.zeros((28, 28), np.float32)
    drawing[4:24, 13:15] = 1.0  # a "1"
    at.session_state["last_drawing"] = drawing
    at.run()
    assert at.selectbox(key="t2_src").options[0] == "Your drawing"
    at.selectbox(key="t2_src").set_value("Your drawing")
    at.slider(key="t2_stride").set_value(2)
    at.radio(key="t2_pad").set_value("same").run()
    assert not at.exception
    assert "by the rule: **14**; computed by TensorFlow: **14**" in "\n".join(m.value for m in at.markdown)


def test_pooling_experiment_shows_the_core_values(at):
    at.radio(key="theory_section").set_value(_SECTIONS[2]).run()
    shown = at.dataframe[0].value
    expected = theory.shift_experiment(theory.sample_digits(16), theory.KERNELS["Vertical edges (Sobel x)"],
                                       (1, 2, 3))
    np.testing.assert_allclose(shown["relative change"], [r["relative change"] for r in expected])
    pooled, strided = shown["relative change"][:3], shown["relative change"][3:]
    assert (pooled.to_numpy() < strided.to_numpy()).all()


def test_lrn_architectures_fcn_and_segmentation_render(at):
    at.radio(key="theory_section").set_value(_SECTIONS[3]).run()
    assert not at.exception
    if not at.error:  # without weights (no data, no internet) the section says so
        assert float(_metrics(at)["Mean scale factor on active units"]) < 1
    at.radio(key="theory_section").set_value(_SECTIONS[4]).run()
    table = at.table[0].value  # a static table, so the "idea" column wraps instead of being cut
    assert list(table.index) == ["AlexNet", "GoogLeNet", "ResNet", "Xception", "SENet"]
    assert table["params"].iloc[0] == "62,378,344"
    assert table["idea"].iloc[1].endswith("1x1 bottlenecks")
    at.radio(key="theory_section").set_value(_SECTIONS[5]).run()
    assert not at.exception
    assert float(_metrics(at)["Largest |dense - conv| output difference"]) < 1e-5
    at.radio(key="theory_section").set_value(_SECTIONS[6]).run()
    at.select_slider(key="t7_stride").set_value(32).run()
    mask = theory.digit_mask(theory.sample_digits(1)[0])
    assert _metrics(at)["IoU with the true mask"] == f"{theory.iou(theory.coarse_mask(mask, 32), mask):.3f}"
    if not theory.coarse_mask(mask, 32).any():  # the empty mask is explained, not left black
        assert any("all background" in i.value for i in at.info)
    rf = at.dataframe[1].value
    assert list(rf["receptive field (measured)"]) == [9, 31]


@pytest.fixture
def at_without_data(isolated):
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/theory.py").run()
    assert not at.exception
    return at, isolated["data"]


def test_every_section_works_or_explains_itself_without_data(at_without_data):
    at, data = at_without_data
    for section in _SECTIONS:
        at.radio(key="theory_section").set_value(section).run()
        assert not at.exception and not at.error, section
    at.radio(key="theory_section").set_value(_SECTIONS[1]).run()
    assert "MNIST digit" not in at.selectbox(key="t2_src").options
    # Section 3 says what it really shows, and where MNIST goes.
    at.radio(key="theory_section").set_value(_SECTIONS[2]).run()
    text = "\n".join(m.value for m in at.markdown)
    assert "16 MNIST digits" not in text and "drawn shape" in text
    (info,) = at.info
    assert str(data / "mnist") in info.value and "train-images-idx3-ubyte.gz" in info.value
    # Sections 4 and 6 name the file they need instead of failing.
    at.radio(key="theory_section").set_value(_SECTIONS[3]).run()
    assert theory.LRN_WEIGHTS in at.info[0].value and str(data / "imagenet") in at.info[0].value
    at.radio(key="theory_section").set_value(_SECTIONS[5]).run()
    assert str(data / "mnist") in at.info[0].value and not at.metric
