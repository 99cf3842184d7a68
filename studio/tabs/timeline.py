"""Timeline tab: one run's losses, validation numbers and fixed-seed sample grids on one step
axis. Click a grid to pick its step; open that checkpoint in the Images tab with the grid's own
seed (so the same images come back, now with every sampling control), or keep it (checkpoints
are otherwise pruned to the newest few).
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pandas as pd

from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

from .. import live
from ..common import Studio, shows_errors, whole_number


def timeline_frame(run: RunFolder) -> pd.DataFrame:
    """Training and validation curves in one long table (step, value, series)."""
    train, checks = live.curve_frames(run, smoothing=0.0)
    return live.curve_table([*train.itertuples(index=False, name=None),
                             *checks.itertuples(index=False, name=None)], "series")


def grid_strip(run: RunFolder) -> list[tuple[str, str]]:
    """(PNG, caption) of every periodic grid, oldest first; the caption says whether that
    step still has a checkpoint to sample from."""
    steps = set(run.checkpoint_steps())
    kept = set(run.kept_steps())
    return [(str(path), f"step {step}" + (" · kept" if step in kept else
                                          " · checkpoint" if step in steps else ""))
            for step, path in live.sample_grids(run)]


def build(studio: Studio, images: SimpleNamespace, tabs: gr.Tabs) -> gr.Dropdown:
    with gr.Row():
        run = gr.Dropdown([], label="Run", scale=3, elem_id="timeline-run")
        refresh = gr.Button("↻ runs", size="sm", scale=0)
    curves = gr.LinePlot(x="step", y="value", color="series", label="Losses and validation",
                         elem_id="timeline-curves")   # no height=: it would cut the legend off
    strip = gr.Gallery(label="Fixed-seed samples over training (click one)", columns=6,
                       height=260, allow_preview=False, elem_classes="pixelated",
                       elem_id="timeline-strip")
    picked = gr.State(None)   # per session: the step of the clicked grid
    with gr.Row():
        status = gr.Markdown("Click a grid to pick its step.")
        open_in_images = gr.Button("Open this checkpoint in Images", size="sm",
                                   elem_id="timeline-open")
        keep = None if studio.viewer else gr.Button("Keep this checkpoint", size="sm")

    @shows_errors(2)
    def show(run_id):
        yield None, gr.skip()   # an empty plot first, so that it draws a new chart for these lines
        if not run_id:          # (live.needs_redraw says why)
            yield None, []
            return
        folder = RunFolder.by_id(studio.runs_dir, run_id)
        yield live.plot_value(timeline_frame(folder)), grid_strip(folder)

    def pick(evt: gr.SelectData, run_id):
        caption = (evt.value or {}).get("caption") or ""
        step = int(caption.split()[1]) if caption.startswith("step ") else None
        if step is None:
            return None, "Click a grid to pick its step."
        steps = RunFolder(studio.runs_dir / run_id).checkpoint_steps()
        note = ("its checkpoint can be opened or kept" if step in steps else
                f"its checkpoint was pruned (kept: {steps or 'none'}); the samples remain")
        return step, f"Step **{step}**: {note}."

    @shows_errors(6)
    def open_step(run_id, step):
        if step is None:
            raise StudioError("click a grid first")
        folder = RunFolder.by_id(studio.runs_dir, run_id)
        if step not in folder.checkpoint_steps():
            raise StudioError(f"step {step} has no checkpoint any more; pick a step marked "
                              f"'checkpoint' or 'kept'")
        trainer = folder.info().get("trainer", {})
        seed = whole_number(trainer.get("sample_seed", 0), "seed")
        batch = min(256, whole_number(trainer.get("sample_count", 16), "batch"))
        return (gr.Tabs(selected="images"), gr.Dropdown(value=run_id),
                gr.Dropdown(choices=["latest", *map(str, reversed(folder.checkpoint_steps()))],
                            value=str(step)), seed, batch, step)

    @shows_errors(2)
    def keep_step(run_id, step):
        studio.require_editor("keeping checkpoints")
        if step is None:
            raise StudioError("click a grid first")
        folder = RunFolder.by_id(studio.runs_dir, run_id)
        folder.keep_checkpoint(step)
        return f"Step **{step}** is kept: newer checkpoints will not replace it.", \
            grid_strip(folder)

    run.change(show, run, [curves, strip], show_progress="hidden")
    refresh.click(lambda: gr.Dropdown(choices=studio.run_ids()), None, run)
    strip.select(pick, run, [picked, status])
    open_in_images.click(open_step, [run, picked],
                         [tabs, images.run, images.step, images.seed, images.batch, picked])
    if keep is not None:
        keep.click(keep_step, [run, picked], [status, strip])
    return run
