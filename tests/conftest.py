"""Shared fixtures: isolated settings, a live Streamlit server and a Chromium page."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Fixtures shared across test files live in tests/fixtures/ and are registered here.
pytest_plugins = ("tests.fixtures.mnist",)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Point data, runs and shipped models at empty temp folders."""
    from core import config

    paths = {name: tmp_path / name for name in ("data", "runs", "models")}
    for path in paths.values():
        path.mkdir()
    monkeypatch.setenv(config.DATA_ENV, str(paths["data"]))
    monkeypatch.setenv(config.RUNS_ENV, str(paths["runs"]))
    monkeypatch.setenv(config.MODELS_ENV, str(paths["models"]))
    return paths


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout}s")


@contextlib.contextmanager
def running_streamlit(runs: Path, log_dir: Path, env: dict | None = None):
    """`streamlit run app.py` on a free port with its own runs folder; yields a dict with the URL.

    ``env`` adds settings (a data root, say). On exit the server and any run it started end.
    """
    port = _free_port()
    env = os.environ | {"CNN_STUDIO_RUNS": str(runs), "PYTHONUNBUFFERED": "1"} | (env or {})
    log = open(log_dir / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/_stcore/health", proc)
        yield {"url": url, "runs": runs, "pid": proc.pid, "log": log.name}
    finally:
        # The server may have spawned training processes: end its whole group by PID.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        from core.jobs import Jobs

        for run in Jobs(runs).list():  # runs live in their own sessions: end any left over
            if not run.finished and run.status.get("supervisor_pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.status["supervisor_pid"], signal.SIGKILL)


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """One server for the whole session; its runs folder is a fresh temp folder."""
    with running_streamlit(tmp_path_factory.mktemp("e2e-runs"), tmp_path_factory.mktemp("e2e-log")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright. In CI a missing browser fails."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing in CI: browser tests must run")
        pytest.skip(f"{CHROMIUM} not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@contextlib.contextmanager
def new_tab(browser):
    """A fresh browser tab; fails the test if the page it leaves shows a Streamlit exception box."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
        shown = page.locator("[data-testid='stException']")
        errors = [shown.nth(i).inner_text()[:300] for i in range(shown.count())]
        assert not errors, f"the page showed an exception: {errors}"
    finally:
        context.close()


@pytest.fixture
def page(browser, streamlit_server):
    with new_tab(browser) as tab:
        yield tab


def page_exceptions(at) -> list[str]:
    """Exception boxes an AppTest run shows (tests assert this is empty)."""
    return [e.message for e in at.exception]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/ (git-ignored) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for_app(page, timeout: float = 90_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout,
    )
