"""The Text tab in a real browser, as a user works it: write with a text run and get the same
text from the same seed, find the writing in the History and restore its settings, then chat
(pick the characters, send two lines, see the model answer in character), find the chat in
the History and compare it with a writing. Screenshots: tests/browser_kit.py."""

import re
from pathlib import Path

import pytest

from browser_kit import CHROMIUM, browser_page, pick, served_studio, set_number, shots_folder
from helpers import TEXT_TRAINER, plays_file
from pipelines.core import generations
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def test_write_restore_and_chat_in_the_text_tab(tmp_path):
    shots = shots_folder(tmp_path)
    runs_dir = tmp_path / "runs"
    run = start_run("transformer", f"text:{plays_file(tmp_path)}",
                    config_overrides={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
                    trainer_overrides={**TEXT_TRAINER, "steps": 4}, runs_dir=runs_dir)
    assert train_run(run) == "done"
    with served_studio(runs_dir) as url, browser_page(playwright.sync_playwright, url) as page:
        page.get_by_role("tab", name="Text").click()
        pick(page, "text-run", run.id)
        page.locator("#text-write").wait_for()
        set_number(page, "Seed", 3)
        output = page.locator("#text-output textarea")
        texts = []
        for i in range(2):
            page.locator("#text-write").click()
            # the finished text is kept in the History, and the page shows that same text
            for _ in range(300):
                if len(generations.text_entries(runs_dir)) > i:
                    break
                page.wait_for_timeout(200)
            kept = generations.read_text(runs_dir, generations.text_entries(runs_dir)[0]
                                         ["folder"])["text"]
            playwright.expect(output).to_have_value(kept, timeout=30_000)
            texts.append(kept)
        assert texts[0] == texts[1]                         # same seed, same text

        # History: both writings listed; picking one shows it, restoring sets its seed back.
        set_number(page, "Seed", 11)
        page.locator("#text-history-open").get_by_text("History").first.click()
        history = page.locator("#text-history")
        playwright.expect(history.locator('[role="row"]')).to_have_count(3, timeout=30_000)
        history.get_by_test_id("cell-1-0").click()
        playwright.expect(page.locator("#text-history-shown textarea")).to_have_value(texts[0])
        page.locator("#text-history-restore").click()
        playwright.expect(page.get_by_label("Seed", exact=True)).to_have_value("3")
        page.locator("#text-restore-note").get_by_text("Restored run").wait_for()

        # Chat: the corpus's speakers are offered; two lines, two replies, one History entry.
        page.locator("#chat-open").get_by_text("Chat").first.click()
        playwright.expect(page.locator("#chat-you input")).not_to_have_value("")
        for line in ("Good morrow, cousin.", "What news abroad?"):
            page.locator("#chat-message textarea").fill(line)
            page.locator("#chat-send").click()
            playwright.expect(page.locator("#chat-log")).to_contain_text(line, timeout=60_000)
            playwright.expect(page.locator("#chat-message textarea")).to_have_value(
                "", timeout=60_000)
            # Send comes back on when the reply is written (a click before would be dropped)
            playwright.expect(page.locator("#chat-send")).to_be_enabled(timeout=60_000)
        playwright.expect(page.locator("#chat-log [data-testid='bot']")).to_have_count(
            2, timeout=60_000)
        page.locator("#text-history-open").scroll_into_view_if_needed()
        playwright.expect(history).to_contain_text("chat", timeout=30_000)
        # Compare: the chat picked, then a writing; the chat stays beside it.
        history.get_by_test_id("cell-0-2").click()            # the newest row: the chat
        playwright.expect(page.locator("#text-history-shown textarea")).to_have_value(
            re.compile("Good morrow, cousin."))
        history.get_by_test_id("cell-1-2").click()
        playwright.expect(page.locator("#text-history-shown textarea")).to_have_value(texts[0])
        playwright.expect(page.locator("#text-history-before textarea")).to_have_value(
            re.compile("What news abroad?"))
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "text-chat.png"), full_page=True)
    [chat] = [e for e in generations.text_entries(runs_dir) if e["kind"] == "chat"]
    turns = generations.read_text(runs_dir, chat["folder"])["settings"]["turns"]
    assert [t["text"] for t in turns[::2]] == ["Good morrow, cousin.", "What news abroad?"]
