"""What the browser tests share: the studio served on a free port, Debian's headless Chromium
(Playwright never downloads a browser here), and the page's common gestures. Screenshots go to
a temporary folder, or with STUDIO_SCREENSHOTS=docs/studio to the README's (retaken only when
asked, so that the suite leaves the checkout as it found it)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
SHOTS_ENV = "STUDIO_SCREENSHOTS"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shots_folder(tmp_path) -> Path:
    shots = REPO / os.environ[SHOTS_ENV] if os.environ.get(SHOTS_ENV) else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@contextmanager
def served_studio(runs_dir):
    """The studio (launch.py, as a user starts it) on a free port: yields its URL."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    log = console_log(port)
    with log.open("wb") as console:
        server = subprocess.Popen([sys.executable, "launch.py", "--no-browser", "--port",
                                   str(port), "--runs-dir", str(runs_dir)], cwd=REPO, env=env,
                                  stdout=console, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.unlink(missing_ok=True)


def console_log(port: int) -> Path:
    """Where the studio served on `port` writes its console (its tracebacks): a failed wait
    shows its end. The port is free while the studio runs, so the name is its own."""
    return Path(tempfile.gettempdir()) / f"studio-{port}.log"


@contextmanager
def browser_page(sync_playwright, url, held_load: list | None = None):
    """A 1300 x 1000 page on `url`, with a minute's patience for each wait. `held_load`: a
    list that gets the page-load events' requests, held (unsent) until the test sends them
    with `route.continue_()`: a server too busy to answer them before the user acts."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(60_000)
        if held_load is not None:
            hold_page_load(page, url, held_load)
        page.goto(url, wait_until="load")
        try:
            yield page
        finally:
            browser.close()


def hold_page_load(page, url, held: list) -> None:
    """Put the requests of the page's `load` listeners (Gradio's queue joins, told apart by
    the listener's id in the page's /config) in `held` instead of sending them. Not those of
    a gr.render's, which also listens to its inputs' changes: its answers come in the order
    asked (one listener's events run one at a time), so its load never answers after a
    change, as a held one would."""
    with urllib.request.urlopen(f"{url}/config", timeout=30) as answer:
        config = json.load(answer)
    on_load = {d["id"] for d in config["dependencies"]
               if all(event == "load" for _, event in d["targets"])}

    def route(request_route):
        body = request_route.request.post_data_json or {}
        if body.get("fn_index") in on_load:
            held.append(request_route)
        else:
            request_route.continue_()
    page.route("**/queue/join*", route)


def set_number(page, label, value):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def pick(page, dropdown_id, text):
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=text, exact=True).click()


def wait_for_answer(page, selector, runs_dir, timeout=90_000):
    """Wait for `selector` (what a button's handler shows) to be visible. A warning the page
    shows instead fails at once with its text, a timeout after `timeout` ms; either with the
    ends of the studio's console and of its sampling worker's log (where a handler that
    failed or never answered says why)."""
    answer = page.locator(selector)
    warning = page.get_by_test_id("toast-text")
    try:
        answer.or_(warning).first.wait_for(timeout=timeout)
        if answer.first.is_visible():
            return
        seen = f"the page warned: {warning.first.inner_text()}"
    except Exception as e:  # noqa: BLE001 - Playwright's TimeoutError, reported with the logs
        shown = page.locator("body").inner_text()[-2000:]
        seen = f"{e.__class__.__name__}; the page shows:\n{shown}"
    logs = [console_log(urllib.parse.urlsplit(page.url).port),
            Path(runs_dir) / ".jobs" / "worker.log"]
    ends = "\n".join(f"--- {log}:\n{log.read_text(errors='replace')[-4000:]}"
                     for log in logs if log.exists())
    pytest.fail(f"{selector} did not appear: {seen}\n{ends}")
