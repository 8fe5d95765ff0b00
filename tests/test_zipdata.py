"""Uploaded zips of class folders: every hostile or sloppy archive is handled safely."""
from __future__ import annotations

import io

import pytest

from core.data.zipimport import ZipDataError, extract_zip
from tests.fixtures.images import _png, _zip  # noqa: E402


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_good_zip_keeps_images_unwraps_the_top_folder_and_skips_the_rest(tmp_path):
    archive = _zip({
        "flowers/roses/a.png": _png(), "flowers/roses/deep/b.png": _png(),
        "flowers/tulips/c.png": _png((0, 0, 250)),
        "flowers/tulips/notes.txt": b"hello",
        "flowers/tulips/fake.jpg": b"this is text, not a jpeg",
        "__MACOSX/flowers/roses/._a.png": b"\0\0",
        "flowers/.DS_Store": b"\0",
    })
    report = extract_zip(archive, tmp_path / "out")
    assert report.root == (tmp_path / "out" / "flowers").resolve()
    assert report.classes == {"roses": 2, "tulips": 1}
    assert _files(tmp_path / "out") == ["flowers/roses/a.png", "flowers/roses/deep/b.png",
                                        "flowers/tulips/c.png"]
    reasons = dict(report.skipped)
    assert reasons["flowers/tulips/notes.txt"] == "not an image file"
    assert reasons["flowers/tulips/fake.jpg"] == "not a readable image"
    assert reasons["__MACOSX/flowers/roses/._a.png"] == "system file"


@pytest.mark.parametrize("entries, symlinks, message", [
    ({"a/x.png": _png(), "../../evil.png": _png()}, None, "outside"),
    ({"a/x.png": _png(), "a/../../evil.png": _png()}, None, "outside"),
    ({"/etc/evil.png": _png()}, None, "absolute path"),
    ({"C:/evil.png": _png()}, None, "absolute path"),
    ({"a/x.png": _png()}, {"a/link.png": "/etc/passwd"}, "symbolic link"),
])
def test_hostile_entries_refuse_the_whole_archive_and_write_nothing(tmp_path, entries, symlinks, message):
    with pytest.raises(ZipDataError, match=message):
        extract_zip(_zip(entries, symlinks), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.png").exists() and _files(tmp_path) == []


def test_limits_on_file_count_and_size(tmp_path):
    many = {f"c{i % 2}/{i}.png": _png() for i in range(12)}
    with pytest.raises(ZipDataError, match="12 files in the archive, the limit is 10"):
        extract_zip(_zip(many), tmp_path / "a", max_files=10)
    big = {"c/big.png": _png() + b"\0" * 5000}
    with pytest.raises(ZipDataError, match="limit is 0.0 MB"):
        extract_zip(_zip(big), tmp_path / "b", max_bytes=1000)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_not_a_zip_and_a_zip_without_images_are_clear_errors(tmp_path):
    with pytest.raises(ZipDataError, match="not a zip file"):
        extract_zip(io.BytesIO(b"PK no really"), tmp_path / "a")
    with pytest.raises(ZipDataError, match="no image files"):
        extract_zip(_zip({"readme.txt": b"hi"}), tmp_path / "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    with pytest.raises(ZipDataError, match="not empty"):
        extract_zip(_zip({"a/x.png": _png()}), tmp_path / "c")
    assert (tmp_path / "c" / "keep.txt").read_text() == "mine"
