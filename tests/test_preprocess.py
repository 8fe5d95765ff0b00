"""canvas_to_mnist: a drawing becomes an MNIST-like 28x28 digit, wherever and however big it is drawn."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data.canvas import BOX, SIZE, canvas_to_mnist, ink, ink_extent, stroke_width
from tests.fixtures.drawing import canvas_with

# Mean absolute difference allowed between two drawings of the same digit. Shifting
# the reference 28x28 image by ONE pixel already costs about 0.05 and a different
# digit (bar vs 7) about 0.09, so 0.04 means "closer than a one-pixel misplacement";
# the test checks both of those facts too, so the bound stays meaningful.
SAME_DIGIT_BOUND = 0.04


def mad(a, b):
    return float(np.abs(a - b).mean())


def blank(h=280, w=280):
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 3] = 255  # the canvas alpha is 255 everywhere
    return img


def centre_of_mass(img):
    rows, cols = np.indices(img.shape)
    return (rows * img).sum() / img.sum(), (cols * img).sum() / img.sum()


@pytest.mark.parametrize("variant", [
    dict(scale=0.5, width=10),                   # small
    dict(scale=0.5, width=20),                   # small, same brush: bolder strokes
    dict(scale=1.4, width=28),                   # large
    dict(scale=1.4, width=20),                   # large, same brush: thinner strokes
    dict(dx=60, dy=-25),                         # off-centre
    dict(scale=0.4, dx=-100, dy=-90, width=8),   # in the top-left corner
])
def test_same_digit_anywhere_gives_nearly_the_same_image(variant):
    reference = canvas_to_mnist(canvas_with(7))
    image = canvas_to_mnist(canvas_with(7, **variant))
    assert image.shape == (SIZE, SIZE) and image.dtype == np.float32
    assert mad(reference, image) < SAME_DIGIT_BOUND
    # The bound is tighter than a one-pixel shift and well below a different digit.
    assert mad(reference, np.roll(reference, 1, axis=1)) > SAME_DIGIT_BOUND
    assert mad(reference, canvas_to_mnist(canvas_with(1))) > 2 * SAME_DIGIT_BOUND


def test_digit_is_fit_to_20px_box_and_centred_by_mass():
    image = canvas_to_mnist(canvas_with(0, scale=0.6, dx=70, dy=50))
    rows = np.flatnonzero((image > 0.1).any(axis=1))
    cols = np.flatnonzero((image > 0.1).any(axis=0))
    assert rows[-1] - rows[0] + 1 == BOX  # the ring is taller than wide: its height is 20
    assert cols[-1] - cols[0] + 1 < BOX  # and the aspect ratio is kept
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # where MNIST's centres of mass lie
    assert image.max() == pytest.approx(1.0) and image.min() >= 0.0


def test_empty_canvas_gives_none():
    assert canvas_to_mnist(blank()) is None
    assert canvas_to_mnist(np.zeros((280, 280, 4), np.uint8)) is None  # transparent black too


def test_ink_is_read_from_rgb_not_alpha():
    img = blank()
    img[100:180, 130:150, :3] = 255
    assert ink(img)[140, 140] == 1.0 and ink(img)[10, 10] == 0.0
    image = canvas_to_mnist(img)
    assert image is not None and image.max() == pytest.approx(1.0)


def test_dark_ink_on_light_paper_is_inverted():
    light = 255 - canvas_with(1)
    light[..., 3] = 255
    assert mad(canvas_to_mnist(light), canvas_to_mnist(canvas_with(1))) < 0.01


@pytest.mark.parametrize("where", ["dot", "big_dot", "top_border", "left_border", "corner_pixel"])
def test_dot_and_border_line_do_not_crash(where):
    img = blank()
    if where == "dot":
        img[140, 140, :3] = 255
    elif where == "big_dot":
        img[130:150, 130:150, :3] = 255
    elif where == "top_border":
        img[0:3, :, :3] = 255
    elif where == "left_border":
        img[:, 0:2, :3] = 255
    else:
        img[279, 279, :3] = 255
    image = canvas_to_mnist(img)
    assert image.shape == (SIZE, SIZE)
    assert np.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
    assert image.sum() > 0


def test_stroke_width_measures_a_bar():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 40:52] = True
    assert stroke_width(mask) == pytest.approx(12, rel=0.15)


def test_bad_shapes_are_rejected_clearly():
    with pytest.raises(ValueError, match="expected"):
        canvas_to_mnist(np.zeros((2, 3, 4, 5)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_any_scribble_gives_a_valid_centred_image(h, w, seed):
    rng = np.random.default_rng(seed)
    img = blank(h, w)
    img[..., :3] = (rng.random((h, w, 1)) > 0.7) * rng.integers(0, 256, (h, w, 3))
    image = canvas_to_mnist(img)
    if image is None:
        assert (img[..., :3].mean(axis=-1) <= 25.5).all()  # only when nothing is bright enough
        return
    assert image.shape == (SIZE, SIZE) and 0 <= image.min() and image.max() <= 1 + 1e-6
    cy, cx = centre_of_mass(image)
    # Centred on (14, 14) unless that would push the (<= 20 px) digit out of the image,
    # which can move the centre by at most 6 px (ink at one edge of the box).
    assert abs(cy - 14) <= 6 and abs(cx - 14) <= 6


def test_ink_extent_is_the_longer_side_of_the_ink():
    img = blank()
    assert ink_extent(img) == 0
    img[100:180, 130:150, :3] = 255
    assert ink_extent(img) == 80
