"""The Train page through AppTest: settings, refusals, data report, a real launch, open and delete."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.jobs import Jobs
from core.models import mnist as mnist_models
from core.training.settings import TransferSettings


def _page() -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _launch(at):
    return at.button(key="launch")


def test_defaults_show_report_estimate_and_command(mnist_like):
    at = _page()
    text = " ".join(m.value for m in at.markdown)
    assert "**MNIST** (IDX files in" in text and "360 training and 40 validation" in text
    assert "Estimated training memory" in text
    (command,) = [c.value for c in at.code if "core.train" in c.value]
    rec = mnist_models.recipe("fast")  # the page's defaults are the command line's: one owner
    assert command.startswith(f"python -m core.train mnist --arch fast --epochs {rec.epochs} "
                              f"--batch-size {rec.batch_size} --lr {rec.lr}")
    assert _errors(at) == [] and not _launch(at).disabled


def test_transfer_defaults_on_the_page_are_the_command_lines(isolated):
    """The page offered 3+3 epochs while `python -m core.train transfer` defaulted to 5+10."""
    at = _page()
    at.radio(key="train_task").set_value("Image classifier on a folder").run()
    (command,) = [c.value for c in at.code if "core.train" in c.value]
    cli = TransferSettings()
    assert f"--epochs-head {cli.epochs_head} --epochs-fine {cli.epochs_fine}" in command
    assert f"--fine-tune-layers {cli.fine_tune_layers} --batch-size {cli.batch_size}" in command


@pytest.mark.parametrize("key, value, message", [
    ("mnist_epochs", 0, "epochs must be at least 1"),
    ("mnist_lr", 0.0, "learning rate must be positive"),
    ("mnist_batch_size", 0, "batch size must be at least 1"),
])
def test_bad_settings_are_refused_with_a_message(mnist_like, key, value, message):
    at = _page()
    at.number_input(key=key).set_value(value).run()
    assert any(message in e for e in _errors(at)), _errors(at)
    assert _launch(at).disabled


def test_batch_larger_than_the_data_is_refused(mnist_like):
    at = _page()
    assert any("360 training and 40 validation" in m.value for m in at.markdown)  # the generated set
    at.number_input(key="mnist_limit").set_value(100).run()
    assert any("batch size 128 is larger than the 90 training images" in e for e in _errors(at))
    assert _launch(at).disabled


def test_image_folder_report_and_refusals(isolated):
    classes = {"cats": 3, "dogs": 2}
    for name, n in classes.items():
        folder = isolated["data"] / "pets" / name
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(folder / f"{i}.png")
    (isolated["data"] / "pets" / "dogs" / "notes.txt").write_text("not an image")
    at = _page()
    at.radio(key="train_task").set_value("Image classifier on a folder").run()
    at.radio(key="image_source").set_value("A folder under the data root").run()

    at.text_input(key="image_folder").set_value("../../etc").run()
    assert any("outside the data folder" in e for e in _errors(at))
    assert _launch(at).disabled

    at.text_input(key="image_folder").set_value("pets").run()
    table = at.dataframe[0].value
    assert dict(zip(table["class"], table["images"], strict=True)) == classes
    assert any("fewer than" in e or "at least" in e for e in _errors(at)), _errors(at)  # too few per class
    assert _launch(at).disabled

    at.selectbox(key="transfer_backbone").set_value("mobilenet_v2_0.35").run()
    (command,) = [c.value for c in at.code if "core.train" in c.value]
    assert "transfer --data pets --backbone mobilenet_v2_0.35" in command


@pytest.mark.slow
def test_launch_watch_open_and_delete_a_real_run(mnist_like):
    at = _page()
    at.selectbox(key="mnist_arch").set_value("seed").run()
    at.number_input(key="mnist_epochs").set_value(1).run()
    at.number_input(key="mnist_batch_size").set_value(32).run()
    at.number_input(key="mnist_limit").set_value(400).run()
    _launch(at).click().run()
    (run,) = Jobs().list()
    assert run.options == {"arch": "seed", "epochs": 1, "batch_size": 32, "lr": 0.001, "seed": 0,
                           "val_split": 0.1,
                           "limit": 400}
    assert Jobs().wait(run.id, timeout=180).state == "succeeded"

    at.run()
    table = at.dataframe[-1].value
    assert list(table["status"]) == ["succeeded"] and table["test"][0].endswith("%")
    assert any("Finished: test accuracy" in s.value for s in at.success)
    at.multiselect(key="runs_chosen").set_value([run.id]).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any(m.label == "Test accuracy" for m in at.metric)

    at.checkbox(key="confirm_delete").check().run()
    at.button[[b.label for b in at.button].index("Delete selected")].click().run()
    assert not at.exception and Jobs().list() == []


def _set(n_per_class: int, wrap: str = "set") -> bytes:
    from tests.fixtures.images import _png, _zip

    return _zip({f"{wrap}/{c}/{i}.png": _png((i, 0, 0)) for c in ("ants", "bees") for i in range(n_per_class)}
                | {f"{wrap}/ants/readme.txt": b"hi"}).getvalue()


def _upload(at, name: str, data: bytes) -> None:
    key = f"image_zip_{at.session_state['zip_generation']}"
    at.file_uploader(key=key).set_value((name, data, "application/zip")).run()


def test_zip_upload_is_checked_then_unpacked_under_the_uploads_folder(isolated):
    from core import config
    from tests.fixtures.images import _png, _zip

    flowers = isolated["data"] / "flowers" / "daisy"
    flowers.mkdir(parents=True)
    at = _page()
    at.radio(key="train_task").set_value("Image classifier on a folder").run()
    at.radio(key="image_source").set_value("An uploaded .zip").run()
    uploads = config.uploads_root()
    _upload(at, "evil.zip", _zip({"a/x.png": _png(), "../../evil.png": _png()}).getvalue())
    assert not at.exception
    assert any("evil.zip: refused" in e and "outside" in e for e in _errors(at)), _errors(at)
    assert at.session_state["zip_generation"] == 1  # the refused file is dropped from the widget
    _upload(at, "few.zip", _set(2))  # fewer than one image each for training, validation and test
    assert any("at least 3 usable images" in e and "ants has 2" in e for e in _errors(at)), _errors(at)
    assert _launch(at).disabled and not (uploads.exists() and any(uploads.iterdir()))

    _upload(at, "../flowers/evil.zip", _set(100))  # a name that was a path: now only a slug
    assert not at.exception, [e.message for e in at.exception]
    (folder,) = uploads.iterdir()
    assert folder.name.startswith("evil-") and list(flowers.iterdir()) == []
    sets = at.dataframe[0].value
    assert list(sets["data set"]) == [folder.name] and list(sets["images"]) == [200]
    table = at.dataframe[1].value
    assert dict(zip(table["class"], table["images"], strict=True)) == {"ants": 100, "bees": 100}
    assert any("readme.txt (not an image file)" in c.value for c in at.caption)
    (command,) = [c.value for c in at.code if "core.train" in c.value]
    assert f"--data {folder / 'data' / 'set'} " in command

    at.selectbox(key="upload_delete_pick").set_value(folder.name).run()
    at.checkbox(key="upload_delete_confirm").check().run()
    at.button(key="upload_delete").click().run()
    assert not at.exception and list(uploads.iterdir()) == []


def test_a_run_larger_than_the_free_memory_is_refused(mnist_like, monkeypatch):
    from core.training import devices

    monkeypatch.setattr(devices, "available_ram_bytes", lambda: 1_000_000)  # 1 MB free
    at = _page()
    assert any("more than the free RAM (0.0 GB)" in e for e in _errors(at)), _errors(at)
    assert _launch(at).disabled


def test_a_damaged_run_is_listed_opened_and_deleted(isolated):
    import json

    from core.rundir import RunDir

    bad = RunDir(isolated["runs"] / "bad").create()
    bad.status_path.write_bytes(b"\xff\xfe")
    bad.card_path.write_text(json.dumps({"metrics": {"test_accuracy": "ninety"}}))
    bad.metrics_path.write_bytes(b"\xff\n[1]\n")
    at = _page()
    table = at.dataframe[-1].value
    assert list(table["status"]) == ["damaged"]
    at.multiselect(key="runs_chosen").set_value(["bad"]).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("damaged: status.json is not UTF-8 text" in w.value for w in at.warning)
    at.checkbox(key="confirm_delete").check().run()
    at.button[[b.label for b in at.button].index("Delete selected")].click().run()
    assert not at.exception and not bad.path.exists()


def test_a_refit_run_from_the_command_line_opens_without_a_validation_figure(mnist_like):
    from core.training import runner as train

    out = mnist_like["runs"] / "refit"
    assert train.main(["mnist", "--arch", "seed", "--epochs", "1", "--batch-size", "32", "--limit", "400",
                       "--val-split", "0", "--out", str(out)]) == 0
    at = _page()
    at.multiselect(key="runs_chosen").set_value(["refit"]).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Validation accuracy"] == "none held out"
    assert metrics["Test accuracy"].endswith("%")


def test_a_small_class_is_a_warning_not_a_refusal(isolated):
    for name in ("cats", "dogs"):
        folder = isolated["data"] / "pets" / name
        folder.mkdir(parents=True)
        for i in range(30):  # about what Teachable Machine trains with
            Image.fromarray(np.full((16, 16, 3), i * 8, np.uint8)).save(folder / f"{i}.png")
    at = _page()
    at.radio(key="train_task").set_value("Image classifier on a folder").run()
    at.radio(key="image_source").set_value("A folder under the data root").run()
    at.text_input(key="image_folder").set_value("pets").run()
    assert any("Fewer than 100 images in cats (30), dogs (30)" in w.value for w in at.warning)
    assert not _errors(at) and not _launch(at).disabled


def test_missing_mnist_is_named_before_launch(isolated, monkeypatch, tmp_path):
    """Without the IDX files (and no Keras download cached) the page says where to put which files."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    at = _page()
    warnings = [w.value for w in at.warning]
    folder = str(isolated["data"] / "mnist")
    assert any("put the four IDX files" in w and folder in w for w in warnings), warnings


def test_a_gpu_only_jax_sees_is_offered_to_a_jax_run(mnist_like, monkeypatch):
    """The lent GPU machines: nvidia-smi lists an H100, JAX came with CUDA, the page runs on TensorFlow
    (no GPU there). A JAX run must be told it trains on the GPU and may ask for it."""
    from core import machine
    from ui import common

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(mnist_like["runs"]))  # no keras.json
    monkeypatch.setattr(machine, "_nvidia_gpus", lambda: [machine.GPU("NVIDIA H100", 81559, "9.0")])
    monkeypatch.setattr(machine, "has_cuda", lambda name: name == "jax")
    common.machine_summary.clear()
    try:
        at = _page()
        at.selectbox(key="mnist_backend").set_value("jax").run()
        at.selectbox(key="mnist_device").set_value("gpu").run()
        captions = " ".join(c.value for c in at.caption)
        assert "This run will train on the GPU with Keras on JAX." in captions
        assert not any("has no GPU" in e for e in _errors(at)) and not _launch(at).disabled
        (command,) = [c.value for c in at.code if "core.train" in c.value]
        assert "--device gpu --backend jax" in command
    finally:
        common.machine_summary.clear()
