"""In Chromium: launch a short MNIST run from the Train page, watch it end, then predict with it on Draw."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.data.mnist import FILES, write_idx
from core.jobs import Jobs
from tests.conftest import new_tab, running_streamlit, screenshot, wait_for_app
from tests.fixtures.drawing import DIGITS, draw
from tests.fixtures.mnist import _digits

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def train_server(tmp_path_factory):
    """The app with its own data root (generated MNIST-like digits) and an empty runs folder."""
    base = tmp_path_factory.mktemp("train-e2e")
    mnist = base / "data" / "mnist"
    mnist.mkdir(parents=True)
    rng = np.random.default_rng(0)
    (x_tr, y_tr), (x_te, y_te) = _digits(400, rng), _digits(100, rng)
    for key, array in {"train_images": x_tr, "train_labels": y_tr,
                       "test_images": x_te, "test_labels": y_te}.items():
        write_idx(mnist / FILES[key], array)
    with running_streamlit(base / "runs", base, env={"CNN_STUDIO_DATA": str(base / "data")}) as server:
        yield server


@pytest.fixture
def train_page(browser, train_server):
    with new_tab(browser) as tab:
        yield tab


def _open_train(page, server) -> None:
    page.goto(server["url"])
    wait_for_app(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Train", exact=True).click()
    page.get_by_text("Equivalent command line").wait_for()


def _fill(page, label, value, expect):
    """Type a value, then wait until the command line shows it (the app has rerun)."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _command_shows(page, expect)


def _command_shows(page, text):
    page.locator("[data-testid='stCode']").filter(has_text=text).first.wait_for(timeout=60_000)


def test_launch_watch_and_use_a_run(train_page, train_server):
    page = train_page
    _open_train(page, train_server)
    page.get_by_label("Architecture").click()
    page.get_by_role("option", name="seed: Notebook baseline CNN").click()
    _command_shows(page, "--arch seed")
    _fill(page, "Epochs", 2, "--epochs 2")
    _fill(page, "Batch size", 32, "--batch-size 32")
    _fill(page, "Use only the first N training images", 400, "--limit 400")
    command = page.locator("[data-testid='stCode']").first.inner_text()
    assert "--arch seed --epochs 2 --batch-size 32" in command and "--limit 400" in command

    page.get_by_role("button", name="Launch").click()
    main = page.locator("[data-testid='stMain']")
    # The live view updates on its own until the run ends: no clicks from here.
    main.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
    screenshot(page, "train_page_finished")
    text = main.inner_text()
    assert "epoch 2/2" in text and "succeeded" in text
    main.locator("[data-testid='stPlotlyChart']").nth(1).wait_for()  # loss and accuracy curves
    (run,) = Jobs(train_server["runs"]).list()
    assert run.state == "succeeded" and run.has_model

    # Take it home: the Keras export downloads as a zip with its card, labels and preprocessing.
    main.get_by_role("button", name="Prepare download").click()
    button = main.get_by_role("button", name=f"Download {run.id}.zip")
    button.wait_for(timeout=120_000)
    with page.expect_download() as download:
        button.click()
    names = zipfile.ZipFile(download.value.path()).namelist()
    assert {"model.keras", "card.json", "labels.txt", "preprocessing.json"} <= set(names)

    # Use it: the Draw page opens with the run's model already selected.
    main.get_by_role("button", name="Use it now").click()
    page.get_by_text("Draw a digit on the black canvas").wait_for()
    wait_for_app(page)
    picked = page.locator("[data-testid='stSelectbox']").first
    shown = lambda: picked.locator("input").first.input_value() or picked.inner_text()  # noqa: E731
    assert f"(your run {run.id})" in shown()  # selected for us, nothing picked by hand
    canvas = page.locator("canvas.upper-canvas >> visible=true")
    draw(page, canvas, DIGITS[7])
    page.mouse.up()
    # A 2-epoch model on 400 generated digits may answer anything; it must answer.
    answers = ("Prediction:", "Not sure", "look like a digit", "Still drawing?")
    answer = main.get_by_text(answers[0])
    for text in answers[1:]:
        answer = answer.or_(main.get_by_text(text))
    answer.first.wait_for(timeout=60_000)
    screenshot(page, "train_page_model_on_draw")
    assert f"(your run {run.id})" in shown()


def test_stop_shows_where_the_run_really_stopped(train_page, train_server):
    page = train_page
    _open_train(page, train_server)
    _fill(page, "Epochs", 100, "--epochs 100")
    _fill(page, "Use only the first N training images", 400, "--limit 400")
    page.get_by_role("button", name="Launch").click()
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("batch ").first.wait_for(timeout=120_000)  # training has started
    main.get_by_role("button", name="Stop").click()
    warning = main.get_by_text("Stopped early at epoch")
    warning.wait_for(timeout=120_000)
    screenshot(page, "train_page_stopped")
    runs = {r.id: r for r in Jobs(train_server["runs"]).list()}
    stopped = [r for r in runs.values() if r.state == "stopped"]
    assert len(stopped) == 1
    progress = Jobs(train_server["runs"]).progress(stopped[0].id)
    where = progress["stopped_at"]
    assert f"epoch {where['epoch']}, batch {where['batch']} of {where['steps']}" in warning.inner_text()
    text = main.inner_text()
    assert f"epoch {where['epoch']}/100" in text and "Finished: test" not in text


def test_the_terminal_stays_quiet_through_every_page(train_page, train_server):
    """After the runs above, visit every page and change the architecture: no warning, no traceback."""
    page = train_page
    page.goto(train_server["url"])
    wait_for_app(page)
    nav = page.locator("[data-testid='stSidebarNav']")
    for title in ("Draw a digit", "Classify a photo", "Theory", "Calculator", "Home", "Train"):
        nav.get_by_text(title, exact=True).click()
        wait_for_app(page)
    page.get_by_label("Architecture").click()
    page.get_by_role("option", name="best: Best single CNN").click()
    _command_shows(page, "--arch best")
    wait_for_app(page)
    log = Path(train_server["log"]).read_text()
    noisy = [line for line in log.splitlines()
             if any(word in line for word in ("Traceback", "Warning", "WARNING", "Error", "error:"))]
    assert not noisy, "\n".join(noisy[:20])


def _zip_of_classes(per_class: int = 12) -> bytes:
    """A zip with one folder of small PNGs per class, as a user would make it."""
    import io
    import zipfile

    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, colour in (("cats", (200, 40, 40)), ("dogs", (40, 200, 40))):
            for i in range(per_class):
                png = io.BytesIO()
                Image.new("RGB", (16, 16), (colour[0], colour[1], i * 10)).save(png, "PNG")
                archive.writestr(f"pets/{name}/{i}.png", png.getvalue())
    return buf.getvalue()


def test_upload_list_and_delete_a_data_set(train_page, train_server):
    """An uploaded .zip lands in the uploads folder, is listed with its classes, then deleted."""
    page = train_page
    _open_train(page, train_server)
    page.get_by_text("Image classifier on a folder").click()
    page.get_by_text("An uploaded .zip").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": "../My Pets!.zip", "mimeType": "application/zip", "buffer": _zip_of_classes()}])
    main = page.locator("[data-testid='stMain']")
    listed = main.get_by_text("cats (12), dogs (12)", exact=True)  # the table's cell, not the warning
    listed.wait_for(state="attached", timeout=90_000)  # listed with its class counts (grid cells are hidden)
    uploads = train_server["runs"].parent / "uploads"
    (folder,) = [p for p in uploads.iterdir() if p.is_dir()]
    assert folder.name.startswith("my-pets")  # a slug of the name the browser sent, inside the uploads folder
    _command_shows(page, f"--data {folder}")
    screenshot(page, "train_page_uploaded_set")

    wait_for_app(page)
    expander = main.locator("[data-testid='stExpander']").filter(has_text="Delete uploaded sets")
    expander.get_by_text("Delete uploaded sets").click()
    option = page.get_by_role("option", name=folder.name)
    for _ in range(5):  # a rerun that lands while the list is open closes it: open it again
        wait_for_app(page)
        expander.locator("[data-testid='stSelectbox']").click()
        try:
            option.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    option.click()
    delete = expander.get_by_role("button", name="Delete set")
    assert delete.is_disabled()  # not before the confirmation
    expander.get_by_text("Confirm delete").click()
    delete.click()
    listed.wait_for(state="detached", timeout=60_000)
    assert not folder.exists()
