"""The Timeline, Runs and Classify tabs in a real browser, as a user works them: pick a run's
grid on the Timeline and open that checkpoint in Images; compare two runs in the Runs tab (both
curves drawn, the options that differ in bold); draw a digit on the Classify pad and read every
classifier's answer. Screenshots: tests/browser_kit.py."""

from pathlib import Path

import pytest

from browser_kit import CHROMIUM, browser_page, pick, served_studio, shots_folder
from helpers import TINY
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def test_timeline_compare_and_classify_in_a_real_browser(tmp_path):
    shots = shots_folder(tmp_path)
    runs_dir = tmp_path / "runs"
    gans = []
    for lr, name in ((2e-4, "a"), (1e-3, "b")):
        run = start_run("dcgan", "digits", config_overrides={"width": 8, "z_dim": 8, "lr_g": lr},
                        trainer_overrides=TINY, runs_dir=runs_dir, name=name)
        assert train_run(run) == "done"
        gans.append(run.id)
    judge = start_run("mlp", "digits", config_overrides={"width": 16},
                      trainer_overrides={**TINY, "steps": 30, "sample_every": 0},
                      runs_dir=runs_dir, name="judge")
    assert train_run(judge) == "done"

    with served_studio(runs_dir) as url, browser_page(playwright.sync_playwright, url) as page:
        # Timeline: the fixed-seed grids over training; the step-4 grid opens in Images.
        page.get_by_role("tab", name="Timeline").click()
        pick(page, "timeline-run", gans[0])
        strip = page.locator("#timeline-strip")
        strip.locator("img").nth(1).wait_for()
        strip.get_by_text("step 4").first.click()
        page.get_by_text("Step 4:", exact=False).wait_for()
        page.screenshot(path=str(shots / "timeline.png"), full_page=True)
        page.locator("#timeline-open").click()
        playwright.expect(page.locator("#images-run input")).to_have_value(gans[0])
        playwright.expect(page.get_by_label("Checkpoint step").first).to_have_value("4")

        # Runs: two rows clicked, both curves overlaid, the differing option in bold.
        page.get_by_role("tab", name="Runs").click()
        table = page.locator("#runs-table")
        chosen = page.locator("#runs-chosen")
        for run_id in gans:                    # one at a time: each click updates the choice
            table.get_by_text(run_id, exact=True).click()
            playwright.expect(chosen).to_contain_text(run_id, timeout=30_000)
        for run_id in gans:
            playwright.expect(chosen).to_contain_text(run_id)
        playwright.expect(page.locator("#runs-comparison")).to_contain_text("lr_g")
        playwright.expect(page.locator("#runs-comparison strong").first).to_be_visible()
        lines = page.locator('#runs-overlay [aria-roledescription="line mark"]')
        playwright.expect(lines).to_have_count(2)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "runs-compare.png"), full_page=True)

        # Classify: a stroke drawn on the pad; the classifier answers with a digit.
        page.get_by_role("tab", name="Classify").click()
        # the tab has settled: its classifier tools (below the pad) are drawn for the run
        page.locator("#classify-tool-filters").wait_for()
        page.wait_for_timeout(500)
        canvas = page.locator("#classify-pad canvas").first
        canvas.wait_for()
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.25
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 11):                  # a "1": one downward stroke
            page.mouse.move(x, y + i * box["height"] * 0.05)
        page.mouse.up()
        page.locator("#classify-go").click()
        answers = page.locator("#classify-answers")
        playwright.expect(answers).to_contain_text(judge.id, timeout=90_000)
        playwright.expect(answers).to_contain_text("mlp")
        page.screenshot(path=str(shots / "classify-pad.png"), full_page=True)
