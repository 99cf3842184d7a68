"""Chat with a text model in its corpus's format (pipelines/text/chat.py, `studio chat`, the
Text tab's Chat), and the generation history of text and of `studio sample`
(pipelines/core/generations.py): what is kept, listed, restored and deleted."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.core import generations
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data.text import read_shakespeare
from pipelines.text.chat import (COLON, PLAYS, chat_prompt, check_turns, reply_end,
                                 speaker_format, transcript)

from helpers import TEXT_TRAINER, TINY, plays_file

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


def studio_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=ENV, timeout=300)


# --- the format --------------------------------------------------------------------------
def test_the_plays_are_read_as_speaker_lines_and_their_speakers_found():
    found = speaker_format(read_shakespeare())
    assert found["style"] == PLAYS
    assert {"MENENIUS", "PETRUCHIO", "PROSPERO"} <= set(found["speakers"])
    transcript_ = "".join(f"{n}: line {i}\n" for i in range(15) for n in ("alice", "Bob"))
    assert speaker_format(transcript_) == {"style": COLON, "speakers": ["alice", "Bob"]}
    # prose with no speakers: the colon style and two generic names
    assert speaker_format("It was a dark night. " * 200)["speakers"] == ["YOU", "MODEL"]


def test_a_chat_prompt_is_the_turns_in_the_corpus_format_then_the_answering_cue():
    turns = [{"speaker": "Romeo", "text": "Good night, good night."}]
    assert chat_prompt(turns, "Juliet", PLAYS) == "ROMEO.\nGood night, good night.\n\nJULIET.\n"
    assert chat_prompt(turns, "Juliet", COLON) == "Romeo: Good night, good night.\nJuliet:"
    assert transcript(turns, PLAYS) == "ROMEO.\nGood night, good night.\n\n"
    # the reply ends where the speech ends
    assert reply_end("Ay me.\nO Romeo.\n\nROMEO.\n", PLAYS) == len("Ay me.\nO Romeo.")
    assert reply_end("Ay me.\nO Romeo", PLAYS) is None
    assert reply_end(" Ay me.\nRomeo: x", COLON) == len(" Ay me.")
    with pytest.raises(StudioError, match="name of 1-40"):
        check_turns(turns, "ROMEO.", "JULIET", PLAYS)
    with pytest.raises(StudioError, match="say something first"):
        check_turns([], "ROMEO", "JULIET", PLAYS)
    with pytest.raises(StudioError, match="empty"):
        check_turns([{"speaker": "ROMEO", "text": "  "}], "ROMEO", "JULIET", PLAYS)


# --- a text run: the CLI and the page ------------------------------------------------------
@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    corpus = plays_file(tmp_path_factory.mktemp("text"))
    run = start_run("transformer", f"text:{corpus}",
                    config_overrides={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
                    trainer_overrides={**TEXT_TRAINER, "steps": 4}, runs_dir=runs_dir)
    assert train_run(run) == "done"
    return runs_dir, run


def test_studio_chat_answers_each_line_in_character_and_keeps_the_session(text_run):
    runs_dir, run = text_run
    out = studio_cli("--runs-dir", runs_dir, "chat", run.id, "--set", "max_new_tokens=40",
                     stdin="Good morrow.\nWhat news?\n")
    assert out.returncode == 0, out.stderr
    assert "you speak as" in out.stdout and "Traceback" not in out.stderr
    [entry] = generations.text_entries(runs_dir)
    assert (entry["kind"], entry["run"]) == ("chat", run.id)
    record = generations.read_text(runs_dir, entry["folder"])
    turns = record["settings"]["turns"]
    you, them = record["settings"]["you"], record["settings"]["them"]
    assert [t["speaker"] for t in turns] == [you, them, you, them]
    assert [turns[0]["text"], turns[2]["text"]] == ["Good morrow.", "What news?"]
    assert all("\n\n" not in t["text"] for t in turns)     # a reply is one speech
    assert record["text"] == transcript(turns, PLAYS)      # kept in the corpus's format
    assert f"{them}. {turns[1]['text']}" in out.stdout.replace("\n", " ") or not turns[1]["text"]
    # the same chat again gives the same replies (reply k uses seed + k)
    again = studio_cli("--runs-dir", runs_dir, "chat", run.id, "--set", "max_new_tokens=40",
                       stdin="Good morrow.\nWhat news?\n")
    newest = generations.read_text(runs_dir, generations.text_entries(runs_dir)[0]["folder"])
    assert newest["settings"]["turns"] == turns and again.returncode == 0
    bad = studio_cli("--runs-dir", runs_dir, "chat", run.id, "--as", "A.B", stdin="hi\n")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "name of 1-40" in bad.stderr


def test_studio_sample_of_a_text_run_is_kept_in_the_history(text_run):
    runs_dir, run = text_run
    out = studio_cli("--runs-dir", runs_dir, "sample", run.id, "--n", "2", "--seed", "5",
                     "--set", "max_new_tokens=20", "--prompt", "ROMEO.")
    assert out.returncode == 0, out.stderr
    entry = next(e for e in generations.text_entries(runs_dir) if e["kind"] == "write")
    record = generations.read_text(runs_dir, entry["folder"])
    assert record["settings"]["seed"] == 5 and record["settings"]["count"] == 2
    assert record["settings"]["controls"]["prompt"] == "ROMEO."
    assert record["text"].strip() == out.stdout.strip()
    assert (Path(entry["folder"]) / "text.txt").read_text() == record["text"]


def test_the_text_tab_writes_chats_keeps_and_restores_them(text_run):
    from studio.tabs.chat import chat_turn
    from studio.tabs.text import restore_updates, write_texts
    from studio.worker import SamplingWorker
    runs_dir, run = text_run
    worker = SamplingWorker(runs_dir, threads=1)
    try:
        studio = SimpleNamespace(runs_dir=runs_dir, worker=worker,
                                 run_ids=lambda kind: [run.id])
        *_, text = write_texts(studio, run.id, "latest", 7, 1, {"max_new_tokens": "15"})
        entry = generations.text_entries(runs_dir)[0]
        assert generations.read_text(runs_dir, entry["folder"])["text"] == text
        chat = SimpleNamespace()
        picked = restore_updates(studio, Path(entry["folder"]), chat)
        assert picked[0].value == run.id and picked[2] == 7 and picked[3] == 1
        assert picked[4] == {"run": run.id, "controls": {"max_new_tokens": "15"}}
        # a chat: two turns, one history entry, rewritten after each turn
        setup = worker.call("chat_setup", run=run.id)
        assert setup["style"] == PLAYS and len(setup["speakers"]) >= 2
        you, them = setup["speakers"][:2]
        session = {"folder": None, "turns": []}
        for line in ("Hail.", "Speak on."):
            *_, (shown, session) = chat_turn(studio, run.id, "latest", 0, you, them, PLAYS,
                                             line, session, {"max_new_tokens": "30"})
        assert len(shown) == 4 and shown[0]["role"] == "user" and shown[1]["role"] == "assistant"
        chats = [e for e in generations.text_entries(runs_dir) if e["kind"] == "chat"]
        assert [e["folder"] for e in chats].count(session["folder"]) == 1
        restored = restore_updates(studio, Path(session["folder"]), chat)
        assert restored[-3] == session and len(restored[-2]) == 4      # session, the log
        with pytest.raises(StudioError, match="write what your character says"):
            next(chat_turn(studio, run.id, "latest", 0, you, them, PLAYS, " ", session, {}))
    finally:
        worker.close()
    generations.delete(runs_dir, session["folder"])
    with pytest.raises(StudioError, match="no longer in the history"):
        generations.read_text(runs_dir, session["folder"])


def test_studio_sample_of_an_image_run_is_kept_with_its_settings(tmp_path):
    run = start_run("dcgan", "digits", config_overrides={"width": 8, "z_dim": 8},
                    trainer_overrides={**TINY, "steps": 2, "sample_every": 0}, runs_dir=tmp_path)
    assert train_run(run) == "done"
    out = studio_cli("--runs-dir", tmp_path, "sample", run.id, "--n", "4", "--seed", "9",
                     "--out", tmp_path / "grid.png")
    assert out.returncode == 0, out.stderr
    [entry] = generations.image_entries(tmp_path)
    assert (entry["run"], entry["seed"], entry["count"]) == (run.id, 9, 4)
    assert generations.pictures(tmp_path, entry["folder"]) == [
        str(Path(entry["folder"]) / "grid.png")]
    assert json.loads(json.dumps(entry))          # plain values the page's table shows
