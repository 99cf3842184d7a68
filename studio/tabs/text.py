"""Text tab: write with a trained text model — prompt, seed, number of samples and every
sampling control the family offers (temperature, top-k, top-p, ...: read from the family);
the text streams in as the model writes it (from the sampling worker)."""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from pipelines.core.runs import RunFolder

from ..common import Studio, describe, run_choices, shows_errors, whole_number
from ..forms import changed_values, field_input
from .images import LATEST, parse_step, run_picker, run_pipeline, step_choices


def write_texts(studio: Studio, run_id: str, step, seed, count,
                controls: dict[str, Any]) -> Iterator[str]:
    """The Write button (and the API's /write): the samples so far, as the model writes them;
    sample i uses seed + i."""
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
    yield "\n\n---\n\n".join(done)


def build(studio: Studio):
    gr.Markdown("Write with a trained text model. The same seed and settings give the same "
                "text; sample *i* of several uses seed + *i*.")
    run, step, refresh = run_picker("text runs with weights, newest first")
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", minimum=0, interactive=True)
        count = gr.Number(1, precision=0, label="Samples", minimum=1, maximum=8,
                          interactive=True)
    output = gr.Textbox(label="Text", lines=16, max_lines=40, elem_id="text-output")

    @gr.render(inputs=[run])
    def text_form(run_id):
        described = run_pipeline(studio, run_id) if run_id else None
        if described is None:
            gr.Markdown("No text run with weights yet: train one in the Train tab.")
            return
        specs = describe(described[0])["controls"]
        with gr.Group():
            inputs = [field_input(spec) for spec in specs]
        write = gr.Button("Write", variant="primary", elem_id="text-write")

        @shows_errors(1)
        def stream(run_id, step, seed, count, *values):
            yield from write_texts(studio, run_id, step, seed, count,
                                   changed_values(specs, list(values)))

        write.click(stream, [run, step, seed, count, *inputs], output, concurrency_limit=4)

    run.change(lambda r: gr.Dropdown(choices=step_choices(studio, r), value=LATEST), run, step,
               show_progress="hidden")
    refresh.click(lambda: run_choices(studio, "text"), None, run)
    return run
