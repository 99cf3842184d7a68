"""The History sections of the Images and Text tabs: every generation, from the page or the
CLI, newest first (pipelines/core/generations.py keeps them in the runs folder's outputs/);
pick one to see it (beside the one picked before it, to compare), restore its settings into
the tab's form (Generate or Write then makes it again), or delete it."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import gradio as gr

from pipelines.core import generations
from pipelines.core.errors import StudioError

from ..common import Studio, shows_errors


@dataclass(frozen=True)
class HistoryView:
    """What differs between the two tabs' History: which generations, their columns, how one
    is shown, and what `restore_updates(studio, folder)` is given to restore it."""
    tab: str                                     # "images" or "text": the elements' ids
    what: str                                    # the intro's words
    columns: tuple[str, ...]
    entries: Callable[[Any], list[dict[str, Any]]]
    show: Callable[[Any, str], Any]              # (runs_dir, folder) -> the shown value
    shown: Callable[[str, str], Any]             # (label, elem_id) -> a component showing one


IMAGES = HistoryView(
    "images", "Every batch drawn here or with `studio sample`",
    ("when", "run", "seed", "count", "class", "controls"), generations.image_entries,
    generations.pictures,
    # history-gallery (studio/app.py's CSS): cells of at most 128 px, or Gradio stretches one
    # small picture to the gallery's width; pixelated: an 8 px digit drawn larger stays sharp
    lambda label, elem_id: gr.Gallery(label=label, columns=8, height="auto",
                                      object_fit="contain", preview=False, elem_id=elem_id,
                                      elem_classes=["pixelated", "history-gallery"]))
TEXT = HistoryView(
    "text", "Every text written here, every chat and every `studio sample` of a text run",
    ("when", "run", "kind", "seed", "start"), generations.text_entries,
    lambda runs_dir, folder: generations.read_text(runs_dir, folder)["text"],
    lambda label, elem_id: gr.Textbox(label=label, lines=8, max_lines=30, interactive=False,
                                      elem_id=elem_id))


def listing(studio: Studio, view: HistoryView) -> tuple[list[list], list[str]]:
    """The table's rows and, in the same order, the generations' folders."""
    found = view.entries(studio.runs_dir)
    return [[entry[c] for c in view.columns] for entry in found], [e["folder"] for e in found]


def build(studio: Studio, view: HistoryView, restore_updates,
          restore_outputs: list) -> SimpleNamespace:
    """`restore_updates(studio, folder)` -> the values of `restore_outputs` (the tab's run,
    step, seed, controls, ...), as restoring the picked generation sets them."""
    tab = view.tab
    with gr.Accordion("History", open=False, elem_id=f"{tab}-history-open") as section:
        gr.Markdown(f"{view.what}, newest first, kept with its settings in the runs folder's "
                    "`outputs/` (date / run / time). Pick a row to see it; the one picked "
                    "before stays beside it, to compare.")
        table = gr.Dataframe(headers=list(view.columns), interactive=False, wrap=True,
                             elem_id=f"{tab}-history")
        folders = gr.State([])
        picked = gr.State(None)
        with gr.Row():
            shown = view.shown("The picked generation", f"{tab}-history-shown")
            before = view.shown("The one picked before", f"{tab}-history-before")
        with gr.Row():
            restore = gr.Button("Restore its settings", size="sm",
                                elem_id=f"{tab}-history-restore")
            delete = gr.Button("Delete it", size="sm", variant="stop",
                               elem_id=f"{tab}-history-delete", visible=not studio.viewer)
            refresh = gr.Button("↻ history", size="sm")

    @shows_errors(3)
    def pick(found, previous, evt: gr.SelectData):
        folder = found[evt.index[0]]
        earlier = None
        if previous and previous != folder:
            try:
                earlier = view.show(studio.runs_dir, previous)
            except StudioError:         # deleted since: nothing to compare with
                pass
        return folder, view.show(studio.runs_dir, folder), earlier

    @shows_errors(len(restore_outputs))
    def restore_picked(folder):
        if not folder:
            raise StudioError("pick a generation in the table first")
        return restore_updates(studio, generations.generation_folder(studio.runs_dir, folder))

    @shows_errors(5)
    def delete_picked(folder):
        studio.require_editor("deleting generations")
        if not folder:
            raise StudioError("pick a generation in the table first")
        generations.delete(studio.runs_dir, folder)
        return (*listing(studio, view), None, None, None)

    table.select(pick, [folders, picked], [picked, shown, before])
    restore.click(restore_picked, picked, restore_outputs)
    delete.click(delete_picked, picked, [table, folders, picked, shown, before])
    refresh.click(lambda: listing(studio, view), None, [table, folders])
    section.expand(lambda: listing(studio, view), None, [table, folders])   # as it is now
    return SimpleNamespace(table=table, folders=folders,
                           relist=lambda: listing(studio, view))
