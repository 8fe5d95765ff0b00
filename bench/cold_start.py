"""Cold start: seconds from `streamlit run app.py` to the home page rendered in Chromium.

    python -m bench.cold_start [--runs 3]
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


def cold_start(browser) -> float:
    port = _port()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
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
        page.get_by_text("Data sets found").wait_for(timeout=120_000)
        return time.monotonic() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with sync_playwright() as pw:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        times = [cold_start(browser) for _ in range(args.runs)]
        browser.close()
    print("cold start (process start -> home page rendered), seconds:", ", ".join(f"{t:.1f}" for t in times))
    print(f"median {statistics.median(times):.1f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
