"""The Text tab's Chat: a multi-turn session with a text model in its corpus's own format (for
the plays: you speak as one character, the model answers as another; pipelines/text/chat.py
writes the prompt and cuts the reply at the end of the speech). Every session is kept in the
History, rewritten after each turn; restoring one from there continues it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import gradio as gr

from pipelines.core import generations
from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

from ..common import Studio, describe, shows_errors, whole_number
from ..forms import changed_values, field_input
from .images import parse_step, run_pipeline

CHAT_DEFAULTS = {"max_new_tokens": 300}     # a speech, not a page: the reply stops earlier
NEW_SESSION: dict[str, Any] = {"folder": None, "turns": []}


def as_messages(turns: list[dict[str, str]], you: str) -> list[dict[str, str]]:
    """The turns as the Chatbot shows them: yours on the right, the model's on the left."""
    return [{"role": "user" if t["speaker"] == you else "assistant",
             "content": f"**{t['speaker']}.** {t['text']}"} for t in turns]


def chat_turn(studio: Studio, run_id: str, step: Any, seed: Any, you: str, them: str,
              style: str, message: str, session: dict[str, Any],
              controls: dict[str, Any]) -> Iterator[tuple[list, dict[str, Any]]]:
    """One turn (the Send button): your line, then the model's reply as it writes it; the
    session, kept in the history, after the reply. Reply k of a session uses seed + k."""
    if not (message or "").strip():
        raise StudioError("write what your character says first")
    seed = whole_number(seed, "seed", 0)
    run_id = RunFolder.by_id(studio.runs_dir, run_id).id
    turns = [*session.get("turns", []), {"speaker": you, "text": message.strip()}]
    replies = sum(t["speaker"] == them for t in turns)
    reply = ""
    for reply in studio.worker.stream("stream_chat", run=run_id, turns=turns, you=you,
                                      them=them, style=style, seed=seed + replies,
                                      step=parse_step(step), controls=controls):
        yield as_messages([*turns, {"speaker": them, "text": reply}], you), session
    turns.append({"speaker": them, "text": reply})
    text = studio.worker.call("chat_transcript", turns=turns, style=style)  # corpus format
    settings = {"seed": seed, "checkpoint": parse_step(step), "you": you, "them": them,
                "style": style, "controls": controls, "turns": turns}
    folder = generations.record_text(studio.runs_dir, run_id, "chat",
                                     text, settings,
                                     folder=session.get("folder"))
    yield as_messages(turns, you), {"folder": str(folder), "turns": turns}


def build(studio: Studio, run, step, seed) -> SimpleNamespace:
    with gr.Accordion("Chat", open=False, elem_id="chat-open") as section:
        gr.Markdown("Speak as one character; the model answers as another, in the way its "
                    "corpus writes a conversation (the plays: the name in capitals, then the "
                    "speech). Its reply ends where its speech ends. Each session is kept in the "
                    "History below.")
        with gr.Row():
            you = gr.Dropdown([], label="You speak as", allow_custom_value=True,
                              interactive=True, elem_id="chat-you")
            them = gr.Dropdown([], label="The model answers as", allow_custom_value=True,
                               interactive=True, elem_id="chat-them")
        style = gr.State("NAME.")
        session = gr.State(dict(NEW_SESSION))
        restored = gr.State({})      # {"run", "controls"} of a session restored from History
        log = gr.Chatbot(label="Chat", height=360, elem_id="chat-log")
        message = gr.Textbox(label="Your line", lines=2, elem_id="chat-message",
                             placeholder="What your character says")

        @gr.render(inputs=[run, restored])
        def chat_form(run_id, restored_values):
            described = run_pipeline(studio, run_id) if run_id else None
            if described is None:
                return
            specs = [s for s in describe(described[0])["controls"] if s["name"] != "prompt"]
            values = {**CHAT_DEFAULTS, **((restored_values or {}).get("controls", {})
                                         if (restored_values or {}).get("run") == run_id
                                         else {})}
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="chat-send")
                new = gr.Button("New chat", elem_id="chat-new")
            with gr.Accordion("Chat sampling settings", open=False):
                inputs = [field_input(spec, values.get(spec["name"])) for spec in specs]

            @shows_errors(3)
            def turn(run_id, step, seed, you, them, style, message, session, *values):
                controls = changed_values(specs, list(values))
                cleared = ""
                for shown, kept in chat_turn(studio, run_id, step, seed, you, them, style,
                                             message, session, controls):
                    # the line box is emptied once, as the turn starts: a next line typed
                    # while the reply is being written is kept
                    yield shown, kept, cleared
                    cleared = gr.skip()

            # Send is off while the reply is written (a click then would be dropped: Gradio
            # runs one click of a button at a time) and back on after, error or not.
            send.click(lambda: gr.Button(interactive=False), None, send, queue=False).then(
                turn, [run, step, seed, you, them, style, message, session, *inputs],
                [log, session, message], concurrency_limit=4).then(
                lambda: gr.Button(interactive=True), None, send, queue=False)
            new.click(lambda: ([], dict(NEW_SESSION)), None, [log, session])

        @shows_errors(4)
        def setup(run_id, step, you_now, them_now):
            """The corpus's speakers (from the worker: it reads the corpus) and style."""
            if not run_id:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            found = studio.worker.call("chat_setup", run=run_id, step=parse_step(step))
            names = found["speakers"]
            first = you_now if you_now else names[0]
            second = them_now if them_now else names[1 if len(names) > 1 else 0]
            return (gr.Dropdown(choices=names, value=first),
                    gr.Dropdown(choices=names, value=second), found["style"],
                    dict(NEW_SESSION))

    section.expand(setup, [run, step, you, them], [you, them, style, session])
    return SimpleNamespace(section=section, you=you, them=them, style=style, session=session,
                           log=log, restored=restored, setup=setup)


def restored_chat(record: dict[str, Any], folder: Path) -> tuple:
    """What restoring a kept chat sets: names, style, the conversation and its session (so
    the next turn continues it, in the same history entry), and the chat's settings."""
    s = record.get("settings") or {}
    turns = s.get("turns")
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise StudioError("that chat's record has no turns to restore")
    you, them = s.get("you", ""), s.get("them", "")
    names = list(dict.fromkeys([you, them]))
    return (gr.Dropdown(choices=names, value=you), gr.Dropdown(choices=names, value=them),
            s.get("style", "NAME."),
            {"folder": str(folder), "turns": turns}, as_messages(turns, you),
            {"run": record.get("run"), "controls": s.get("controls") or {}})
