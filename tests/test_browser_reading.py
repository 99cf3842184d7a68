"""The Text tab's models that read text, in a real browser, as a user works them: a translator
trained on the user's own pairs file is listed under "Classify, fill a mask, translate, explore
embeddings"; the user types a source into the translate tool's box, runs it, and gets the
translation and its alignment map; then picks word embeddings trained on a text file and asks
for a word's neighbours; then picks a text classifier trained on a CSV of passages and
classifies a passage typed on two lines: the probability of each class is drawn as bars (the
model's own numbers, the likeliest named on top) and the answer's text keeps the passage's
lines; then uploads a .tsv of pairs in the Train tab and sees it named as pairs: data.
Screenshots: tests/browser_kit.py."""

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from browser_kit import (CHROMIUM, browser_page, pick, served_studio, shots_folder,
                         wait_for_answer)
from pipelines.core.run_setup import start_run
from pipelines.data.language import load_labelled_text
from pipelines.data.text import read_shakespeare
from pipelines.core.training_run import train_run
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def test_translate_a_typed_source_in_the_text_tab(tmp_path):
    shots = shots_folder(tmp_path)
    days = [dt.date(1990, 1, 1) + dt.timedelta(days=37 * i) for i in range(60)]
    pairs = tmp_path / "dates.tsv"
    pairs.write_text("".join(f"{d.day}/{d.month}/{d.year}\t{d.isoformat()}\n" for d in days))
    run = start_run("seq2seq-gru", f"pairs:{pairs}", runs_dir=tmp_path / "runs",
                    config_overrides={"embed_dim": 8, "hidden_size": 16, "attention_dim": 16,
                                      "val_pairs": 4},
                    trainer_overrides={"steps": 4, "batch_size": 8, "log_every": 2,
                                       "sample_every": 0, "checkpoint_every": 0,
                                       "final_eval": False})
    assert train_run(run) == "done"
    plays = tmp_path / "plays.txt"
    plays.write_text(read_shakespeare()[:30_000], encoding="utf-8")
    vectors = start_run("word2vec", f"text:{plays}", runs_dir=tmp_path / "runs",
                        config_overrides={"vector_size": 8, "window": 2, "min_count": 2,
                                          "decay_steps": 4},
                        trainer_overrides={"steps": 4, "batch_size": 16, "log_every": 2,
                                           "sample_every": 0, "checkpoint_every": 0,
                                           "final_eval": False})
    assert train_run(vectors) == "done"
    lines = load_labelled_text("shakespeare-lines")
    passages = tmp_path / "plays.csv"
    with passages.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["passage", "play"]] + [
            [t, lines.class_names[y]] for t, y in zip(lines.train_texts, lines.train_labels)
            if y in (0, 3)][::20])
    classifier = start_run("bert", f"csv:{passages}", runs_dir=tmp_path / "runs",
                           config_overrides={"hidden_size": 16, "layers": 1, "heads": 2,
                                             "intermediate_size": 32, "vocab_size": 300,
                                             "max_length": 32, "pretrain_steps": 2,
                                             "finetune_steps": 2, "warmup_steps": 1,
                                             "finetune_warmup_steps": 1, "text": "passage",
                                             "target": "play"},
                           trainer_overrides={"steps": 4, "batch_size": 8, "log_every": 2,
                                              "sample_every": 0, "checkpoint_every": 0,
                                              "final_eval": False})
    assert train_run(classifier) == "done"
    with served_studio(tmp_path / "runs") as url, \
            browser_page(playwright.sync_playwright, url) as page:
        page.get_by_role("tab", name="Text").click()
        page.locator("#reader").get_by_text("Classify, fill a mask, translate").first.click()
        # newest first: the classifier, the embeddings, then the translator
        pick(page, "reader-run", run.id)
        # the panel drawn for the picked run (a busy machine draws it a moment later)
        playwright.expect(page.locator("#reader-tools-run")).to_contain_text(run.id,
                                                                           timeout=60_000)
        button = page.locator("#reader-tool-translate")
        source = page.locator("#reader-tools textarea").first    # the tool's one text box
        source.fill("3/3/1994")
        button.click()
        wait_for_answer(page, "#reader-tool-result img", tmp_path / "runs")
        # what it wrote, after the source the user typed (a 4-step model writes anything)
        playwright.expect(page.locator("#reader-tool-text")).to_contain_text("3/3/1994 ->")
        playwright.expect(page.locator("#reader-tool-numbers")).to_contain_text("translation")
        # the alignment map above the translation, in the same column; no class bars
        drawn = page.locator("#reader-tool-result img").bounding_box()
        written = page.locator("#reader-tool-text").bounding_box()
        assert drawn["y"] + drawn["height"] <= written["y"]
        assert (drawn["x"] < written["x"] + written["width"]
                and written["x"] < drawn["x"] + drawn["width"])
        playwright.expect(page.locator("#reader-tool-probabilities")).to_be_hidden()
        page.screenshot(path=str(shots / "reader-translate.png"), full_page=True)

        pick(page, "reader-run", vectors.id)
        playwright.expect(page.locator("#reader-tools-run")).to_contain_text(vectors.id,
                                                                           timeout=60_000)
        button = page.locator("#reader-tool-neighbours")
        page.locator("#reader-tools textarea").first.fill("you")
        button.click()
        playwright.expect(page.locator("#reader-tool-text")).to_contain_text("you",
                                                                             timeout=90_000)
        playwright.expect(page.locator("#reader-tool-numbers")).not_to_be_empty()
        page.screenshot(path=str(shots / "reader-neighbours.png"), full_page=True)

        pick(page, "reader-run", classifier.id)
        playwright.expect(page.locator("#reader-tools-run")).to_contain_text(classifier.id,
                                                                           timeout=60_000)
        button = page.locator("#reader-tool-classify")
        passage_box = page.locator("#reader-tools textarea").first
        playwright.expect(passage_box).to_have_attribute("rows", "4")   # option(lines=4)
        passage = "Speak, speak.\nWhat news from Rome?"
        passage_box.fill(passage)
        button.click()
        bars = page.locator("#reader-tool-probabilities")
        wait_for_answer(page, "#reader-tool-probabilities", tmp_path / "runs")
        # a bar for each of the two plays with the model's own probability, the likeliest
        # named on top; the text names it too and keeps the passage's two lines
        expected = run_tool(load_for_sampling(classifier.path, device="cpu"), "classify",
                            {"passage": passage}, cache_dir=tmp_path).probabilities
        assert set(expected) == {lines.class_names[0], lines.class_names[3]}
        meters = bars.locator("meter")
        playwright.expect(meters).to_have_count(2)
        shown = {meters.nth(i).get_attribute("aria-label"):
                 float(meters.nth(i).get_attribute("value")) for i in range(2)}
        assert shown.keys() == expected.keys()
        assert all(abs(shown[name] - expected[name]) < 1e-4 for name in expected), shown
        likeliest = max(expected, key=expected.get)
        playwright.expect(bars.get_by_test_id("label-output-value")).to_have_text(likeliest)
        text = page.locator("#reader-tool-text")
        playwright.expect(text).to_contain_text(f"predicted: {likeliest}")
        shown_lines = [line.strip() for line in text.inner_text().splitlines()]
        assert [line for line in shown_lines if line in passage.splitlines()] == [
            "Speak, speak.", "What news from Rome?"], shown_lines
        page.locator("#reader-tools").screenshot(path=str(shots / "reader-classify-panel.png"))
        page.screenshot(path=str(shots / "reader-classify.png"), full_page=True)
        # the per-class report's columns stay aligned: a fixed-width block, bars hidden
        page.locator("#reader-tool-class-report").click()
        report = page.locator("#reader-tool-text pre")
        playwright.expect(report).to_contain_text("precision", timeout=90_000)
        assert "  " in report.inner_text()                 # the columns' spaces are kept
        playwright.expect(bars).to_be_hidden()

        # The user's own pairs arrive through the Train tab's upload: a .tsv becomes pairs:
        # data, named in the Data box (a .csv becomes csv: data: tests/test_studio_tabs.py).
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-upload input[type=file]").set_input_files(str(pairs))
        playwright.expect(page.locator("#train-message")).to_contain_text("saved as pairs:",
                                                                          timeout=30_000)
        playwright.expect(page.locator("#train-data input")).to_have_value(
            re.compile(r"^pairs:.*dates\.tsv$"))
        page.screenshot(path=str(shots / "train-upload-tsv.png"), full_page=True)
