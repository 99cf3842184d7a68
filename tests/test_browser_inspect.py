"""The architecture inspector and the layer calculator in the Train tab, in a real browser, as
a user works them: pick a pipeline and read every layer with its output shape, parameters and
conv arithmetic; change an option and see the counts follow; with live updates off, press
"Inspect the network"; pick a worked
example in the calculator, then type a stack of one's own. Screenshots: tests/browser_kit.py."""

from pathlib import Path

import pytest

from browser_kit import CHROMIUM, browser_page, pick, served_studio, shots_folder

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def test_inspect_the_network_in_a_real_browser(tmp_path):
    shots = shots_folder(tmp_path)
    with served_studio(tmp_path / "runs") as url, \
            browser_page(playwright.sync_playwright, url) as page:
        pick(page, "train-pipeline", "dcgan")
        network = page.locator("#train-network")
        # picking the pipeline inspects it: the discriminator's strided conv, worked out
        # (8 px digits -> 4 px)
        playwright.expect(network).to_contain_text("(8 - 4 + 2 x 1) / 2 + 1 = 4",
                                                   timeout=90_000)
        playwright.expect(network).to_contain_text("ConvTranspose2d")
        playwright.expect(network).to_contain_text("164,961 parameters")
        page.screenshot(path=str(shots / "train-inspect.png"), full_page=True)
        # a wider generator: the counts follow the form as it changes
        page.get_by_text("Model options").click()
        width = page.get_by_label("width", exact=True)
        width.fill("64")
        width.press("Tab")
        playwright.expect(network).not_to_contain_text("164,961 parameters", timeout=90_000)
        playwright.expect(network).to_contain_text("(8 - 4 + 2 x 1) / 2 + 1 = 4")
        wider = network.inner_text()
        # live updates off: a change waits for the button
        page.locator("#train-inspect-live input").uncheck()
        width.fill("32")
        width.press("Tab")
        page.wait_for_timeout(1500)
        assert network.inner_text() == wider
        page.locator("#train-inspect").click()
        playwright.expect(network).to_contain_text("164,961 parameters", timeout=90_000)

        # The layer calculator: LeNet-5's figures, then a stack typed by hand
        page.get_by_text("Layer calculator").click()
        table = page.locator("#calc-table")
        playwright.expect(table).to_contain_text("4,640")          # the first worked example
        pick(page, "calc-example", "LeNet-5 (LeCun et al. 1998)")
        playwright.expect(table).to_contain_text("61,706 parameters")
        layers = page.locator("#calc-layers textarea")
        layers.fill("conv 8 k=3 s=2 p=1\ndense 10")
        playwright.expect(table).to_contain_text("(32 - 3 + 2 x 1) / 2 + 1 = 16")
        playwright.expect(table).to_contain_text("20,490")         # (8 x 16 x 16 + 1) x 10
        playwright.expect(page.locator("#calc-note")).not_to_contain_text("What to see")
        page.locator("#calc").screenshot(path=str(shots / "train-layer-calculator.png"))
