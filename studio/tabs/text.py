"""Text tab: write with a trained text model — prompt, seed, number of samples and every
sampling control the family offers (temperature, top-k, top-p, ...: read from the family);
the text streams in as the model writes it (from the sampling worker). Below: a chat in the
corpus's own format (studio/tabs/chat.py), and the History of every text written here, with
the CLI, or in a chat (studio/tabs/history.py), whose settings restore into the form."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from pipelines.core import generations
from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

from ..common import Studio, describe, run_choices, shows_errors, whole_number
from ..forms import changed_values, field_input
from . import chat as chat_view
from . import history as history_view
from . import reading
from . import tools as tools_view
from .images import LATEST, parse_step, run_picker, run_pipeline, step_choices


def write_texts(studio: Studio, run_id: str, step, seed, count,
                controls: dict[str, Any]) -> Iterator[str]:
    """The Write button (and the API's /write): the samples so far, as the model writes them;
    sample i uses seed + i. The finished texts are kept in the History."""
    seed = whole_number(seed, "seed", 0)
    count = whole_number(count, "samples", 1, 8)
    run_id = RunFolder.by_id(studio.runs_dir, run_id).id
    done: list[str] = []
    for i in range(count):
        text = ""
        for text in studio.worker.stream("stream_text", run=run_id, seed=seed + i,
                                         step=parse_step(step), controls=controls):
            yield "\n\n---\n\n".join([*done, text])
        done.append(text)
    joined = "\n\n---\n\n".join(done)
    generations.record_text(studio.runs_dir, run_id, "write", joined,
                            {"seed": seed, "count": count, "checkpoint": parse_step(step),
                             "controls": controls})
    yield joined


def restore_updates(studio: Studio, folder: Path, chat) -> tuple:
    """What restoring a kept text generation sets: run, checkpoint, seed, samples and the
    form's controls for a Write; names, conversation and settings for a chat."""
    record = generations.read_text(studio.runs_dir, folder)
    run_id, s = record.get("run"), record.get("settings") or {}
    if not run_id or not (studio.runs_dir / str(run_id) / "run.json").is_file():
        raise StudioError(f"the run {run_id} that wrote this is no longer in the runs folder")
    step = s.get("checkpoint")
    if step is not None and str(step) not in step_choices(studio, run_id):
        raise StudioError(f"run {run_id} no longer keeps the checkpoint of step {step}")
    picked = (gr.Dropdown(choices=studio.run_ids("text"), value=run_id),
              gr.Dropdown(choices=step_choices(studio, run_id),
                          value=LATEST if step is None else str(step)),
              s.get("seed", 0))
    if record.get("kind") == "chat":
        note = (f"Restored the chat with run {run_id}: Send continues it (kept in the same "
                f"History entry).")
        return (*picked, gr.skip(), gr.skip(), note, gr.Accordion(open=True),
                *chat_view.restored_chat(record, folder))
    note = (f"Restored run {run_id}, checkpoint {step or LATEST}, seed {s.get('seed', 0)}, "
            f"{s.get('count', 1)} samples and the sampling controls: Write writes the same "
            f"text.")
    return (*picked, s.get("count", 1), {"run": run_id, "controls": s.get("controls") or {}},
            note, *(gr.skip() for _ in range(7)))


def build(studio: Studio):
    gr.Markdown("Write with a trained text model. The same seed and settings give the same "
                "text; sample *i* of several uses seed + *i*.")
    run, step, refresh = run_picker("text runs with weights, newest first", elem_id="text-run")
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", minimum=0, interactive=True)
        count = gr.Number(1, precision=0, label="Samples", minimum=1, maximum=8,
                          interactive=True)
    restored = gr.State({})        # {"run", "controls"} restored from the History
    # shown below the prompt and the Write button (the form is built per run, above it)
    output = gr.Textbox(label="Text", lines=16, max_lines=40, elem_id="text-output",
                        render=False)

    @gr.render(inputs=[run, restored])
    def text_form(run_id, restored_values):
        described = run_pipeline(studio, run_id) if run_id else None
        if described is None:
            gr.Markdown("No text run with weights yet: train one in the Train tab.")
            return
        specs = describe(described[0])["controls"]
        values = (restored_values or {}).get("controls", {}) \
            if (restored_values or {}).get("run") == run_id else {}
        # the prompt and Write first; the sampling controls folded beneath them
        first = [s for s in specs if s["name"] == "prompt"]
        rest = [s for s in specs if s["name"] != "prompt"]
        inputs = [field_input(spec, values.get(spec["name"])) for spec in first]
        write = gr.Button("Write", variant="primary", elem_id="text-write")
        with gr.Accordion("Sampling settings", open=bool(values), elem_id="text-settings"):
            inputs += [field_input(spec, values.get(spec["name"])) for spec in rest]

        @shows_errors(1)
        def stream(run_id, step, seed, count, *values):
            yield from write_texts(studio, run_id, step, seed, count,
                                   changed_values(first + rest, list(values)))

        write.click(stream, [run, step, seed, count, *inputs], output,
                    concurrency_limit=4).then(past.relist, None, [past.table, past.folders])

    output.render()
    chat = chat_view.build(studio, run, step, seed)
    note = gr.Markdown(elem_id="text-restore-note")
    restore_outputs = [run, step, seed, count, restored, note, chat.section, chat.you,
                       chat.them, chat.style, chat.session, chat.log, chat.restored]
    past = history_view.build(
        studio, history_view.TEXT,
        lambda studio, folder: restore_updates(studio, folder, chat), restore_outputs)
    # a finished turn changes the session (the stream keeps it until then): list it
    chat.session.change(past.relist, None, [past.table, past.folders], show_progress="hidden")
    tools_view.build(studio, run, step, "text", title="Tools (attention maps, ...)")
    readers = reading.build(studio)

    run.change(lambda r: gr.Dropdown(choices=step_choices(studio, r), value=LATEST), run, step,
               show_progress="hidden")
    refresh.click(lambda: run_choices(studio, "text"), None, run)
    return run, readers
