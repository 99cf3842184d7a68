"""The Images tab's History: every batch drawn on the page, newest first (studio/history.py
keeps them in the runs folder's outputs/); pick one to see it, restore its settings into the
form (Generate then draws it again), or delete it."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from pipelines.core.errors import StudioError

from .. import history
from ..common import Studio, shows_errors

COLUMNS = ["when", "run", "seed", "count", "class", "controls"]


def listing(studio: Studio) -> tuple[list[list], list[str]]:
    """The table's rows and, in the same order, the batches' folders."""
    found = history.entries(studio.runs_dir)
    return [[entry[c] for c in COLUMNS] for entry in found], [e["folder"] for e in found]


def build(studio: Studio, restore_updates, restore_outputs: list) -> SimpleNamespace:
    """`restore_updates(studio, grid_png)` -> the values of `restore_outputs` (the tab's run,
    step, seed, batch, class, restored controls and note), as a dropped PNG sets them."""
    with gr.Accordion("History", open=False, elem_id="images-history-open") as section:
        gr.Markdown("Every batch drawn here, newest first, kept with its settings in the runs "
                    "folder's `outputs/` (date / run / time-seed). Pick a row to see it.")
        table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True,
                             elem_id="images-history")
        folders = gr.State([])
        picked = gr.State(None)
        shown = gr.Gallery(label="The picked generation", columns=8, height=240, preview=False,
                           elem_id="images-history-gallery")
        with gr.Row():
            restore = gr.Button("Restore its settings", size="sm",
                                elem_id="images-history-restore")
            delete = gr.Button("Delete it", size="sm", variant="stop",
                               elem_id="images-history-delete", visible=not studio.viewer)
            refresh = gr.Button("↻ history", size="sm")

    @shows_errors(2)
    def pick(found, evt: gr.SelectData):
        folder = found[evt.index[0]]
        return folder, history.pictures(studio.runs_dir, folder)

    @shows_errors(len(restore_outputs))
    def restore_picked(folder):
        if not folder:
            raise StudioError("pick a generation in the table first")
        return restore_updates(studio, str(history.batch_folder(studio.runs_dir, folder)
                                           / "grid.png"))

    @shows_errors(4)
    def delete_picked(folder):
        studio.require_editor("deleting generations")
        if not folder:
            raise StudioError("pick a generation in the table first")
        history.delete(studio.runs_dir, folder)
        return (*listing(studio), None, [])

    table.select(pick, folders, [picked, shown])
    restore.click(restore_picked, picked, restore_outputs)
    delete.click(delete_picked, picked, [table, folders, picked, shown])
    refresh.click(lambda: listing(studio), None, [table, folders])
    section.expand(lambda: listing(studio), None, [table, folders])   # as it is now
    return SimpleNamespace(table=table, folders=folders)
