"""How long `python launch.py` takes to a usable page, in a real browser (Debian's Chromium).

    python bench/startup.py [--runs 3]

Two times per start, from launching the process: the server answers its first HTTP request,
and the Train tab's form (its Start button, built from the pipeline's options) is on screen.
Before the torch-free specs the second included the sampling worker's cold start (the page
asked the worker, which imports torch, to describe the first pipeline); now the page builds
forms from the specs itself (docs/architecture.md has both measurements). Prints one line per
start and the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers import free_port  # noqa: E402


def one_start(browser) -> tuple[float, float]:
    port, runs = free_port(), tempfile.mkdtemp(prefix="startup-")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.monotonic()
    server = subprocess.Popen([sys.executable, "launch.py", "--no-browser", "--port", str(port),
                               "--runs-dir", runs], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        answered = time.monotonic() - t0
        page = browser.new_page()
        page.goto(url)
        page.locator("#train-start").wait_for(timeout=120_000)
        form = time.monotonic() - t0
        page.close()
    finally:
        server.terminate()
        server.wait()
    return answered, form


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        times = []
        for _ in range(args.runs):
            times.append(one_start(browser))
            print(f"server answers {times[-1][0]:.2f} s, Train form shown {times[-1][1]:.2f} s",
                  flush=True)
        browser.close()
    print(f"median: server {statistics.median(t[0] for t in times):.2f} s, form "
          f"{statistics.median(t[1] for t in times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
