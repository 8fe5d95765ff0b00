"""Image folders: scanning by content, errors, the stratified split, batches for any Keras backend."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.data import folders
from tests.fixtures.images import COLOURS, jpeg_bytes, make_shapes  # noqa: F401


@pytest.fixture
def messy(tmp_path):
    """Two good classes (one with nested folders and bad files) and one too small."""
    root = tmp_path / "photos"
    make_shapes(root, per_class=100, classes={"red": (220, 40, 40), "green": (40, 200, 40)})
    nested = root / "red" / "2024" / "july"
    nested.mkdir(parents=True)
    for i in range(5):
        (nested / f"extra{i}.jpg").write_bytes(jpeg_bytes())
    (root / "red" / "broken.jpg").write_bytes(jpeg_bytes()[:300])  # truncated
    (root / "red" / "notes.jpg").write_text("this is not a photo")
    (root / "green" / "photo_without_extension").write_bytes(jpeg_bytes())  # content counts
    small = root / "tiny"
    small.mkdir()
    for i in range(7):
        (small / f"{i}.jpg").write_bytes(jpeg_bytes())
    return root


def test_a_small_class_is_advised_and_only_an_unsplittable_one_refused(messy):
    found = folders.scan(messy)  # 7 images: trainable, with a warning
    assert found.counts["tiny"] == 7
    note = folders.advice(found.counts)
    assert "tiny (7)" in note and "100" in note and "red" not in note
    assert "limit of 40" in folders.advice(found.counts, limit_per_class=40)
    for extra in sorted((messy / "tiny").iterdir())[2:]:
        extra.unlink()
    with pytest.raises(folders.FolderError) as err:
        folders.scan(messy)
    message = str(err.value)
    assert "tiny has 2" in message and "training, validation and test" in message
    assert "red" not in message  # only the offending class is named


def test_a_limit_that_leaves_a_class_unsplittable_names_it(messy):
    found = folders.scan(messy)
    limited = r"class 'green' has 2 image\(s\) \(limited to 2 per class\)"
    with pytest.raises(folders.FolderError, match=limited):
        folders.split(found, limit_per_class=2)


def test_scan_skips_bad_files_and_finds_nested_ones(messy):
    (messy / "tiny").rename(messy.parent / "tiny-moved")
    result = folders.scan(messy)
    assert result.classes == ["green", "red"]
    assert result.counts == {"green": 101, "red": 105}  # nested and extension-less files count
    skipped = dict(result.skipped)
    assert set(skipped) == {"red/broken.jpg", "red/notes.jpg"}
    assert "truncated" in skipped["red/broken.jpg"].lower()
    assert "not an image we can read" in skipped["red/notes.jpg"]
    assert "skipped 2 file(s)" in result.report()


def test_scan_needs_two_classes(tmp_path):
    make_shapes(tmp_path, per_class=3, classes={"red": (255, 0, 0)})
    with pytest.raises(folders.FolderError, match=r"at least 2 class subfolders.*red \(3\)"):
        folders.scan(tmp_path)


def test_split_is_stratified_disjoint_and_deterministic(tmp_path):
    make_shapes(tmp_path, per_class=100, size=16)
    (tmp_path / "blue" / "more").mkdir()
    for i in range(40):  # unbalanced: blue has 140
        Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "blue" / "more" / f"{i}.png")
    scanned = folders.scan(tmp_path)
    a = folders.split(scanned, val_frac=0.2, test_frac=0.1, seed=3)
    b = folders.split(scanned, val_frac=0.2, test_frac=0.1, seed=3)
    c = folders.split(scanned, val_frac=0.2, test_frac=0.1, seed=4)
    assert a == b and a["test"] != c["test"]
    for part, frac in (("test", 0.1), ("val", 0.2)):
        per_class = np.bincount([label for _, label in a[part]], minlength=3)
        expected = [round(scanned.counts[name] * frac) for name in scanned.classes]
        assert per_class.tolist() == expected
    sets = [{p for p, _ in a[k]} for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(set.union(*sets)) == 340
    for path, label in a["train"]:
        assert path.split("/")[0] == scanned.classes[label]


def test_split_saved_and_reloaded(tmp_path):
    make_shapes(tmp_path / "d", per_class=100, size=16)
    split = folders.split(folders.scan(tmp_path / "d"), limit_per_class=20)
    folders.save_split(split, tmp_path / folders.SPLIT_FILE)
    again = folders.load_split(tmp_path / folders.SPLIT_FILE)
    assert again["test"] == split["test"]
    assert sum(len(again[k]) for k in ("train", "val", "test")) == 60


def test_split_rejects_bad_fractions(tmp_path):
    make_shapes(tmp_path, per_class=100, size=16)
    with pytest.raises(folders.FolderError, match="fractions"):
        folders.split(folders.scan(tmp_path), val_frac=0.5, test_frac=0.5)


def test_resolve_inside(tmp_path):
    root = tmp_path / "data"
    (root / "flowers").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    assert folders.resolve_inside("flowers", root) == (root / "flowers").resolve()
    assert folders.resolve_inside(root / "flowers", root) == (root / "flowers").resolve()
    for bad in ("../secret", str(tmp_path / "secret"), "/etc"):
        with pytest.raises(folders.FolderError, match="outside the data folder"):
            folders.resolve_inside(bad, root)
    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(folders.FolderError, match="outside"):
        folders.resolve_inside("link", root)
    with pytest.raises(folders.FolderError, match="not a folder"):
        folders.resolve_inside("missing", root)


def test_pipeline_shapes_dtype_range(tmp_path):
    make_shapes(tmp_path, per_class=100, size=40)
    split = folders.split(folders.scan(tmp_path), limit_per_class=12)
    ds = folders.make_dataset(tmp_path, split["train"], image_size=32, batch_size=8, training=True)
    x, y = next(iter(ds))
    assert x.shape == (8, 32, 32, 3) and x.dtype.name == "float32"
    assert y.dtype.name == "int32" and set(np.asarray(y)) <= {0, 1, 2}
    assert float(np.min(x)) >= 0 and float(np.max(x)) <= 255 and float(np.max(x)) > 150
    batches = list(folders.make_dataset(tmp_path, split["test"], 32, 4))
    assert sum(len(b[0]) for b in batches) == len(split["test"])


def test_training_batches_reshuffle_and_leave_pixels_alone(tmp_path):
    """Augmentation is the model's job now: the pipeline only shuffles, every epoch anew."""
    (tmp_path / "a").mkdir()
    img = Image.new("RGB", (32, 32), (10, 10, 10))
    ImageDraw.Draw(img).rectangle([(2, 2), (14, 28)], fill=(250, 200, 30))
    img.save(tmp_path / "a" / "x.png")
    Image.new("RGB", (32, 32), (200, 0, 0)).save(tmp_path / "a" / "y.png")
    items = [["a/x.png", 0], ["a/y.png", 1]] * 8
    plain = folders.make_dataset(tmp_path, items, 32, 16)
    x, y = plain[0]
    assert y.tolist() == [0, 1] * 8  # in order
    # validation data is the photo itself, as the model will see it when predicting
    assert np.array_equal(x[0], np.asarray(img, np.float32))
    train = folders.make_dataset(tmp_path, items, 32, 4, training=True, seed=1)
    first = np.concatenate([train[i][1] for i in range(len(train))])
    train.on_epoch_end()
    second = np.concatenate([train[i][1] for i in range(len(train))])
    assert sorted(first) == sorted(second) == sorted(y) and first.tolist() != second.tolist()
    for image, label in zip(*train[0], strict=True):  # pixels untouched
        assert np.array_equal(image, x[0] if label == 0 else x[1])
