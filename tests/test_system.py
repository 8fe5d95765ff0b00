import gzip
import json

import pytest

from core import machine as system


def _fake_mnist(folder):
    folder.mkdir(parents=True)
    for name in system.MNIST_FILES:
        with gzip.open(folder / name, "wb") as handle:
            handle.write(b"\0" * 16)


def _card(folder, name, **extra):
    card = {"name": name, "task": "mnist", "model_file": f"{name}.keras",
            "title": name.title(), "metrics": {"test_accuracy": 0.99}} | extra
    (folder / f"{name}.card.json").write_text(json.dumps(card))
    (folder / f"{name}.keras").write_bytes(b"model")
    return card


def test_datasets_on_an_empty_root_are_all_absent(isolated):
    found = {d.name: d for d in system.datasets()}
    assert set(found) == {"mnist", "flowers", "imagenet"}
    assert not any(d.present for d in found.values())


def test_datasets_found_in_a_fake_root(isolated):
    data = isolated["data"]
    _fake_mnist(data / "mnist")
    for cls in ("cats", "dogs"):
        (data / "flowers" / cls / "nested").mkdir(parents=True)
        for i in range(3):
            (data / "flowers" / cls / "nested" / f"{i}.jpg").write_bytes(b"x")
    (data / "flowers" / "cats" / "notes.txt").write_text("not an image")
    (data / "imagenet").mkdir()
    (data / "imagenet" / "w.h5").write_bytes(b"x")
    found = {d.name: d for d in system.datasets()}
    assert found["mnist"].present and found["mnist"].detail == "4/4 IDX files"
    assert found["flowers"].present and found["flowers"].detail == "2 classes, 6 images"
    assert found["imagenet"].present


def test_partial_mnist_is_not_present(isolated):
    _fake_mnist(isolated["data"] / "mnist")
    (isolated["data"] / "mnist" / system.MNIST_FILES[0]).unlink()
    mnist = next(d for d in system.datasets() if d.name == "mnist")
    assert not mnist.present and mnist.detail == "3/4 IDX files"


def test_models_found_and_parsed_from_cards(isolated):
    _card(isolated["models"], "mnist_seed")
    run = isolated["runs"] / "run-1"
    run.mkdir()
    (run / "card.json").write_text(json.dumps(
        {"name": "my run", "task": "image", "model_file": "model.keras", "classes": ["a", "b"]}))
    (run / "model.keras").write_bytes(b"m")
    found = system.models()
    assert [(m.name, m.source, m.task, m.ok) for m in found] == [
        ("mnist_seed", "shipped", "mnist", True), ("my run", "run", "image", True)]
    assert found[0].test_accuracy == 0.99
    assert "99.00%" in found[0].label()
    assert [m.name for m in system.models(task="image")] == ["my run"]
    assert found[1].label() == "my run (your run run-1)"  # two runs of one arch stay apart


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"name": "x", "task": "mnist"}', "missing field(s) model_file"),
    ('{"name": "x", "task": "audio", "model_file": "x.keras"}', "unknown task"),
])
def test_a_broken_card_is_reported_not_raised(isolated, content, message):
    _card(isolated["models"], "good")
    (isolated["models"] / "bad.card.json").write_text(content)
    found = {m.name: m for m in system.models()}
    assert found["good"].ok
    assert not found["bad"].ok and message in found["bad"].error


def test_a_card_whose_model_file_is_missing_is_flagged(isolated):
    _card(isolated["models"], "gone")
    (isolated["models"] / "gone.keras").unlink()
    (entry,) = system.models()
    assert not entry.ok and "gone.keras is missing" in entry.error


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "card.json"
    from core import io as core_io

    core_io.atomic_write_json(target, {"a": 1})
    core_io.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["card.json"]
    assert core_io.sha256_file(target) == core_io.sha256_file(target)


def test_machine_info_reports_real_versions():
    import tensorflow as tf

    info = system.machine_info()
    assert info.tensorflow == tf.__version__
    assert info.keras.startswith("3.")
    assert info.cpu_count >= 1
    assert info.device == ("GPU" if tf.config.list_physical_devices("GPU") else "CPU")
    assert info.as_dict()["device"] == info.device
