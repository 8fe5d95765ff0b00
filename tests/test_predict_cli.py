"""The two command-line predictors, run as a user runs them (subprocess), on the shipped models."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.config import PROJECT_ROOT


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CNN_STUDIO_MODELS", None)  # the shipped models
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=env, timeout=300)


def canvas(path, strokes, size=280, width=20, mode="RGBA"):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    for points in strokes:
        draw.line(points, fill="white", width=width, joint="curve")
    img.convert(mode).save(path)
    return str(path)


def test_digit_cli_reads_drawings_like_the_page(tmp_path):
    one = canvas(tmp_path / "one.png", [[(140, 40), (140, 240)]])
    seven = canvas(tmp_path / "seven.png", [[(60, 50), (220, 50), (120, 250)]], size=400, width=26,
                   mode="RGB")
    zigzag = canvas(tmp_path / "zigzag.png",
                    [[(30, 60), (80, 220), (130, 60), (180, 220), (230, 60), (260, 220)]])
    empty = canvas(tmp_path / "empty.png", [])
    dot = canvas(tmp_path / "dot.png", [[(100, 100), (104, 102)]])
    done = run_cli("core.digit", "--json", one, seven, zigzag, empty, dot)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == [one, seven, zigzag, empty, dot]
    assert all(set(line) == {"file", "digit", "probability", "known"} for line in lines)
    by_name = {os.path.basename(line["file"]): line for line in lines}
    # calibrated: a clear digit reads about 99%, not the label-smoothed ~90%
    assert by_name["one.png"]["digit"] == 1 and by_name["one.png"]["probability"] > 0.97
    assert by_name["one.png"]["known"] is True
    assert by_name["seven.png"]["digit"] == 7 and by_name["seven.png"]["known"] is True
    assert by_name["zigzag.png"]["known"] is False
    assert by_name["empty.png"] == {"file": empty, "digit": None, "probability": None, "known": False}
    assert by_name["dot.png"]["known"] is False

    plain = run_cli("core.digit", one)
    expected = f"{one}: 1 ({by_name['one.png']['probability']:.1%})"
    assert plain.returncode == 0 and plain.stdout.strip() == expected


def test_digit_cli_bad_file_and_bad_model(tmp_path):
    one = canvas(tmp_path / "one.png", [[(140, 40), (140, 240)]])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    done = run_cli("core.digit", "--json", str(broken), one)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and "error" in lines[0] and lines[1]["digit"] == 1
    bad = run_cli("core.digit", "--model", str(tmp_path / "missing.keras"), one)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: model file not found") and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_classify_cli_answers_every_file(tmp_path):
    board = tmp_path / "board.png"
    cells = (np.indices((256, 256)).sum(0) // 32 % 2 * 255).astype(np.uint8)
    Image.fromarray(cells).convert("RGB").save(board)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    files = [str(board), str(broken), str(text)]
    done = run_cli("core.classify", "--json", *files)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    assert set(lines[0]) == {"file", "label", "probability", "known"}
    assert lines[0]["known"] is False  # a checkerboard is none of the flowers
    assert lines[0]["label"] in {"daisy", "dandelion", "roses", "sunflowers", "tulips"}
    assert set(lines[1]) == {"file", "error"} and set(lines[2]) == {"file", "error"}
    plain = run_cli("core.classify", str(board))
    assert plain.stdout.startswith(f"{board}: doesn't look like any of: daisy, dandelion")


SUNFLOWER = PROJECT_ROOT.parent / "shared/data/flowers/sunflowers/58636535_bc53ef0a21_m.jpg"  # test split


@pytest.mark.skipif(not SUNFLOWER.is_file(), reason="no shared flowers data")
def test_classify_cli_reads_a_flower():
    photo = SUNFLOWER
    line = json.loads(run_cli("core.classify", "--json", str(photo)).stdout)
    assert line["label"] == "sunflowers" and line["known"] is True and line["probability"] > 0.5


def test_classify_cli_bad_model(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("nope")
    done = run_cli("core.classify", "--model", str(bad), "x.jpg")
    assert done.returncode == 2 and done.stderr.startswith("error: cannot read bad.keras")
