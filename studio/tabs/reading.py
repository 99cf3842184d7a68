"""The Text tab's models that read text instead of writing it: text classifiers (classify a
passage, with a probability per class; fill a [MASK]; attention maps; a per-class report) and
translators (translate, with the alignment map). What each can do is its family's tools, so
the panel is the shared tools panel (studio/tabs/tools.py) built from the picked run's spec:
a new kind of reader needs no code here, only its kind in READERS."""

from __future__ import annotations

import gradio as gr

from ..common import Studio, run_choices
from . import tools as tools_view
from .picker import LATEST, run_picker, step_choices

# The registry kinds of models that take text in and give an answer, not a continuation.
READERS = ("text-classifier", "translator")


def build(studio: Studio) -> gr.Dropdown:
    with gr.Accordion("Classify, fill a mask, translate: models that read text", open=False,
                      elem_id="reader"):
        gr.Markdown("A text classifier or a translator trained in the Train tab: type the "
                    "passage, the text with [MASK] or the source into the tool's box, then run "
                    "it. Empty boxes take the first validation example.")
        run, step, refresh = run_picker("text classifiers and translators with weights, "
                                        "newest first", elem_id="reader-run")
        tools_view.build(studio, run, step, "reader", title="What it can do", open=True)
    run.change(lambda r: gr.Dropdown(choices=step_choices(studio, r), value=LATEST), run, step,
               show_progress="hidden")
    refresh.click(lambda: run_choices(studio, READERS), None, run)
    return run
