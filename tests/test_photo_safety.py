"""The photo loader against hostile files (issue 15, cases 2, 3 and 7).

Only ``PhotoError`` may leave ``load_photo``, whatever the bytes; no external program
(Ghostscript) may start; a small 16-bit file may not cost a float64 copy of itself.
"""
from __future__ import annotations

import io
import struct
import subprocess
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from core.data.photo import PhotoError, check_photo, load_photo


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _seeds() -> list[bytes]:
    """Small valid files in every advertised format and the awkward modes."""
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 255, (9, 7, 4), dtype=np.uint8), "RGBA")
    grey16 = Image.fromarray(rng.integers(0, 65535, (10, 10), dtype=np.uint16))
    pal = rgb.convert("P")
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        _encode(rgb, "PNG"), _encode(rgba, "PNG"), _encode(grey16, "PNG"),
        _encode(pal, "PNG", transparency=0), _encode(rgb, "JPEG", exif=exif.tobytes()),
        _encode(rgb, "JPEG", progressive=True), _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        _encode(rgb, "BMP"), _encode(pal, "BMP"), _encode(rgb, "WEBP"),
        _encode(rgba, "WEBP", lossless=True),
    ]


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # flip a few bytes
        for _ in range(rng.integers(1, 8)):
            buf[rng.integers(0, len(buf))] = rng.integers(0, 256)
    elif kind == 1:  # truncate
        del buf[rng.integers(1, len(buf)):]
    elif kind == 2:  # insert random bytes
        at = rng.integers(0, len(buf))
        buf[at:at] = rng.integers(0, 256, rng.integers(1, 16), dtype=np.uint8).tobytes()
    else:  # overwrite a 4-byte field (sizes, lengths) with an extreme value
        at = rng.integers(0, max(1, len(buf) - 4))
        buf[at:at + 4] = struct.pack(">I", int(rng.choice([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
    return bytes(buf)


@pytest.mark.filterwarnings("ignore")
def test_fuzzed_files_only_ever_raise_photo_error():
    rng = np.random.default_rng(15)
    seeds = _seeds()
    outcomes = {"ok": 0, "refused": 0}
    start = time.monotonic()
    for i in range(12_000):
        data = _mutate(seeds[i % len(seeds)], rng)
        try:
            out = load_photo(data)
        except PhotoError as exc:
            assert str(exc) and "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert out.mode == "RGB"
            outcomes["ok"] += 1
    assert outcomes["ok"] > 100 and outcomes["refused"] > 100, outcomes  # both paths exercised
    assert time.monotonic() - start < 120


def _png(ihdr: bytes, *chunks: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(chunks)


def test_text_chunk_inflating_past_pillows_limit_is_a_photo_error():
    ztxt = b"comment\0\0" + zlib.compress(b"a" * (8 * 2**20))  # 8 MB of text in 8 KB
    data = _png(struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0), _chunk(b"zTXt", ztxt),
                _chunk(b"IDAT", zlib.compress(b"\0" * 20)), _chunk(b"IEND", b""))
    with pytest.raises(PhotoError):
        load_photo(data)
    iccp = b"icc\0\0" + zlib.compress(b"\0" * (64 * 2**20))
    data = _png(struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0), _chunk(b"iCCP", iccp),
                _chunk(b"IDAT", zlib.compress(b"\0" * 20)), _chunk(b"IEND", b""))
    try:
        load_photo(data)  # Pillow may skip the profile; it must not raise anything else
    except PhotoError:
        pass


def test_truncated_ihdr_is_a_photo_error():
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", b"\0\0\0\4\0")  # 5 of its 13 bytes
    with pytest.raises(PhotoError):
        load_photo(data)


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\n"
       b"{ } loop\nshowpage\n%%EOF\n")


def test_no_external_program_starts_for_an_eps_renamed_png(tmp_path, monkeypatch):
    started = []

    class NoProcess:
        def __init__(self, *args, **kwargs):
            started.append(args[0] if args else kwargs.get("args"))
            raise OSError("no process may start while loading a photo")

    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")  # as if Ghostscript were installed
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    path = tmp_path / "holiday.png"
    path.write_bytes(EPS)
    with pytest.raises(PhotoError, match="not an image we can read"):
        load_photo(path)
    assert check_photo(path) is not None
    with pytest.raises(PhotoError):
        load_photo(EPS)
    assert started == []


def test_16_bit_image_is_converted_without_a_float64_copy():
    side = 2000  # 4 Mpx of 16-bit grey: 8 MB decoded, 32 MB as float64
    arr = np.repeat(np.linspace(0, 65535, side, dtype=np.uint16)[:, None], side, axis=1)
    data = _encode(Image.fromarray(arr), "PNG")
    del arr
    tracemalloc.start()
    try:
        out = load_photo(data, max_side=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.size == (side, side) and out.getpixel((0, side - 1))[0] == 255
    assert len(data) < 100_000
    assert peak < side * side, f"{peak / 2**20:.0f} MB traced while converting"


def test_wide_modes_are_bounded_by_their_decoded_bytes():
    # 16-bit grey 6000x6000 is 36 Mpx (under the pixel limit) but 72 MB decoded
    ihdr = struct.pack(">IIBBBBB", 6000, 6000, 16, 0, 0, 0, 0)
    data = _png(ihdr, _chunk(b"IDAT", zlib.compress(b"\0" * 100)), _chunk(b"IEND", b""))
    with pytest.raises(PhotoError, match="once decoded"):
        load_photo(data, max_decoded_bytes=64 * 2**20)
