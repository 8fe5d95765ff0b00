"""The photo loader on every awkward kind of file a user may upload."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data.photo import PhotoError, load_photo, model_input


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def halves(size=(40, 20), left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    img = Image.new("RGB", size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    return img


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares a huge size, with one tiny compressed row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
            + chunk(b"IEND", b""))


def test_exif_orientation_applied():
    img = halves()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = load_photo(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.size == (20, 40)
    arr = np.asarray(out, int)
    assert arr[5, 10, 0] > 200 and arr[5, 10, 2] < 60  # left half (red) is now on top
    assert arr[35, 10, 2] > 200


def test_rgba_composited_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    out = load_photo(encode(img, "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 255, 255) and out.getpixel((0, 0)) == (255, 0, 0)


def test_palette_with_transparency():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    out = load_photo(encode(img, "PNG", transparency=0))
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 1)) == (0, 255, 0)


def test_grayscale_and_cmyk_become_rgb():
    grey = load_photo(encode(Image.new("L", (6, 6), 77), "PNG"))
    assert grey.mode == "RGB" and grey.getpixel((2, 2)) == (77, 77, 77)
    cmyk = load_photo(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = cmyk.getpixel((8, 8))
    assert cmyk.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16_bit_png_scaled_not_clipped():
    arr = np.full((8, 8), 65535, np.uint16)
    arr[:4] = 32768
    out = load_photo(encode(Image.fromarray(arr), "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((0, 6)) == (255, 255, 255)
    assert abs(out.getpixel((0, 1))[0] - 128) <= 1  # 32768/65535 of white, not clipped to 255


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_photo(data)
    r, g, b = out.getpixel((6, 6))
    assert r > 200 and b < 50


def test_webp_and_bmp_and_paths(tmp_path):
    for fmt in ("WEBP", "BMP"):
        path = tmp_path / f"x.{fmt.lower()}"
        halves().save(path, fmt)
        assert load_photo(path).size == (40, 20)
        with open(path, "rb") as handle:
            assert load_photo(handle).size == (40, 20)


def test_large_jpeg_is_downscaled():
    out = load_photo(encode(halves((4000, 2000)), "JPEG"), max_side=512)
    assert out.size == (512, 256)
    assert model_input(out, 64).shape == (64, 64, 3)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"just some text, not a photo", "not an image"),
    (encode(halves((200, 200)), "JPEG")[:400], "damaged or incomplete"),  # cut in the header
    (encode(halves((200, 200)), "JPEG")[:1500], "damaged or incomplete"),  # cut in the pixels
    (png_declaring(9000, 9000), "declares 9000x9000 pixels (81 megapixels)"),
    (png_declaring(30000, 30000), "too large to open safely"),
])
def test_bad_files_get_clear_errors(data, message):
    with pytest.raises(PhotoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_photo(data)


def test_per_photo_byte_limit(tmp_path):
    data = encode(halves(), "PNG")
    with pytest.raises(PhotoError, match="limit is"):
        load_photo(data, max_bytes=len(data) - 1)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    with pytest.raises(PhotoError, match="limit is"):
        load_photo(path, max_bytes=10)
    with pytest.raises(PhotoError, match="cannot read"):
        load_photo(tmp_path / "missing.png")
