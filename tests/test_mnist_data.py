"""IDX parsing and the MNIST splits, on tiny files the tests write."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from core.data import mnist
from tests.fixtures.mnist import write_fake_mnist


def test_idx_round_trip(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    mnist.write_idx(tmp_path / "x.gz", images)
    back = mnist.read_idx(tmp_path / "x.gz", mnist.IMAGE_MAGIC)
    assert back.shape == (3, 28, 28)
    np.testing.assert_array_equal(back, images)


def test_wrong_magic_is_named(tmp_path):
    mnist.write_idx(tmp_path / "labels.gz", np.arange(5, dtype=np.uint8))  # a label file (0x0801)
    with pytest.raises(mnist.MnistDataError, match="labels.gz: wrong magic number 0x00000801"):
        mnist.read_idx(tmp_path / "labels.gz", mnist.IMAGE_MAGIC)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "cut.gz"
    header = struct.pack(">IIII", mnist.IMAGE_MAGIC, 10, 28, 28)
    with gzip.open(path, "wb") as handle:
        handle.write(header + bytes(28 * 28 * 3))  # header promises 10 images, 3 present
    with pytest.raises(mnist.MnistDataError, match=r"cut.gz: truncated.*\(10, 28, 28\)"):
        mnist.read_idx(path, mnist.IMAGE_MAGIC)


def test_cut_gzip_stream_and_short_header(tmp_path):
    good = tmp_path / "good.gz"
    mnist.write_idx(good, np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "cut.gz").write_bytes(good.read_bytes()[:30])
    with pytest.raises(mnist.MnistDataError, match="cut.gz: cannot be read"):
        mnist.read_idx(tmp_path / "cut.gz")
    with gzip.open(tmp_path / "tiny.gz", "wb") as handle:
        handle.write(b"\x00\x00")
    with pytest.raises(mnist.MnistDataError, match="too short"):
        mnist.read_idx(tmp_path / "tiny.gz")


def test_load_splits_and_scales(tmp_path):
    folder = write_fake_mnist(tmp_path / "mnist", n_train=200, n_test=50)
    ds = mnist.load(val_split=0.1, folder=folder)
    assert ds.x_train.shape == (180, 28, 28, 1) and ds.x_val.shape == (20, 28, 28, 1)
    assert ds.x_test.shape == (50, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert set(ds.source["files"]) == set(mnist.FILES.values())
    # The split is fixed (never depends on a run's seed) and train/val do not overlap.
    again = mnist.load(val_split=0.1, folder=folder)
    np.testing.assert_array_equal(ds.x_val, again.x_val)
    rows = {a.tobytes() for a in ds.x_train}
    assert not any(a.tobytes() in rows for a in ds.x_val)


def test_missing_file_and_mismatched_counts(tmp_path):
    folder = write_fake_mnist(tmp_path / "mnist", n_train=30, n_test=10)
    mnist.write_idx(folder / mnist.FILES["test_labels"], np.zeros(9, np.uint8))
    with pytest.raises(mnist.MnistDataError, match="test: 9 labels for 10 images"):
        mnist.load(folder=folder)
    (folder / mnist.FILES["train_labels"]).unlink()
    with pytest.raises(mnist.MnistDataError, match="train-labels-idx1-ubyte.gz: file not found"):
        mnist.load(folder=folder)


def test_missing_mnist_offline_names_the_folder_and_the_four_files(tmp_path, monkeypatch):
    """Offline, a run failed late with 'URL fetch failure ... Name or service not known' and a traceback."""
    import keras

    def offline():
        raise OSError("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = tmp_path / "mnist"
    with pytest.raises(mnist.MnistDataError) as err:
        mnist.load_raw(folder)
    message = str(err.value)
    assert str(folder) in message and all(name in message for name in mnist.FILES.values())
    assert "downloading them failed" in message and "\n" not in message
    assert mnist.needs_download(folder) is not None  # the Train page warns before launch
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "mnist.npz").write_bytes(b"cached")
    assert mnist.needs_download(folder) is None  # Keras has it already: nothing to say
