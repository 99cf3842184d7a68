"""Picking a run and its checkpoint: the row at the top of the Images and Text tabs and of
the Classify tab's tools (the run, its step, a button that lists the runs again)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.core.runs import RunFolder

from ..common import Studio, whole_number

LATEST = "latest"


def run_pipeline(studio: Studio, run_id: str | None) -> tuple[str, dict[str, Any]] | None:
    """(pipeline name, run.json) of a run, or None when no run is chosen."""
    if not run_id:
        return None
    info = RunFolder.by_id(studio.runs_dir, run_id).info()
    return info["pipeline"], info


def step_choices(studio: Studio, run_id: str | None) -> list[str]:
    if not run_id or not (studio.runs_dir / run_id).is_dir():
        return [LATEST]
    return [LATEST] + [str(s) for s in reversed(RunFolder(studio.runs_dir / run_id)
                                                 .checkpoint_steps())]


def run_picker(info: str, elem_id: str | None = None
               ) -> tuple[gr.Dropdown, gr.Dropdown, gr.Button]:
    """A row with the run to sample from, its checkpoint step (latest by default) and a
    button that lists the runs again: the top of the Images and Text tabs."""
    with gr.Row():
        run = gr.Dropdown([], label="Run", info=info, scale=3, elem_id=elem_id)
        step = gr.Dropdown([LATEST], value=LATEST, label="Checkpoint step", scale=1,
                           interactive=True)
        refresh = gr.Button("↻ runs", size="sm", scale=0)
    return run, step, refresh


def parse_step(step: str | None) -> int | None:
    return None if step in (None, "", LATEST) else whole_number(step, "checkpoint step", 0)
