"""Load one photo, whatever a user's camera or disk gives us, into plain RGB.

Training (core.data.folders) and prediction (core.inference.photos) both go through
``load_photo`` then ``model_input``, so a model sees the same pixels in both.
Every failure is a ``PhotoError`` whose message can be shown to the user as is.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import StudioError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}  # the photo types the app accepts

MAX_BYTES = 25 * 1024 * 1024  # per photo; the upload widget allows more in total
MAX_PIXELS = 60_000_000  # decoded pixels after draft(); beyond this we refuse (bomb)
DISPLAY_SIDE = 1024  # photos are kept at most this large: enough to show and to classify


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
        except OSError as exc:
            raise PhotoError(f"cannot read the file ({exc.strerror or exc})") from None
    else:
        data = source.read(max_bytes + 1)
    if not data:
        raise PhotoError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PhotoError(_too_big(len(data), max_bytes))
    return data


def _too_big(size: int, limit: int) -> str:
    return f"the file is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB per photo"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is laid on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and 32-bit grey: scale to 0-255 instead of clipping to it.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def load_photo(source: bytes | str | Path | BinaryIO, *, max_side: int = DISPLAY_SIDE,
               max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode one photo to an RGB image no larger than ``max_side`` on its long side.

    EXIF orientation is applied, animations give their first frame, large JPEGs are
    decoded at reduced scale (``draft``), and images declaring more than ``max_pixels``
    after that are refused before decoding (decompression bombs).
    """
    data = _read_bytes(source, max_bytes)
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"the image is too large to open safely ({exc})") from None
    except UnidentifiedImageError:
        raise PhotoError("this is not an image we can read (use JPEG, PNG, WebP, BMP or GIF)") from None
    except OSError as exc:
        raise PhotoError(f"the image is damaged or incomplete ({exc})") from None
    with img:
        if img.format == "JPEG":
            img.draft(None, (max_side, max_side))  # DCT scaling: decode 1/2, 1/4 or 1/8 size
        width, height = img.size
        if width * height > max_pixels:
            raise PhotoError(f"the image declares {width}x{height} pixels "
                             f"({width * height / 1e6:.0f} megapixels); the limit is "
                             f"{max_pixels / 1e6:.0f} megapixels")
        try:
            img.seek(0)  # first frame of an animation
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise PhotoError(f"the image is damaged or incomplete ({exc})") from None
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return img


def model_input(img: Image.Image, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 array a model takes: the whole photo, squeezed square."""
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
