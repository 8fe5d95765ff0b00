"""Inputs that are none of our classes, made here (this machine cannot download any).

Digits: canvas-like 280x280 white-on-black drawings of letters and symbols (PIL fonts),
scribbles, zigzags, shapes and hatching, and dots. Letters that read as digits (O, I, l,
S, Z, B, g, q, b, G, ...) are left out. Photos: checkerboards, stripes, noise, smooth
textures, colour gradients, flat colours, rendered shapes and rendered text.

Every generator is seeded: ``bench.unknown`` picks its method on seed 0 and reports
the rates on seed 1, a different draw of the same kinds.
"""
from __future__ import annotations

import glob

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CANVAS = 280
LETTERS = "ACEFHKMNPRUVWXYacdefhkmnprtuvwxy"
SYMBOLS = "+=#@&%?!*$<>~×÷♥★∞πΩ€¥"
FONTS = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf")
               + glob.glob("/usr/share/fonts/truetype/liberation/*.ttf"))
DIGIT_KINDS = ("letter", "symbol", "scribble", "zigzag", "shape", "hatch", "dot")
PHOTO_KINDS = ("checkerboard", "stripes", "noise", "texture", "gradient", "flat", "shapes", "text")


def _font(rng, size: int):
    for path in rng.permutation(FONTS):
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _points(rng, n, margin=30):
    return [tuple(p) for p in rng.uniform(margin, CANVAS - margin, size=(n, 2))]


def digit_negative(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One 280x280 RGBA canvas drawing (white ink on black) of the given kind."""
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    width = int(rng.uniform(14, 26))
    if kind in ("letter", "symbol"):
        char = str(rng.choice(list(LETTERS if kind == "letter" else SYMBOLS)))
        font = _font(rng, int(rng.uniform(120, 220)))
        draw.text((CANVAS / 2, CANVAS / 2), char, fill=255, font=font, anchor="mm",
                  stroke_width=int(rng.integers(0, 6)), stroke_fill=255)
    elif kind == "scribble":
        pts = [tuple(p) for p in np.cumsum(rng.normal(0, 45, size=(int(rng.integers(10, 25)), 2)), 0)
               + CANVAS / 2]
        draw.line([tuple(np.clip(p, 20, CANVAS - 20)) for p in pts], fill=255, width=width, joint="curve")
    elif kind == "zigzag":
        n = int(rng.integers(5, 10))
        xs = np.linspace(rng.uniform(20, 60), rng.uniform(220, 260), n)
        low, high = rng.uniform(30, 110), rng.uniform(170, 250)
        pts = [(x, high if i % 2 else low) for i, x in enumerate(xs)]
        if rng.random() < 0.5:
            pts = [(y, x) for x, y in pts]
        draw.line(pts, fill=255, width=width, joint="curve")
    elif kind == "shape":
        choice = rng.integers(0, 4)
        if choice == 0:
            box = sorted(rng.uniform(30, 250, 2))
            draw.rectangle([box[0], box[0], box[1] + 10, box[1] + 10], outline=255, width=width)
        elif choice == 1:
            draw.polygon(_points(rng, 3), outline=255, width=width)
        elif choice == 2:
            c, r = CANVAS / 2, rng.uniform(70, 120)
            turn = rng.uniform(0, 1)
            angles = np.linspace(0, 4 * np.pi, 6) + turn
            star = [(c + r * np.cos(a), c + r * np.sin(a)) for a in angles]
            draw.line(star, fill=255, width=width, joint="curve")
        else:
            t = np.linspace(0, rng.uniform(3, 5) * np.pi, 80)
            r = 10 + t * rng.uniform(6, 9)
            draw.line(list(zip(CANVAS / 2 + r * np.cos(t), CANVAS / 2 + r * np.sin(t), strict=True)),
                      fill=255, width=width, joint="curve")
    elif kind == "hatch":
        for i in range(int(rng.integers(3, 6))):
            pos = 50 + i * rng.uniform(35, 50)
            draw.line([(pos, 30), (pos + rng.uniform(-20, 20), 250)], fill=255, width=width)
            if rng.random() < 0.7:
                draw.line([(30, pos), (250, pos + rng.uniform(-20, 20))], fill=255, width=width)
    elif kind == "dot":
        x, y = rng.uniform(40, 240, 2)
        r = width / 2 + rng.uniform(0, 10)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    grey = np.asarray(img)
    return np.dstack([grey, grey, grey, np.full_like(grey, 255)])


def photo_negative(kind: str, rng: np.random.Generator, size: int = 256) -> Image.Image:
    """One RGB picture of the given kind that shows no flower."""
    colour = lambda: tuple(int(c) for c in rng.integers(0, 256, 3))  # noqa: E731
    if kind == "checkerboard":
        cell = int(rng.integers(8, 64))
        yy, xx = np.indices((size, size)) // cell
        mask = ((yy + xx) % 2).astype(bool)
        arr = np.where(mask[..., None], np.array(colour()), np.array(colour()))
        return Image.fromarray(arr.astype(np.uint8))
    if kind == "stripes":
        period = rng.uniform(6, 60)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.indices((size, size))
        wave = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0)[..., None]
        return Image.fromarray(np.where(wave, np.array(colour()), np.array(colour())).astype(np.uint8))
    if kind == "noise":
        arr = rng.integers(0, 256, (size, size, 3)) if rng.random() < 0.5 else \
            np.clip(rng.normal(128, 60, (size, size, 1)) + rng.normal(0, 30, 3), 0, 255)
        return Image.fromarray(arr.astype(np.uint8))
    if kind == "texture":
        small = rng.integers(0, 256, (int(rng.integers(4, 32)),) * 2 + (3,)).astype(np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 3)))
    if kind == "gradient":
        a, b = np.array(colour(), float), np.array(colour(), float)
        yy, xx = np.indices((size, size)) / (size - 1)
        t = xx if rng.random() < 0.5 else np.hypot(xx - 0.5, yy - 0.5) * 1.4
        return Image.fromarray((a + (b - a) * np.clip(t, 0, 1)[..., None]).astype(np.uint8))
    if kind == "flat":
        return Image.new("RGB", (size, size), colour())
    if kind == "shapes":
        img = Image.new("RGB", (size, size), colour())
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 8))):
            x0, y0 = rng.uniform(0, size * 0.8, 2)
            w, h = rng.uniform(size * 0.1, size * 0.6, 2)
            box = [x0, y0, x0 + w, y0 + h]
            getattr(draw, str(rng.choice(["rectangle", "ellipse"])))(box, fill=colour())
        return img
    if kind == "text":
        img = Image.new("RGB", (size, size), colour())
        draw = ImageDraw.Draw(img)
        words = ["hello", "CNN", "Studio", "photo", "the quick brown fox", "2026", "STOP", "menu", "λ=0.1"]
        for i in range(int(rng.integers(1, 5))):
            draw.text((rng.uniform(5, size * 0.5), 20 + i * size / 5), str(rng.choice(words)),
                      fill=colour(), font=_font(rng, int(rng.uniform(18, 60))))
        return img
    raise ValueError(f"unknown kind {kind!r}")


def digit_negatives(per_kind: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    images, kinds = [], []
    for kind in DIGIT_KINDS:
        for _ in range(per_kind):
            images.append(digit_negative(kind, rng))
            kinds.append(kind)
    return images, kinds


def photo_negatives(per_kind: int, seed: int) -> tuple[list[Image.Image], list[str]]:
    rng = np.random.default_rng(seed)
    images, kinds = [], []
    for kind in PHOTO_KINDS:
        for _ in range(per_kind):
            images.append(photo_negative(kind, rng))
            kinds.append(kind)
    return images, kinds
