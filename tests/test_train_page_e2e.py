"""In Chromium: launch a short MNIST run from the Train page, watch it end, then predict with it on Draw."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from core.data.mnist import FILES, write_idx
from core.jobs import Jobs
from tests.conftest import ROOT, _free_port, _wait_http, screenshot, wait_for_app
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
    runs = base / "runs"
    port = _free_port()
    env = os.environ | {"CNN_STUDIO_DATA": str(base / "data"), "CNN_STUDIO_RUNS": str(runs),
                        "PYTHONUNBUFFERED": "1"}
    log = open(base / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/_stcore/health", proc)
        yield {"url": url, "runs": runs}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()
        for run in Jobs(runs).list():  # runs live in their own sessions: end any left over
            if not run.finished and run.status.get("supervisor_pid"):
                os.killpg(run.status["supervisor_pid"], signal.SIGKILL)


@pytest.fixture
def train_page(browser, train_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


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
    page.goto(train_server["url"])
    wait_for_app(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Train").click()
    page.get_by_text("Equivalent command line").wait_for()
    page.get_by_label("Architecture").click()
    page.get_by_role("option", name="seed: Notebook baseline CNN").click()
    _command_shows(page, "--arch seed")
    _fill(page, "Epochs", 2, "--epochs 2")
    _fill(page, "Batch size", 32, "--batch-size 32")
    _fill(page, "Use only the first N training images (0: all 60,000)", 400, "--limit 400")
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

    # Use it: the Draw page lists the run's model; pick it and draw.
    main.get_by_text("Use it now").click()
    page.get_by_text("Draw a digit on the black canvas").wait_for()
    page.get_by_label("Model").click()
    # Shipped models say "(shipped)"; the one run of this test is the only "(your run ...)".
    page.get_by_role("option").filter(has_text="(your run ").click()
    wait_for_app(page)
    canvas = page.locator("canvas.upper-canvas >> visible=true")
    draw(page, canvas, DIGITS[7])
    page.mouse.up()
    main.get_by_text("Prediction:").or_(main.get_by_text("Not sure")).first.wait_for(timeout=60_000)
    screenshot(page, "train_page_model_on_draw")
    picked = page.locator("[data-testid='stSelectbox']").first
    assert "(your run " in (picked.locator("input").first.input_value() or picked.inner_text())
    assert "Prediction:" in main.inner_text() or "Not sure" in main.inner_text()
