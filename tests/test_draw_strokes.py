"""Never lose a stroke: quick strokes right after Clear, a model switch, a stroke-width change,
and starting in the canvas's top-right corner (where the component's hidden toolbar used to sit).

Each stroke must be kept on the canvas and predicted: the page must show the digit it makes.
"""
from __future__ import annotations

import pytest

from core import machine as system
from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

REPEATS = 20
ONE = [(150, 45), (140, 240)]
SEVEN = [(85, 55), (200, 55), (120, 240)]
CORNER_ONE = [(272, 6), (262, 270)]  # starts in the top-right band
PROMPT = "Draw a digit on the black canvas"


@pytest.fixture
def draw_page(page, streamlit_server):
    if len([m for m in system.models("mnist") if m.ok]) < 2:
        pytest.skip("needs two MNIST models (assets/models)")
    page.goto(streamlit_server["url"] + "/draw")
    wait_for_app(page)
    page.get_by_text(PROMPT).wait_for()
    page.locator("canvas.upper-canvas >> visible=true").wait_for()
    page.get_by_role("button", name="Clear").wait_for()
    # the canvas tools have hooked into the canvas (toolbar hidden, strokes guarded)
    page.wait_for_function("() => window.__cnnStudioCanvas && window.__cnnStudioCanvas.ready")
    return page


def stroke(page, points):
    box = page.locator("canvas.upper-canvas >> visible=true").bounding_box()
    x, y = points[0]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
    page.mouse.up()


def expect_digit(page, digit: int, name: str, i: int) -> None:
    main = page.locator("[data-testid='stMain']")
    try:
        main.get_by_text(f"Prediction: {digit}").wait_for(timeout=60_000)  # the first ensemble load is slow
    except Exception:
        screenshot(page, f"lost_stroke_{name}_{i}")
        raise AssertionError(f"{name} #{i}: the stroke for {digit} was lost or not predicted") from None


def ink_at(page, x: int, y: int) -> int:
    """The brightest red value on the drawn canvas within 3 px of (x, y), 0..255."""
    return page.locator("canvas.dc-canvas.lower-canvas >> visible=true").evaluate(
        """(c, [x, y]) => {
             const r = window.devicePixelRatio || 1;
             const d = c.getContext("2d").getImageData((x - 3) * r, (y - 3) * r, 7 * r, 7 * r).data;
             let best = 0;
             for (let i = 0; i < d.length; i += 4) best = Math.max(best, d[i]);
             return best;
           }""", [x, y])


def expect_whole_stroke(page, points, name: str, i: int) -> None:
    """Every corner of the stroke, its first point included, is inked on the canvas."""
    for x, y in points:
        if ink_at(page, x, y) < 128:
            screenshot(page, f"broken_stroke_{name}_{i}")
            raise AssertionError(f"{name} #{i}: the stroke has no ink at {(x, y)}: its start was lost")


def ink_width(page, y: int) -> int:
    """How many pixels of row y are inked on the drawn canvas (the stroke's thickness there)."""
    return page.locator("canvas.dc-canvas.lower-canvas >> visible=true").evaluate(
        """(c, y) => {
             const r = window.devicePixelRatio || 1;
             const d = c.getContext("2d").getImageData(0, y * r, c.width, 1).data;
             let n = 0;
             for (let i = 0; i < d.length; i += 4) n += d[i] >= 128;
             return n / r;
           }""", y)


def clear_and_wait(page) -> None:
    page.get_by_role("button", name="Clear").click()
    page.get_by_text(PROMPT).wait_for()


def test_strokes_right_after_clear_are_kept(draw_page):
    page = draw_page
    stroke(page, ONE)
    expect_digit(page, 1, "clear", 0)
    for i in range(REPEATS):
        page.get_by_role("button", name="Clear").click()
        page.wait_for_timeout(50)
        digit, points = (7, SEVEN) if i % 2 == 0 else (1, ONE)
        stroke(page, points)
        expect_digit(page, digit, "clear", i)
        expect_whole_stroke(page, points, "clear", i)


def test_strokes_right_after_a_model_switch_are_kept(draw_page):
    page = draw_page
    picker = page.get_by_test_id("stSelectbox").get_by_role("combobox")
    options = [m.label() for m in system.models("mnist") if m.ok][:2]
    for i in range(REPEATS):
        clear_and_wait(page)
        picker.click()
        page.get_by_role("option", name=options[(i + 1) % 2]).click()
        page.wait_for_timeout(50)
        digit, points = (7, SEVEN) if i % 2 == 0 else (1, ONE)
        stroke(page, points)
        expect_digit(page, digit, "model", i)
        assert picker.input_value() == options[(i + 1) % 2]


def test_strokes_right_after_a_stroke_width_change_are_kept(draw_page):
    """Thin, thick, thin...: each stroke is whole and drawn at the width just chosen."""
    page = draw_page
    thumb = page.get_by_role("slider", name="Stroke width")
    for i in range(REPEATS):
        clear_and_wait(page)
        thumb.focus()
        thick = i % 2 == 0
        page.keyboard.press("End" if thick else "Home")  # 40 px or 8 px
        page.wait_for_timeout(50)
        digit, points = (7, SEVEN) if thick else (1, ONE)  # not the digit still shown from before
        stroke(page, points)
        expect_digit(page, digit, "width", i)
        expect_whole_stroke(page, points, "width", i)
        width = ink_width(page, 150)
        if not (30 <= width <= 50 if thick else 4 <= width <= 14):
            screenshot(page, f"stroke_width_{i}")
            wanted = 40 if thick else 8
            raise AssertionError(f"width #{i}: the stroke is {width} px wide, not {wanted} px")


def test_strokes_starting_in_the_top_right_corner_are_kept(draw_page):
    page = draw_page
    for i in range(REPEATS):
        clear_and_wait(page)
        page.mouse.move(10, 10)  # come from outside the canvas, no hover first
        stroke(page, CORNER_ONE)
        expect_digit(page, 1, "corner", i)
