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
    assert list(table["status"]) == ["succeeded"] and table["test"][0] > 0
    assert any("Finished: test accuracy" in s.value for s in at.success)
    at.multiselect(key="runs_chosen").set_value([run.id]).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any(m.label == "Test accuracy" for m in at.metric)

    at.checkbox(key="confirm_delete").check().run()
    at.button[[b.label for b in at.button].index("Delete selected")].click().run()
    assert not at.exception and Jobs().list() == []


def test_zip_upload_is_checked_then_unpacked_under_the_data_root(isolated):
    from tests.fixtures.images import _png, _zip

    at = _page()
    at.radio(key="train_task").set_value("Image classifier on a folder").run()
    at.radio(key="image_source").set_value("Upload a .zip").run()
    evil = _zip({"a/x.png": _png(), "../../evil.png": _png()}).getvalue()
    at.file_uploader(key="image_zip").set_value(("evil.zip", evil, "application/zip")).run()
    assert not at.exception
    assert any("evil.zip: refused" in e and "outside" in e for e in _errors(at)), _errors(at)
    uploads = isolated["data"] / "uploads"
    assert _launch(at).disabled and not (uploads.exists() and any(uploads.iterdir()))

    good = _zip({f"set/{c}/{i}.png": _png((i * 30, 0, 0)) for c in ("ants", "bees") for i in range(3)}
                | {"set/ants/readme.txt": b"hi"}).getvalue()
    at.file_uploader(key="image_zip").set_value(("bugs.zip", good, "application/zip")).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["class"], table["images"], strict=True)) == {"ants": 3, "bees": 3}
    assert any("readme.txt (not an image file)" in c.value for c in at.caption)
    (command,) = [c.value for c in at.code if "core.train" in c.value]
    (folder,) = (isolated["data"] / "uploads").iterdir()
    assert f"--data uploads/{folder.name}/set " in command


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
