"""The Classify page: several uploads (one broken), top-k bars, Grad-CAM; and in a real browser."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

import core

core.import_tensorflow()
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.inference import photos as classify
from core.models import transfer
from tests.conftest import screenshot, wait_for_app

CLASSES = ["blue", "green", "red"]


def png(colour=(220, 40, 40), size=(80, 60), fmt="PNG") -> bytes:
    img = Image.new("RGB", size, (20, 20, 20))
    ImageDraw.Draw(img).ellipse([(10, 10), (60, 50)], fill=colour)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def image_model(isolated):
    """A small untrained image model with its card, as the only shipped model."""
    model = transfer.build_model("tiny_cnn", len(CLASSES), 64, weights=None)
    model.save(isolated["models"] / "shapes.keras")
    card = {"name": "shapes", "task": "image", "model_file": "shapes.keras", "title": "Shapes test model",
            "classes": CLASSES, "input_shape": [64, 64, 3], "metrics": {"test_accuracy": 0.5}}
    (isolated["models"] / "shapes.card.json").write_text(json.dumps(card))
    return model


def test_classify_photo_top_k_and_errors(image_model, isolated):
    served = classify.load(isolated["models"] / "shapes.keras")
    result = classify.classify_photo(served, "a.png", png(), k=2)
    assert result.ok and result.image.size == (80, 60) and len(result.top) == 2
    assert result.top[0][1] >= result.top[1][1] and {n for n, _ in result.top} <= set(CLASSES)
    bad = classify.classify_photo(served, "b.jpg", b"not a photo")
    assert not bad.ok and bad.error.startswith("b.jpg: this is not an image")
    assert classify.top_k(np.array([0.1, 0.7, 0.2]), CLASSES, 2) == [("green", 0.7), ("red", 0.2)]
    overlay = classify.explain(image_model, result.image)
    assert overlay.size == result.image.size
    assert not np.array_equal(np.asarray(overlay), np.asarray(result.image))


def _page(**kwargs) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/classify.py")
    return at.run()


def test_page_classifies_several_uploads_one_broken(image_model):
    at = _page()
    assert not at.exception
    assert "Shapes test model" in at.selectbox(key="classify_model").options[0]
    at.file_uploader(key="classify_uploads").set_value([
        ("red.png", png(), "image/png"),
        ("notes.jpg", b"this is a text file", "image/jpeg"),
        ("green.jpg", png((40, 200, 40), fmt="JPEG"), "image/jpeg"),
    ]).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "notes.jpg" in errors[0] and "not an image" in errors[0]
    headings = [m.value for m in at.markdown if m.value.startswith("####")]
    assert len(headings) == 2 and all(any(c.capitalize() in h for c in CLASSES) for h in headings)
    assert len(at.get("plotly_chart")) == 2
    captions = [c.value for c in at.caption]
    assert "red.png" in captions and "green.jpg" in captions

    assert len(at.get("image")) == 2 and not any("Grad-CAM" in str(i.proto) for i in at.get("image"))
    at.toggle(key="cam_0").set_value(True).run()
    assert not at.exception
    images = at.get("image")
    assert any("Grad-CAM" in str(img.proto) for img in images)


def test_page_without_image_models_says_so(isolated):
    at = _page()
    assert not at.exception
    assert any("No image model found" in e.value for e in at.error)


@pytest.mark.browser
def test_browser_upload_shows_prediction(page, streamlit_server, tmp_path):
    shipped = json.loads(next((PROJECT_ROOT / "assets" / "models").glob("flowers*.card.json")).read_text())
    photo = tmp_path / "yellow_flower.jpg"
    photo.write_bytes(png((250, 210, 20), size=(320, 240), fmt="JPEG"))
    page.goto(streamlit_server["url"] + "/classify")
    wait_for_app(page)
    page.get_by_text("Classify a photo").first.wait_for()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    heading = page.locator("h4").first
    heading.wait_for(timeout=90_000)
    text = heading.inner_text()
    # a yellow blob is no flower: the shipped model's unknown check may say so instead of a label
    assert any(c.replace("_", " ").capitalize() in text for c in shipped["classes"]) or \
        text.startswith("This doesn't look like any of: " + ", ".join(shipped["classes"]))
    page.get_by_text("Show where the network looked").first.click()
    page.get_by_text("Grad-CAM for").first.wait_for(timeout=60_000)
    page.get_by_text("Computing Grad-CAM").wait_for(state="detached", timeout=60_000)
    wait_for_app(page)
    screenshot(page, "classify_page")
