"""The studio in a real browser (Playwright driving Debian's headless Chromium): start a short
DCGAN run from the Train tab, watch its curves and grids appear, stop it, resume it, sample the
same images twice from the Images tab with a chosen seed, drop one of them back on the tab to
restore its settings and draw it again, and find the run in the Runs tab.
Screenshots: tests/browser_kit.py. Skipped where Chromium or Playwright is missing (.ci/run
installs both)."""

from pathlib import Path

import pytest

from browser_kit import CHROMIUM, browser_page, pick, served_studio, set_number, shots_folder

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture
def studio_url(tmp_path):
    with served_studio(tmp_path / "runs") as url:
        yield url, tmp_path / "runs"


def test_train_watch_stop_resume_sample_and_list_in_a_real_browser(studio_url, tmp_path):
    SHOTS = shots_folder(tmp_path)
    url, runs_dir = studio_url
    with browser_page(playwright.sync_playwright, url) as page:
        # Train: a short DCGAN, from the generated form.
        pick(page, "train-pipeline", "dcgan")
        # The form is rebuilt for the chosen pipeline (from its spec, in the page's process):
        # wait for dcgan's own form before opening it.
        page.get_by_text("DCGAN: transposed-conv").wait_for(timeout=90_000)
        page.get_by_text("Training options").click()
        page.get_by_label("steps", exact=True).wait_for(state="visible")
        set_number(page, "steps", 600)
        set_number(page, "sample_every", 40)
        set_number(page, "checkpoint_every", 40)
        set_number(page, "log_every", 10)
        page.locator("#train-start").click()
        page.get_by_text("Started run", exact=False).first.wait_for()
        run_id = next(p.name for p in runs_dir.iterdir() if not p.name.startswith("."))

        # Live view: the progress line, the loss plot and a sample grid appear.
        page.locator("#live-progress").get_by_text("running").wait_for(timeout=90_000)
        # (below the Network panel's tables: a lazy image loads once it is scrolled to)
        page.locator("#live-grid").scroll_into_view_if_needed()
        page.locator("#live-grid img").wait_for(timeout=90_000)
        # The loss plot: a numeric y axis (not one category per value) and one line per series
        # (it was empty at first; Vega labels its marks for screen readers).
        losses = page.locator("#live-losses")
        losses.locator('[aria-roledescription="line mark"]').nth(1).wait_for()
        y_axis = losses.locator('[aria-roledescription="axis"][aria-label^="Y-axis"]')
        assert "linear scale" in y_axis.get_attribute("aria-label")
        # A DCGAN neither validates nor schedules its learning rates: those charts stay
        # empty, and the line under the charts says why.
        playwright.expect(page.locator("#live-chart-note")).to_contain_text(
            "this family does not validate")
        page.screenshot(path=str(SHOTS / "train-live.png"), full_page=True)

        # Stop: it saves and the run says stopped; Resume: it trains again.
        page.locator("#live-stop").click()
        page.locator("#live-progress").get_by_text("stopped").wait_for(timeout=90_000)
        playwright.expect(page.locator("#live-stop")).to_be_disabled()   # nothing to stop
        page.locator("#live-resume").click()
        page.locator("#live-progress").get_by_text("running").wait_for(timeout=90_000)
        playwright.expect(page.locator("#live-stop")).to_be_enabled()
        page.locator("#live-stop").click()
        page.locator("#live-progress").get_by_text("stopped").wait_for(timeout=90_000)

        # Images: the same seed gives the same image.
        page.get_by_role("tab", name="Images").click()
        pick(page, "images-run", run_id)
        set_number(page, "Seed", 7)
        set_number(page, "Batch size", 4)
        sources = []
        for _ in range(2):
            page.locator("#images-generate").click()
            page.locator("#images-gallery img").nth(3).wait_for()
            first = page.locator("#images-gallery img").first
            sources.append(first.get_attribute("src"))
            page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "images.png"), full_page=True)
        pictures = [page.request.get(src).body() for src in sources]
        assert pictures[0] == pictures[1]  # (the page's file cache is keyed by content too)
        assert len(list((runs_dir / ".ui").glob("*/*/seed7.png"))) == 2  # two samplings

        # Restore: the third sample, dropped on the tab, brings back its seed and batch size
        # (changed here first), and Generate draws the same picture in the same place.
        third = sorted((runs_dir / ".ui").glob("*/*/seed9.png"))[0]
        set_number(page, "Seed", 0)
        set_number(page, "Batch size", 1)
        page.locator("#images-generate").click()
        # (the last batch's four stay in view until the new one comes: a minute's patience)
        playwright.expect(page.locator("#images-gallery img")).to_have_count(1, timeout=60_000)
        page.locator("#images-restore input[type=file]").set_input_files(str(third))
        page.locator("#images-restore-note").get_by_text("Restored run").wait_for()
        playwright.expect(page.get_by_label("Seed", exact=True)).to_have_value("7")
        playwright.expect(page.get_by_label("Batch size", exact=True)).to_have_value("4")
        # The form is redrawn with the restored controls after the note: Generate on it.
        page.locator("#images-form-restored").wait_for()
        page.locator("#images-generate").click()
        page.locator("#images-gallery img").nth(3).wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "images-restore.png"), full_page=True)
        redrawn = page.request.get(page.locator("#images-gallery img").nth(2)
                                   .get_attribute("src")).body()
        assert redrawn == third.read_bytes()  # same pixels, same settings inside

        # History: every batch drawn here is listed, newest first; picking the one-picture
        # batch of seed 0 and restoring it sets seed and batch size back.
        page.locator("#images-history-open").get_by_text("History").first.click()
        history = page.locator("#images-history")
        playwright.expect(history).to_contain_text(run_id)
        rows = history.locator('[role="row"]')             # a header, then one per batch
        playwright.expect(rows).to_have_count(5)           # 7 x 4 twice, 0 x 1, 7 x 4 again
        history.get_by_test_id("cell-1-2").click()         # the seed-0 batch's seed
        page.locator("#images-history-shown img").first.wait_for()
        page.locator("#images-history-restore").click()
        playwright.expect(page.get_by_label("Seed", exact=True)).to_have_value("0")
        playwright.expect(page.get_by_label("Batch size", exact=True)).to_have_value("1")
        page.screenshot(path=str(SHOTS / "images-history.png"), full_page=True)

        # Runs: the run is in the table.
        page.get_by_role("tab", name="Runs").click()
        playwright.expect(page.locator("#runs-table")).to_contain_text(run_id, timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
