"""Load one photo, whatever a user's camera or disk gives us, into plain RGB.

Training (core.data.folders), the zip import (core.data.zipimport) and prediction
(core.inference.photos) all go through ``load_photo`` then ``model_input``, so a model
sees the same pixels in each. Every failure is a ``PhotoError`` whose message can be
shown to the user as is.

Safety: only the formats the app advertises are ever tried (``FORMATS``), so Pillow's
plugins that run external programs (Ghostscript for EPS, and the like) are never
reached; the image's size is checked before its pixels are decoded, both in pixels and
in the bytes its mode takes once decoded (16-bit and float images weigh more); and the
conversion to 8-bit RGB works in bands, never on a float64 copy of the whole image.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import StudioError

FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")  # the formats the pages name, nothing else
FORMAT_NAMES = "JPEG, PNG, WebP, BMP or GIF"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}  # the photo types the app accepts

MAX_BYTES = 25 * 1024 * 1024  # per photo; the upload widget allows more in total
MAX_PIXELS = 60_000_000  # decoded pixels after draft(); beyond this we refuse (bomb)
MAX_DECODED_BYTES = 3 * MAX_PIXELS  # the same limit in memory: 60 MP of 8-bit RGB
DISPLAY_SIDE = 1024  # photos are kept at most this large: enough to show and to classify
BAND_ROWS = 128  # rows converted at a time for 16-bit, 32-bit and float images

# Bytes one pixel takes once decoded, by Pillow mode (bands x bytes per sample).
_SAMPLE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}


class PhotoError(StudioError):
    """A file that is not a usable photo; the message says why, in plain words."""


def _read_bytes(source: bytes | str | Path | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise PhotoError(_too_big(size, max_bytes))
            data = path.read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
            raise PhotoError(f"cannot read the file ({getattr(exc, 'strerror', None) or exc})") from None
    else:
        data = source.read(max_bytes + 1)
    if not data:
        raise PhotoError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PhotoError(_too_big(len(data), max_bytes))
    return data


def _too_big(size: int, limit: int) -> str:
    return f"the file is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB per photo"


def _reason(exc: BaseException) -> str:
    """A short, one-line reason from whatever Pillow raised."""
    text = " ".join(str(exc).split())[:120]
    return text or type(exc).__name__


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """Bytes an image of this mode and size takes once decoded (samples, not Pillow's padding)."""
    per_pixel = _SAMPLE_BYTES.get(mode, len(mode) if mode.isalpha() else 4)
    return size[0] * size[1] * per_pixel


def _wide_to_l(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit or float grey to 8-bit, scaled (not clipped), a band of rows at a time."""
    low, high = img.getextrema()
    top = 65535.0 if img.mode.startswith("I;16") or (high or 0) > 255 else 255.0
    width, height = img.size
    out = Image.new("L", img.size)
    for y in range(0, height, BAND_ROWS):
        band = np.asarray(img.crop((0, y, width, min(height, y + BAND_ROWS))), dtype=np.float32)
        np.nan_to_num(band, copy=False, nan=0.0, posinf=top, neginf=0.0)
        band *= np.float32(255.0 / top)
        np.clip(band, 0, 255, out=band)
        out.paste(Image.fromarray(band.astype(np.uint8), "L"), (0, y))
    return out


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """``img`` no larger than ``max_side`` on its long side (RGBA and LA resize premultiplied)."""
    if max(img.size) > max_side:
        img = img.copy() if img.readonly else img
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return img


def _to_rgb(img: Image.Image, max_side: int) -> Image.Image:
    """Any Pillow mode to 8-bit RGB at most ``max_side`` large; transparency is laid on white.

    The common modes shrink before they convert, so a large photo is never copied
    full-size into RGB (or float): the peak stays near the decoded image itself.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _shrink(_wide_to_l(img), max_side).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGB", "L", "RGBA", "LA"):
        img = _shrink(img, max_side)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return _shrink(white, max_side)
    return _shrink(img.convert("RGB"), max_side)


def open_image(data: bytes, *, max_side: int = DISPLAY_SIDE, max_pixels: int = MAX_PIXELS,
               max_decoded_bytes: int = MAX_DECODED_BYTES) -> Image.Image:
    """The first frame of ``data`` decoded (not yet converted), after every size check.

    JPEGs are decoded at reduced scale (``draft``) when larger than ``max_side``.
    """
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"the image is too large to open safely ({_reason(exc)})") from None
    except UnidentifiedImageError:
        raise PhotoError(f"this is not an image we can read (use {FORMAT_NAMES})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for a damaged header
        raise PhotoError(f"the image is damaged or incomplete ({_reason(exc)})") from None
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft(None, (max_side, max_side))  # DCT scaling: decode 1/2, 1/4 or 1/8 size
        width, height = img.size
        if width * height > max_pixels:
            raise PhotoError(f"the image declares {width}x{height} pixels "
                             f"({width * height / 1e6:.0f} megapixels); the limit is "
                             f"{max_pixels / 1e6:.0f} megapixels")
        weight = decoded_bytes(img.mode, img.size)
        if weight > max_decoded_bytes:
            raise PhotoError(f"the image would take {weight / 2**20:.0f} MB once decoded "
                             f"({width}x{height}, {img.mode}); the limit is "
                             f"{max_decoded_bytes / 2**20:.0f} MB")
        img.seek(0)  # first frame of an animation
        img.load()
        return img
    except PhotoError:
        img.close()
        raise
    except Image.DecompressionBombError as exc:
        img.close()
        raise PhotoError(f"the image is too large to open safely ({_reason(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a damaged file
        img.close()
        raise PhotoError(f"the image is damaged or incomplete ({_reason(exc)})") from None


def load_photo(source: bytes | str | Path | BinaryIO, *, max_side: int = DISPLAY_SIDE,
               max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
               max_decoded_bytes: int = MAX_DECODED_BYTES) -> Image.Image:
    """Decode one photo to an RGB image no larger than ``max_side`` on its long side.

    EXIF orientation is applied, animations give their first frame, large JPEGs are
    decoded at reduced scale (``draft``), and images declaring more than ``max_pixels``
    (or ``max_decoded_bytes`` in their own mode) after that are refused before decoding.
    """
    data = _read_bytes(source, max_bytes)
    img = open_image(data, max_side=max_side, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes)
    try:
        with img:
            ImageOps.exif_transpose(img, in_place=True)  # no copy when nothing turns
            return _to_rgb(img, max_side)
    except PhotoError:
        raise
    except MemoryError:
        raise PhotoError("the image is too large to convert with the memory this server has") from None
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block or frame is a damaged file
        raise PhotoError(f"the image is damaged or incomplete ({_reason(exc)})") from None


def check_photo(path: str | Path) -> str | None:
    """None when ``path`` is a photo ``load_photo`` accepts, else the reason it is not."""
    try:
        load_photo(path, max_side=64)
    except PhotoError as exc:
        return str(exc)
    return None


def model_input(img: Image.Image, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 array a model takes: the whole photo, squeezed square."""
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
