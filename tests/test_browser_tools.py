"""The Tools panels in a real browser, as a user works them: in the Images tab (image in, image
out), picking a pix2pix run opens the panel; a .zip of drawings uploaded there and "Run
translate" show input | output rows; a CycleGAN run translates its own validation pictures the
other way (direction b_to_a) when no pictures are given. In the Text tab a transformer's
attention maps, in the Classify tab a LeNet's filters and a classic decision tree's summary
and drawn tree. Last, a run picked before the page's load has answered stays picked.
Screenshots: tests/browser_kit.py."""

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_kit import (CHROMIUM, browser_page, pick, served_studio, shots_folder,
                         wait_for_answer)
from helpers import TEXT_TRAINER, TINY
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
QUICK = {**TINY, "steps": 4, "sample_every": 0, "checkpoint_every": 4}


def test_translate_a_zip_and_validation_pictures_in_a_real_browser(tmp_path):
    shots = shots_folder(tmp_path)
    runs_dir = tmp_path / "runs"
    made = {}
    for pipeline, data in (("pix2pix", "shapes-edges"), ("cyclegan", "shapes-seasons")):
        run = start_run(pipeline, data, config_overrides={"width": 4, "d_width": 4},
                        trainer_overrides=QUICK, runs_dir=runs_dir, name=pipeline)
        assert train_run(run) == "done"
        made[pipeline] = run.id
    for pipeline, data, config, trainer in (
            ("transformer", "shakespeare", {"n_layer": 1, "n_embd": 32, "n_head": 2,
                                            "context": 32}, {**TEXT_TRAINER, "steps": 2}),
            ("lenet5", "digits", {}, QUICK)):
        run = start_run(pipeline, data, config_overrides=config, trainer_overrides=trainer,
                        runs_dir=runs_dir, name=pipeline)
        assert train_run(run) == "done"
        made[pipeline] = run.id
    from pipelines.classic.fit import fit_run
    made["tree"] = fit_run("decision-tree", "iris", runs_dir=runs_dir, name="tree").id
    with zipfile.ZipFile(tmp_path / "drawings.zip", "w") as archive:
        for i, value in enumerate((240, 20, 128)):
            drawing = np.full((32, 32), value, np.uint8)
            drawing[8:24, 8:24] = 255 - value                  # a square, in ink
            Image.fromarray(drawing).save(tmp_path / f"{i}.png")
            archive.write(tmp_path / f"{i}.png", f"drawings/{i}.png")

    with served_studio(runs_dir) as url, browser_page(playwright.sync_playwright, url) as page:
        page.get_by_role("tab", name="Images").click()
        # the page has settled on the newest image run (a pick before its tools are drawn
        # would be followed by their drawing, and a click meanwhile reach a replaced button)
        playwright.expect(page.locator("#images-tools-run")).to_contain_text(made["cyclegan"],
                                                                             timeout=60_000)
        pick(page, "images-run", made["pix2pix"])
        playwright.expect(page.locator("#images-tools-run")).to_contain_text(made["pix2pix"],
                                                                             timeout=60_000)
        # the run's tools take pictures: the Tools panel opens by itself
        uploads = page.locator("#images-tool-inputs input[type=file]")
        playwright.expect(page.locator("#images-tool-inputs")).to_be_visible()
        uploads.set_input_files(str(tmp_path / "drawings.zip"))
        # Gradio shows the name and the extension in two elements: "drawings .zip" in the
        # text of one CI run, "drawings.zip" in another's.
        playwright.expect(page.locator("#images-tool-inputs")).to_contain_text(
            re.compile(r"drawings\s*\.zip"))
        page.locator("#images-tool-translate").click()
        result = page.locator("#images-tool-result img")
        wait_for_answer(page, "#images-tool-result img", runs_dir)
        first = result.get_attribute("src")
        # three drawings -> three rows of input | output: a grid 2 wide, 3 high
        shown = page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]",
                              result.element_handle())
        assert shown[1] > shown[0]
        page.screenshot(path=str(shots / "images-translate.png"), full_page=True)

        # CycleGAN, winter -> summer, on its own validation pictures (no upload)
        pick(page, "images-run", made["cyclegan"])
        page.locator("#images-tool-inputs button[aria-label='Clear']").first.click()
        tools = page.locator("#images-tools")
        tools.get_by_label("direction", exact=True).click()
        page.get_by_role("option", name="b_to_a", exact=True).click()
        tools.get_by_label("count", exact=True).fill("4")
        tools.get_by_label("count", exact=True).press("Tab")
        page.locator("#images-tool-translate").click()
        playwright.expect(result).not_to_have_attribute("src", first, timeout=90_000)
        numbers = page.locator("#images-tool-numbers")
        playwright.expect(numbers).to_contain_text("cycle_l1")
        page.screenshot(path=str(shots / "images-translate-cyclegan.png"), full_page=True)

        # Text tab: the transformer's attention maps (the panel opens on a click)
        page.get_by_role("tab", name="Text").click()
        pick(page, "text-run", made["transformer"])
        page.locator("#text-tools").get_by_text("Tools (attention maps").click()
        playwright.expect(page.locator("#text-tool-inputs")).to_be_hidden()  # none takes any
        page.locator("#text-tool-attention").click()
        wait_for_answer(page, "#text-tool-result img", runs_dir)
        page.locator("#text-tools").screenshot(path=str(shots / "text-tools-attention.png"))

        # Classify tab: a LeNet's first-layer filters (the panel is open)
        page.get_by_role("tab", name="Classify").click()
        pick(page, "classify-run", made["lenet5"])
        page.locator("#classify-tool-filters").click()
        wait_for_answer(page, "#classify-tool-result img", runs_dir)
        page.locator("#classify-tools").screenshot(path=str(shots / "classify-tools-filters.png"))

        # ... and a classic model's fit: its tables, then its drawn tree
        pick(page, "classify-run", made["tree"])
        page.locator("#classify-tool-summary").click()
        playwright.expect(page.locator("#classify-tool-text")).to_contain_text(
            "decision-tree on iris", timeout=90_000)
        tools = page.locator("#classify-tools")
        tools.get_by_label("which", exact=True).click()
        page.get_by_role("option", name="tree", exact=True).click()
        page.locator("#classify-tool-plot").click()
        playwright.expect(page.locator("#classify-tool-numbers")).to_contain_text(
            '"tree"', timeout=90_000)
        tools.screenshot(path=str(shots / "classify-tools-classic.png"))

    # A user who picks a run before a busy server has answered the page's load (which lists
    # the runs and picks the newest, the cyclegan, where none is picked) keeps their pick.
    held = []
    with served_studio(runs_dir) as url, \
            browser_page(playwright.sync_playwright, url, held_load=held) as page:
        page.get_by_role("tab", name="Images").click()
        pick(page, "images-run", made["pix2pix"])
        assert held, "the page's load events were not held"
        for request in held:
            request.continue_()
        # the load has answered: the Train tab's run, picked by nobody, is now the newest run
        page.get_by_role("tab", name="Train").click()
        playwright.expect(page.locator("#live-run input")).to_have_value(made["tree"],
                                                                         timeout=60_000)
        page.get_by_role("tab", name="Images").click()
        playwright.expect(page.locator("#images-run input")).to_have_value(made["pix2pix"])
        playwright.expect(page.locator("#images-tools-run")).to_contain_text(made["pix2pix"],
                                                                             timeout=60_000)
