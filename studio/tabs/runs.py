"""Runs tab: every run in a sortable table; pick several to overlay a curve and compare their
configs side by side (what differs in bold); read a run's model card, export it, or delete it
(after a confirmation; never a run that is training)."""

from __future__ import annotations

import os
from typing import Any

import gradio as gr
import pandas as pd

from pipelines.core.errors import StudioError
from pipelines.services.model_card import model_card_text
from pipelines.core.runs import RunFolder, delete_run, list_runs

from ..common import (Studio, as_markdown_text, changed_lists, format_created, format_losses,
                      format_step, markdown_table, shows_errors)
from ..live import curve_point, curve_table, format_megabytes, plot_value

RUN_COLUMNS = ["id", "pipeline", "data", "status", "step", "last losses", "evaluation",
               "device", "processes", "peak memory", "created"]
COLUMN_WIDTHS = ["16%", "8%", "7%", "7%", "6%", "14%", "10%", "8%", "7%", "7%", "10%"]


def status_text(summary: dict[str, Any], exit_code: int | None) -> str:
    status = summary["status"]
    if exit_code is not None and status in ("queued", "running"):
        return f"{status}? (process exited with code {exit_code})"
    if status == "interrupted":   # its process is gone; Resume continues from here
        return f"interrupted (Resume: from step {summary.get('checkpoint_step') or 0})"
    return status


def device_text(device: Any, precision: Any) -> str:
    """'cuda:0 · bf16', 'cpu · fp32' (precision "no" means full fp32); '' before training."""
    if not device:
        return ""
    return f"{device} · {'fp32' if precision in (None, '', 'no') else precision}"


def format_eval(values: dict[str, Any]) -> str:
    """`key=value` for each number; a Fréchet distance with its floor also as a multiple of
    it (1.0x is as close as two halves of the real data are)."""
    def one(key: str, value: Any) -> str:
        if not isinstance(value, float):
            return f"{key}={value}"
        floor = values.get(f"{key}_floor")
        if key.startswith("fd") and isinstance(floor, float) and floor > 0:
            return f"{key}={value:.3g} ({value / floor:.1f}x floor)"
        return f"{key}={value:.3g}"
    return " ".join(one(k, v) for k, v in values.items() if not k.endswith("_floor"))


def run_rows(runs_dir: str | os.PathLike, exit_codes: dict[str, int] | None = None
             ) -> list[list[str]]:
    """One row per run folder, newest first: RUN_COLUMNS. A run whose process (started by
    this UI) has exited while its run.json still says running shows the exit code. Where it
    trained (device and precision, processes, peak memory) is blank for runs that never
    started (queued) and for runs older than those fields."""
    return [[s["id"], s["pipeline"], s["data"],
             status_text(s, (exit_codes or {}).get(s["id"])),
             format_step(s["step"], s.get("total_steps")), format_losses(s["last_loss"]),
             format_eval(s.get("eval") or {}),
             device_text(s.get("device"), s.get("precision")),
             str(s["processes"]) if s.get("processes") else "",
             format_megabytes(s.get("peak_memory_mb")), format_created(s["created"])]
            for s in list_runs(runs_dir)]


def overlay_frame(studio: Studio, run_ids: list[str], metric: str) -> pd.DataFrame:
    """(step, value, run) of one metric for several runs, for one plot."""
    rows = []
    for run_id in run_ids:
        for record in RunFolder(studio.runs_dir / run_id).metrics():
            point = curve_point(record, metric)
            if point is not None:
                rows.append((*point, run_id))
    return curve_table(rows, "run")


def metric_names(studio: Studio, run_ids: list[str]) -> list[str]:
    names: set[str] = set()
    for run_id in run_ids:
        for record in RunFolder(studio.runs_dir / run_id).metrics():
            names.update(k for k, v in record.items() if k not in ("step", "time")
                         and isinstance(v, (int, float)) and not isinstance(v, bool))
    return sorted(names, key=lambda n: (not n.startswith("loss"), n))


def config_comparison(studio: Studio, run_ids: list[str]) -> str:
    """A markdown table: one row per option, one column per run; rows that differ in bold."""
    infos = [RunFolder(studio.runs_dir / r).info() for r in run_ids]
    flat = [{"pipeline": i.get("pipeline"), "data": i.get("data"),
             **{k: v for k, v in (i.get("config") or {}).items()},
             **{f"trainer.{k}": v for k, v in (i.get("trainer") or {}).items()}}
            for i in infos]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for key in keys:
        values = [f.get(key, "—") for f in flat]
        differs = len({repr(v) for v in values}) > 1
        cells = [f"**{v}**" if differs else str(v) for v in values]
        rows.append([f"**{key}**" if differs else key, *cells])
    return markdown_table(["option", *run_ids], rows)


def build(studio: Studio, app: gr.Blocks, tab: gr.Tab) -> None:
    table = gr.Dataframe(headers=RUN_COLUMNS, label="Runs (click a row to select it; click a "
                         "column header to sort)", interactive=False, wrap=True,
                         elem_id="runs-table", column_widths=COLUMN_WIDTHS)
    refresh = gr.Button("Refresh", size="sm")
    chosen = gr.Dropdown([], multiselect=True, label="Compare runs",
                         info="pick one or more", elem_id="runs-chosen")
    with gr.Row():
        metric = gr.Dropdown([], label="Curve to overlay", scale=1)
    overlay = gr.LinePlot(x="step", y="value", color="run", label="Curves",
                          elem_id="runs-overlay")   # no height=: it would cut the legend off
    comparison = gr.Markdown(elem_id="runs-comparison")
    with gr.Accordion("Model card, export, delete (the first chosen run)", open=False):
        card = gr.Markdown()
        if not studio.viewer:   # read-only: not there at all
            with gr.Row():
                export = gr.Button("Export", size="sm")
                sure = gr.Checkbox(False, label="Yes, delete this run's folder and all it holds")
                delete = gr.Button("Delete", variant="stop", size="sm")
        result = gr.Markdown()

    shown = gr.State({})     # the runs `chosen` lists: sent again only when they change

    def load_rows(already: dict):
        rows = run_rows(studio.runs_dir, studio.jobs.exit_codes())
        (update,), already = changed_lists([chosen], [[r[0] for r in rows]], already)
        return rows, update, already

    def curves(run_ids, name):
        return plot_value(overlay_frame(studio, run_ids, name)) if name and run_ids else None

    @shows_errors(5)
    def compare(run_ids, current_metric):
        # An empty plot first, so that it draws a new chart for these runs' lines (a LinePlot
        # only draws the lines of the first table it shows: live.needs_redraw says why).
        yield (gr.skip(), None) + (gr.skip(),) * 3
        run_ids = [r for r in run_ids or [] if (studio.runs_dir / r / "run.json").is_file()]
        if not run_ids:
            yield gr.Dropdown(choices=[], value=None), None, "", "", gr.skip()
            return
        names = metric_names(studio, run_ids)
        pick = current_metric if current_metric in names else (names[0] if names else None)
        card_text = model_card_text(RunFolder(studio.runs_dir / run_ids[0]))
        yield (gr.Dropdown(choices=names, value=pick), curves(run_ids, pick),
               config_comparison(studio, run_ids), card_text, "")

    def plot(run_ids, name):
        yield None   # as in compare
        yield curves(run_ids, name)

    def add_clicked(evt: gr.SelectData, current):
        row = evt.row_value or []
        if not row:
            return gr.skip()
        return list(dict.fromkeys([*(current or []), row[0]]))

    @shows_errors(2)
    def export_run(run_ids):
        studio.require_editor("exporting")
        if not run_ids:
            raise StudioError("choose a run first")
        done = studio.worker.call("export", run=run_ids[0])
        return (f"Exported to `{done['folder']}`: {', '.join(done['files'])}",
                model_card_text(RunFolder(studio.runs_dir / run_ids[0])))

    @shows_errors(4)
    def delete_chosen(run_ids, confirmed):
        studio.require_editor("deleting runs")
        if not run_ids:
            raise StudioError("choose a run first")
        if not confirmed:
            raise StudioError("tick the box to confirm the delete first")
        message = delete_run(studio.runs_dir, run_ids[0])
        gr.Info(message)
        rows = run_rows(studio.runs_dir, studio.jobs.exit_codes())
        ids = [row[0] for row in rows]
        return (as_markdown_text(message), rows,
                gr.Dropdown(choices=ids, value=[r for r in run_ids[1:] if r in ids]), False)

    # The table is new each time (statuses, steps); the choices only when the runs changed:
    # new choices fire `chosen`'s change, which empties the comparison and draws it again.
    app.load(load_rows, shown, [table, chosen, shown])
    tab.select(load_rows, shown, [table, chosen, shown])  # runs started since the page loaded
    refresh.click(load_rows, shown, [table, chosen, shown])
    table.select(add_clicked, chosen, chosen)
    # One at a time: both empty the plot, then fill it.
    chosen.change(compare, [chosen, metric], [metric, overlay, comparison, card, result],
                  concurrency_id="runs-overlay")
    metric.change(plot, [chosen, metric], overlay, concurrency_id="runs-overlay")
    if not studio.viewer:
        export.click(export_run, chosen, [result, card])
        delete.click(delete_chosen, [chosen, sure], [result, table, chosen, sure])
