"""A pipeline whose default training length depends on the data set (stylegan: a 8 px digit
step is cheap, a 32 px shapes step is not), in a real browser: the steps box follows the data
picked and the preset chosen, and Start trains what the box says. Screenshots:
tests/browser_kit.py."""

from pathlib import Path

import pytest

from browser_kit import CHROMIUM, browser_page, pick, served_studio, set_number, shots_folder
from pipelines.core.runs import RunFolder
from pipelines.registry import get_entry

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def test_the_steps_box_follows_the_data_set_and_the_preset(tmp_path):
    shots, runs_dir = shots_folder(tmp_path), tmp_path / "runs"
    by_data = get_entry("stylegan").train_defaults_by_data
    digits, shapes = by_data["digits"]["steps"], by_data["shapes"]["steps"]
    with served_studio(runs_dir) as url, \
            browser_page(playwright.sync_playwright, url) as page:
        pick(page, "train-pipeline", "stylegan")
        page.get_by_text("StyleGAN2 in miniature").wait_for(timeout=90_000)
        page.locator("#train-inspect-live input").uncheck()   # no scratch runs meanwhile
        page.get_by_text("Training options").click()
        steps = page.get_by_label("steps", exact=True)
        playwright.expect(steps).to_have_value(str(digits))          # digits: picked first
        pick(page, "train-data", "shapes")
        playwright.expect(steps).to_have_value(str(shapes))
        preset = page.locator("#train-preset")
        preset.get_by_label("quick look").check()
        playwright.expect(steps).to_have_value(str(shapes // 10))
        pick(page, "train-data", "digits")
        playwright.expect(steps).to_have_value(str(digits // 10))
        pick(page, "train-data", "shapes")
        preset.get_by_label("default").check()
        playwright.expect(steps).to_have_value(str(shapes))
        page.screenshot(path=str(shots / "train-steps-by-data.png"), full_page=True)

        set_number(page, "steps", shapes - 100)             # Start trains what the box says
        page.locator("#train-start").click()
        page.get_by_text("Started run", exact=False).first.wait_for()
        run = RunFolder(next(p for p in runs_dir.iterdir() if not p.name.startswith(".")))
        assert (run.info()["data"], run.info()["total_steps"]) == ("shapes", shapes - 100)
        page.locator("#live-progress").get_by_text("running").wait_for(timeout=90_000)
        page.locator("#live-stop").click()
        page.locator("#live-progress").get_by_text("stopped").wait_for(timeout=90_000)

        # Duplicate with changes: the form takes that run's own steps and data set, and the
        # data set's default does not overwrite them.
        pick(page, "train-data", "digits")
        playwright.expect(steps).to_have_value(str(digits))
        set_number(page, "steps", 333)
        page.locator("#live-duplicate").click()
        playwright.expect(page.locator("#train-data input")).to_have_value("shapes")
        steps = page.get_by_label("steps", exact=True)      # the form is drawn again
        page.wait_for_timeout(1000)                         # (any data.change has landed)
        playwright.expect(steps).to_have_value(str(shapes - 100))
