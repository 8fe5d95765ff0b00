"""Uploaded data sets (issue 15, cases 1, 3, 4, 7): names, quota, hostile and damaged zips, the CLI."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import config
from core.data import folders, uploads, zipimport
from core.data.uploads import UploadError, import_zip, slug
from core.data.zipimport import ZipDataError, central_directory, extract_zip
from core.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent


def _png(color=(200, 30, 30), size=8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


def _zip_bytes(entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _dataset(per_class=(100, 100), wrap="set") -> dict[str, bytes]:
    colours = [(220, 20, 20), (20, 20, 220), (20, 220, 20)]
    return {f"{wrap}/c{k}/{i}.png": _png(colours[k]) for k, n in enumerate(per_class) for i in range(n)}


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def roots(isolated):
    (isolated["data"] / "flowers" / "daisy").mkdir(parents=True)
    (isolated["data"] / "flowers" / "daisy" / "a.png").write_bytes(_png())
    return isolated | {"uploads": config.uploads_root()}


# --- case 1: the name a browser sends never becomes a path ----------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("../flowers/evil.zip", "evil"), ("/tmp/x.zip", "x"), ("..\\..\\win.ZIP", "win"),
    ("..", "upload"), ("", "upload"), ("Rosen & Tulpen (2024).zip", "rosen-tulpen-2024"),
    ("-rf --data.zip", "rf-data"), ("x" * 300 + ".zip", "x" * 40), ("a\0b.zip", "a-b"),
])
def test_upload_names_become_safe_slugs(name, expected):
    assert slug(name) == expected


def test_upload_named_like_a_path_lands_in_the_uploads_folder(roots):
    before = _files(roots["data"])
    upload, report = import_zip(io.BytesIO(_zip_bytes(_dataset())), "../flowers/evil.zip")
    assert upload.path.parent == roots["uploads"].resolve() and upload.name.startswith("evil-")
    assert report.classes == {"c0": 100, "c1": 100}
    assert _files(roots["data"]) == before  # the data root is untouched
    upload2, _ = import_zip(io.BytesIO(_zip_bytes(_dataset())), "/tmp/x.zip", name="../../x")
    assert upload2.path == roots["uploads"].resolve() / "x"
    assert not Path("/tmp/x").exists() or not (Path("/tmp/x") / uploads.META_FILE).exists()


def test_uploads_folder_defaults_beside_runs_and_never_inside_the_data_root(roots, monkeypatch):
    assert roots["uploads"] == roots["runs"].parent / "uploads"
    monkeypatch.setenv(config.UPLOADS_ENV, str(roots["data"] / "uploads"))
    with pytest.raises(config.ConfigError, match="inside the data root"):
        config.uploads_root()


def test_an_uploaded_set_resolves_for_training(roots):
    upload, _ = import_zip(io.BytesIO(_zip_bytes(_dataset())), "shapes.zip")
    assert folders.resolve_inside(str(upload.root)) == upload.root
    assert folders.scan(upload.root).counts == {"c0": 100, "c1": 100}
    with pytest.raises(folders.FolderError, match="outside"):
        folders.resolve_inside(str(roots["runs"]))
    for bad in ("a\0b", "x" * 300):
        with pytest.raises(folders.FolderError, match="not usable"):
            folders.resolve_inside(bad)


# --- case 4: nothing left behind, a quota that names the oldest set -------------------

def test_refused_data_set_leaves_nothing_on_disk(roots):
    data = _zip_bytes(_dataset((100, 2)))  # 2 images cannot give training, validation and test one each
    with pytest.raises(StudioError, match=r"at least 3 usable images.*: c1 has 2"):
        import_zip(io.BytesIO(data), "few.zip")
    assert _files(roots["uploads"]) == [] and list(roots["uploads"].iterdir()) == []


def test_quota_refuses_and_names_the_data_set_unused_longest(roots, monkeypatch):
    one = _zip_bytes(_dataset((100, 100)))
    first, _ = import_zip(io.BytesIO(one), "first.zip")
    second, _ = import_zip(io.BytesIO(one), "second.zip", name="second")
    used = uploads.usage()
    uploads.mark_used(first.root / "c0")  # training on first: second is now the oldest unused
    monkeypatch.setenv(config.UPLOADS_QUOTA_ENV, "1")
    assert used < 2**20
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")  # 270 KB that do not compress
    big = _zip_bytes(_dataset((100, 100), wrap="big") | {f"big/c0/pad{i}.png": buf.getvalue()
                                                          for i in range(4)})
    with pytest.raises(UploadError, match="of its 1 MB quota.*unused the longest is second"):
        import_zip(io.BytesIO(big), "third.zip")
    assert sorted(p.name for p in roots["uploads"].iterdir()) == sorted([first.name, "second"])
    uploads.remove("second")
    assert [u.name for u in uploads.list_uploads()] == [first.name]


def test_same_archive_twice_is_one_data_set_and_names_do_not_clash(roots):
    data = _zip_bytes(_dataset())
    a, report = import_zip(io.BytesIO(data), "a.zip")
    again, none = import_zip(io.BytesIO(data), "a.zip")
    assert again.path == a.path and none is None and report is not None
    import_zip(io.BytesIO(data), "a.zip", name="mine")
    with pytest.raises(UploadError, match="already exists"):
        import_zip(io.BytesIO(_zip_bytes(_dataset(wrap="other"))), "b.zip", name="mine")


# --- cases 3 and 7: hostile and damaged archives, one sentence each --------------------

def _patch_all(data: bytes, sig: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Set a field in every local header (PK\\3\\4) or central entry (PK\\1\\2)."""
    buf = bytearray(data)
    at = buf.find(sig)
    while at >= 0:
        struct.pack_into(fmt, buf, at + offset, value)
        at = buf.find(sig, at + 4)
    return bytes(buf)


def _encrypted() -> bytes:
    data = _zip_bytes({"c/a.png": _png()})
    data = _patch_all(data, b"PK\x03\x04", 6, "<H", 0x1)  # "encrypted" in the general flags
    return _patch_all(data, b"PK\x01\x02", 8, "<H", 0x1)


def _method9() -> bytes:
    data = _zip_bytes({"c/a.png": _png()}, zipfile.ZIP_STORED)
    data = _patch_all(data, b"PK\x03\x04", 8, "<H", 9)
    return _patch_all(data, b"PK\x01\x02", 10, "<H", 9)


def _bad_crc() -> bytes:
    png = _png()
    data = bytearray(_zip_bytes({"c/a.png": png}, zipfile.ZIP_STORED))
    at = data.find(png) + len(png) // 2
    data[at] ^= 0xFF
    return bytes(data)


def _size_lie() -> bytes:
    data = _zip_bytes({"c/a.png": _png(size=64)})
    return _patch_all(data, b"PK\x01\x02", 24, "<L", 10)  # declares 10 bytes uncompressed


@pytest.mark.parametrize(("make", "message"), [
    (_encrypted, "encrypted"),
    (_method9, "compression method 9"),
    (_bad_crc, "damaged at entry 'c/a.png'"),
    (_size_lie, "damaged at entry 'c/a.png'|more than"),
    (lambda: b"PK\x05\x06" + b"\0" * 18, "no image files|not a zip"),
    (lambda: _zip_bytes({"c/a.png": _png()})[:-30], "not a zip"),
])
def test_damaged_archives_are_refused_with_one_sentence_and_nothing_written(tmp_path, make, message):
    with pytest.raises(ZipDataError, match=message) as info:
        extract_zip(io.BytesIO(make()), tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_many_entries_are_refused_from_the_end_record_before_reading_the_directory(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i in range(6000):
            archive.writestr(f"c/{i}", b"")
    assert central_directory(io.BytesIO(buf.getvalue()))[0] == 6000
    tracemalloc.start()
    try:
        with pytest.raises(ZipDataError, match="6000 entries"):
            extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "out", max_files=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(buf.getvalue()) + 2**20  # no ZipInfo per entry (about 500 bytes each)


def test_zip64_end_record_is_read(monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)  # makes zipfile write zip64 end records
    data = _zip_bytes({f"c/{i}.png": _png() for i in range(5)})
    assert b"PK\x06\x06" in data
    assert central_directory(io.BytesIO(data))[0] == 5


def test_a_big_decompressed_size_is_refused_while_writing(tmp_path):
    data = _zip_bytes({"c/a.png": _png() + b"\0" * 50_000})
    data = _patch_all(data, b"PK\x01\x02", 24, "<L", 100)  # lie: 100 bytes
    with pytest.raises(ZipDataError):
        extract_zip(io.BytesIO(data), tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out").exists()


# --- the command line ------------------------------------------------------------------

def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "core.datasets", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_datasets_cli_imports_lists_and_removes(roots, tmp_path):
    env = os.environ | {config.RUNS_ENV: str(roots["runs"]), config.DATA_ENV: str(roots["data"]),
                        "PYTHONPATH": str(ROOT)}
    good = tmp_path / "My Shapes.zip"
    good.write_bytes(_zip_bytes(_dataset()))
    done = _cli("import", str(good), env=env)
    assert done.returncode == 0, done.stderr
    assert "200 images in 2 classes" in done.stdout
    name = done.stdout.split()[1]
    assert name.startswith("my-shapes-")
    listed = _cli("list", env=env)
    assert listed.returncode == 0 and name in listed.stdout and "1 data set(s)" in listed.stdout
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_encrypted())
    for args in (("import", str(bad)), ("import", str(tmp_path / "missing.zip")), ("remove", "nope"),
                 ("remove", "../runs")):
        failed = _cli(*args, env=env)
        assert failed.returncode == 2, (args, failed.stderr)
        assert failed.stderr.startswith("error: ") and failed.stderr.count("\n") == 1
        assert "Traceback" not in failed.stderr
    assert _cli("remove", name, env=env).returncode == 0
    assert list(config.uploads_root().iterdir()) == []
    assert roots["runs"].is_dir() and _files(roots["data"]) == ["flowers/daisy/a.png"]


def test_zip_limits_are_one_place():
    assert zipimport.MAX_ENTRIES > zipimport.MAX_FILES


@pytest.mark.slow
def test_a_run_trains_on_an_uploaded_set(roots):
    from core.rundir import RunDir
    from core.training.runner import main

    upload, _ = import_zip(io.BytesIO(_zip_bytes(_dataset())), "../flowers/shapes.zip")
    out = roots["runs"] / "up1"
    code = main(["transfer", "--data", str(upload.root), "--backbone", "tiny_cnn", "--image-size", "32",
                 "--epochs-head", "1", "--epochs-fine", "0", "--batch-size", "32", "--weights", "none",
                 "--out", str(out)])
    assert code == 0, RunDir(out).read_status().get("error")
    assert RunDir(out).read_config()["folder"] == str(upload.root)
    assert uploads.get(upload.name).last_used > upload.created
