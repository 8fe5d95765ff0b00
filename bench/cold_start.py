"""Cold start: seconds from `streamlit run app.py` to the home page rendered in Chromium.

    python -m bench.cold_start [--runs 3]
    python -m bench.cold_start --baseline    # the same for an empty Streamlit app, to compare
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BASELINE_APP = 'import streamlit as st\nst.title("Empty")\nst.write("This machine:")\n'


def cold_start(browser, app: str = "app.py") -> float:
    port = _port()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        page = browser.new_page()
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}", timeout=2000)
                break
            except Exception:  # server not listening yet
                time.sleep(0.1)
        page.get_by_text("This machine:").wait_for(timeout=120_000)  # the last part of Home
        return time.monotonic() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="time an empty Streamlit app instead")
    args = parser.parse_args()
    app = "app.py"
    if args.baseline:
        import tempfile

        app = str(Path(tempfile.mkdtemp(prefix="empty-app-")) / "app.py")
        Path(app).write_text(BASELINE_APP)
    with sync_playwright() as pw:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        times = [cold_start(browser, app) for _ in range(args.runs)]
        browser.close()
    print(f"cold start of {'an empty Streamlit app' if args.baseline else 'CNN Studio'} "
          "(process start -> home page rendered), seconds:", ", ".join(f"{t:.1f}" for t in times))
    print(f"median {statistics.median(times):.1f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
