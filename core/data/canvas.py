"""Turn a canvas drawing into an MNIST digit.

MNIST digits were size-normalised so the longer side of the ink fits a 20x20
box (anti-aliased, aspect ratio kept) and then placed in a 28x28 image with the
centre of mass at the centre. A drawing is thicker, off-centre and of any size;
doing the same normalisation to it is what makes the network recognise it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 28  # MNIST image side
BOX = 20  # MNIST digits fit a BOX x BOX square inside the SIZE x SIZE image
INK_THRESHOLD = 0.1  # brightness (0..1) above which a pixel counts as ink
# Stroke width, in pixels of the 20 px box, that drawings are brought to before shrinking.
# A canvas brush is fixed in canvas pixels, so a small digit comes out far bolder than
# MNIST's pen. Chosen on the validation slice of the training set with
# `python -m bench.canvas_accuracy --split val --stroke W` (0 turns it off).
STROKE = 3.0
DOT = 2.5  # ink no longer than this many of its own stroke widths is a dot, not a digit


def ink(image: np.ndarray) -> np.ndarray:
    """Brightness of each pixel in [0, 1] as float32: the ink of a white-on-black drawing.

    Accepts grey (H, W), RGB or RGBA, uint8 (0..255) or float (0..1). The canvas
    alpha is 255 everywhere, so ink is read from RGB; a transparent pixel counts
    as black background. Dark ink on a light page is inverted.
    """
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"expected a (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if np.issubdtype(np.asarray(image).dtype, np.integer):
        arr /= 255.0
    if arr.ndim == 2:
        grey = arr
    else:
        grey = arr[..., :3].mean(axis=-1)
        if arr.shape[-1] == 4:
            grey = grey * arr[..., 3]
    grey = np.clip(grey, 0.0, 1.0)
    if np.median(grey) > 0.5:  # a light background: dark strokes are the ink
        grey = 1.0 - grey
    return grey


def grow(grey: np.ndarray, steps: int) -> np.ndarray:
    """Grey dilation (steps > 0) or erosion (steps < 0) by |steps| pixels.

    Square and cross steps alternate, so the brush is round-ish (an octagon).
    Outside the image counts as background.
    """
    op = np.maximum if steps > 0 else np.minimum
    out = grey
    h, w = grey.shape
    for step in range(abs(steps)):
        padded = np.pad(out, 1)
        shifts = [(1, 0), (1, 2), (0, 1), (2, 1)] + ([(0, 0), (0, 2), (2, 0), (2, 2)] if step % 2 else [])
        for dy, dx in shifts:
            out = op(out, padded[dy:dy + h, dx:dx + w])
    return out


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: its area over half its boundary length."""
    boundary = mask & ~(grow(mask.astype(np.float32), -1) > 0)
    return 2.0 * mask.sum() / max(1, boundary.sum())


def _crop(grey: np.ndarray) -> np.ndarray | None:
    """The bounding box of the ink, or None when there is none."""
    mask = grey > INK_THRESHOLD
    if not mask.any():
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _normalise_stroke(crop: np.ndarray, stroke: float, box: int) -> np.ndarray:
    """Thin or thicken the strokes so that, once shrunk to the box, they are ``stroke`` px wide."""
    mask = crop > 0.5
    if not mask.any():
        return crop
    target = stroke * max(crop.shape) / box
    steps = round((target - stroke_width(mask)) / 2)  # pixels to add (or remove) on each side
    if steps > 0:
        return _crop(grow(np.pad(crop, steps), steps))
    if steps < 0:
        thinner = grow(crop, steps)
        if (thinner > 0.5).sum() >= 0.3 * mask.sum():  # never erode a digit away
            return _crop(thinner) if thinner.max() > INK_THRESHOLD else crop
    return crop


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels, aspect ratio kept, anti-aliased."""
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # LANCZOS on a float image averages over the whole footprint when shrinking.
    small = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.LANCZOS))
    return np.clip(small, 0.0, 1.0)


def _paste_centred(digit: np.ndarray, size: int) -> np.ndarray:
    """Place ``digit`` in a size x size image with its centre of mass at the centre."""
    h, w = digit.shape
    total = digit.sum()
    rows, cols = np.indices(digit.shape)
    cy = (rows * digit).sum() / total if total > 0 else (h - 1) / 2
    cx = (cols * digit).sum() / total if total > 0 else (w - 1) / 2
    centre = size / 2  # MNIST: the mean centre of mass of its digits is at (14.0, 14.0)
    # Integer shift, kept inside the image so a lopsided digit is never cut off.
    top = int(np.clip(round(centre - cy), 0, size - h))
    left = int(np.clip(round(centre - cx), 0, size - w))
    out = np.zeros((size, size), np.float32)
    out[top:top + h, left:left + w] = digit
    return out


def ink_extent(image: np.ndarray) -> int:
    """The longer side, in pixels, of the ink's bounding box (0 for an empty canvas).

    A page compares it with the brush width to tell a stray dot from a digit.
    """
    crop = _crop(ink(image))
    return 0 if crop is None else max(crop.shape)


def thickness(mask: np.ndarray) -> int:
    """The width of the thickest stroke of a binary shape: twice the erosions it survives.

    For a brush dab that is the brush's diameter; for a digit, its pen's width.
    """
    shape = mask.astype(np.float32)
    steps = 0
    while shape.max() > 0.5:
        shape = grow(shape, -1)
        steps += 1
    return 2 * steps


def is_dot(image: np.ndarray) -> bool:
    """True when the ink is a dot or a short dab rather than a digit.

    The ink's longer side is compared with its own stroke width (measured, not the
    brush setting), so a drawing from any canvas or brush is judged the same way.
    """
    crop = _crop(ink(image))
    if crop is None:
        return False
    return max(crop.shape) < DOT * thickness(crop > 0.5)


def canvas_to_mnist(image: np.ndarray, box: int = BOX, stroke: float = STROKE) -> np.ndarray | None:
    """A drawing (canvas RGBA, RGB or grey) as a 28x28 float32 MNIST image in [0, 1].

    Returns None when there is no ink (an empty canvas).
    """
    crop = _crop(ink(image))
    if crop is None:
        return None
    if stroke:
        crop = _normalise_stroke(crop, stroke, box)
    digit = _fit_box(crop, box)
    peak = digit.max()
    if peak > 0:  # a thin stroke shrinks to grey: restore full-strength ink like MNIST's
        digit = digit / peak
    return _paste_centred(digit, SIZE)
