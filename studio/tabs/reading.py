"""The Text tab's models that read text instead of writing it: text classifiers (classify a
passage, with a probability per class; fill a [MASK]; attention maps; a per-class report),
translators (translate, with the alignment map) and word embeddings (neighbours of a word,
analogies, a 2-D map). What each can do is its family's tools, so
the panel is the shared tools panel (studio/tabs/tools.py) built from the picked run's spec:
a new kind of reader needs no code here, only its kind in READERS."""

from __future__ import annotations

import gradio as gr

from ..common import Studio, run_choices
from . import tools as tools_view
from .picker import LATEST, run_picker, step_choices

# The registry kinds of models that take text in and give an answer, not a continuation.
READERS = ("text-classifier", "translator", "embeddings")


def build(studio: Studio) -> gr.Dropdown:
    with gr.Accordion("Classify, fill a mask, translate, explore embeddings: models that read "
                      "text", open=False, elem_id="reader"):
        gr.Markdown("A text classifier, a translator or word embeddings trained in the Train "
                    "tab: type the passage, the text with [MASK], the source or the words into "
                    "the tool's box, then run it. An empty passage or source takes the first "
                    "validation example. (A text model's own embeddings: the Tools above.)")
        run, step, refresh = run_picker("text classifiers, translators and word embeddings "
                                        "with weights, newest first", elem_id="reader-run")
        tools_view.build(studio, run, step, "reader", title="What it can do", open=True)
    run.change(lambda r: gr.Dropdown(choices=step_choices(studio, r), value=LATEST), run, step,
               show_progress="hidden")
    refresh.click(lambda: run_choices(studio, READERS), None, run)
    return run
