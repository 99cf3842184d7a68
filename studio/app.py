"""The studio's first page: what can be trained, a Train box, the runs, and a run's samples.

`build_app(runs_dir)` returns the `gr.Blocks`; `launch_studio(...)` builds and serves it (what
`python launch.py` calls). The page reads everything from run folders, so it can be closed,
reloaded or opened twice and still shows every run, including runs started from a terminal.

Only torch-free parts of `pipelines` are imported here; training runs in a subprocess of the
CLI (`studio.jobs`). Errors reach the user as a warning that names the problem, never as a
traceback.
"""

from __future__ import annotations

import datetime as _dt
import functools
import html
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from pipelines.data import BUNDLED_DATASETS
from pipelines.config import parse_set_args
from pipelines.errors import StudioError
from pipelines.registry import list_pipelines
from pipelines.runs import RunFolder, list_runs, runs_dir_from_env

from .common import (Studio, run_choices, as_markdown_text, format_created, format_losses, format_step,
                     markdown_table, shows_errors)
from .jobs import JobManager
from .worker import SamplingWorker

log = logging.getLogger(__name__)

TITLE = "Generative Media Studio"
REFRESH_SECONDS = 2.0
PIPELINE_COLUMNS = ["pipeline", "family", "kind", "summary"]
DATASET_COLUMNS = ["data set", "kind", "summary"]
RUN_COLUMNS = ["id", "pipeline", "data", "status", "step", "last losses", "created"]
CUSTOM_DATA_HINT = "or type folder:/path/to/images (a .zip works too) or text:/path/to/file.txt"
CSS = """
#sample-grid img, #images-gallery img, .pixelated img { image-rendering: pixelated; }
.catalog th, .catalog td:not(:last-child) { white-space: nowrap; }
"""


# --- what the tables show (plain data: tested without a browser) ---------------------------

def pipeline_rows() -> list[list[str]]:
    return [[e.name, e.family, e.kind, e.summary] for e in list_pipelines()]


def dataset_rows() -> list[list[str]]:
    return [[name, kind, summary] for name, kind, summary in BUNDLED_DATASETS]


def run_rows(runs_dir: str | os.PathLike, exit_codes: dict[str, int] | None = None
             ) -> list[list[str]]:
    """One row per run folder, newest first: RUN_COLUMNS. A run whose process (started by
    this UI) has exited while its run.json still says running shows the exit code."""
    rows = []
    for summary in list_runs(runs_dir):
        rows.append([summary["id"], summary["pipeline"], summary["data"],
                     _status_text(summary, (exit_codes or {}).get(summary["id"])),
                     format_step(summary["step"], summary.get("total_steps")),
                     format_losses(summary["last_loss"]),
                     format_created(summary["created"])])
    return rows


def _status_text(summary: dict[str, Any], exit_code: int | None) -> str:
    status = summary["status"]
    if exit_code is not None and status in ("queued", "running"):
        return f"{status}? (process exited with code {exit_code})"
    return status


def parse_options(text: str | None) -> dict[str, str]:
    """'key=value' pairs separated by spaces, commas or new lines -> {key: value}."""
    return parse_set_args([item for item in re.split(r"[\s,]+", text or "") if item])


@dataclass
class RunView:
    """What the page shows for the selected run."""
    image: str | None    # path of the latest sample grid (PNG), if any
    caption: str
    status: str          # a markdown line
    active: bool = False  # queued or running: something to stop


def run_view(runs_dir: str | os.PathLike, run_id: str | None,
             exit_code: int | None = None) -> RunView:
    if not run_id:
        return RunView(None, "samples", "Pick a run to see its latest samples.")
    run = RunFolder(Path(runs_dir) / run_id)
    if not run.info_path.is_file():
        return RunView(None, "samples", f"Run `{run_id}` is gone from {runs_dir}.")
    try:
        summary = run.summary()
    except StudioError as e:  # a damaged run.json: say so on every refresh, without a toast
        return RunView(None, f"{run_id}: unreadable", f"**damaged** · {as_markdown_text(str(e))}")
    grids = [p for p in run.sample_files() if p.suffix == ".png"]
    image = str(grids[-1]) if grids else None
    caption = f"{run_id}: samples at step {_step_of(grids[-1])}" if grids else \
        f"{run_id}: no samples yet"
    parts = [f"**{_status_text(summary, exit_code)}**",
             f"step {format_step(summary['step'], summary.get('total_steps'))}",
             f"{summary['pipeline']} on {summary['data']}"]
    losses = format_losses(summary["last_loss"])
    if losses:
        parts.append(losses)
    if summary.get("message"):
        parts.append(as_markdown_text(str(summary["message"])))
    active = summary["status"] in ("queued", "running") and exit_code is None
    return RunView(image, caption, " · ".join(parts), active)


def _step_of(sample: Path) -> int | str:
    match = re.fullmatch(r"step_(\d+)", sample.stem)
    return int(match.group(1)) if match else sample.stem


# --- the page, section by section ----------------------------------------------------------

@dataclass
class TrainBox:
    pipeline: gr.Dropdown
    data: gr.Dropdown
    steps: gr.Number
    options: gr.Textbox
    start: gr.Button
    message: gr.Markdown


@dataclass
class RunsPanel:
    table: gr.Dataframe
    refresh: gr.Button
    run: gr.Dropdown
    image: gr.Image
    status: gr.Markdown
    stop: gr.Button
    seen: gr.State       # per session: what the page shows now, to skip unchanged updates


def build_catalog() -> None:
    """What can be trained, on what: static for the life of the page."""
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown("### Pipelines\n" + markdown_table(PIPELINE_COLUMNS, pipeline_rows()),
                        elem_classes="catalog")
        with gr.Column(scale=2):
            gr.Markdown("### Bundled data sets\n" + markdown_table(DATASET_COLUMNS,
                                                                    dataset_rows()),
                        elem_classes="catalog")


def build_train_box() -> TrainBox:
    names = [e.name for e in list_pipelines()]
    data_names = [name for name, _, _ in BUNDLED_DATASETS]
    gr.Markdown("### Train")
    with gr.Group():
        with gr.Row():
            pipeline = gr.Dropdown(names, value=names[0] if names else None, label="Pipeline",
                                   info="what to train (the table above)")
            data = gr.Dropdown(data_names, value=data_names[0] if data_names else None,
                               allow_custom_value=True, label="Data", info=CUSTOM_DATA_HINT)
            steps = gr.Number(value=0, precision=0, minimum=0, label="Steps",
                              info="0 = the pipeline's default")
        options = gr.Textbox(label="Options", placeholder="key=value ..., e.g. width=32 lr_g=1e-4",
                             info="any pipeline or trainer option (`python -m pipelines list`)")
        start = gr.Button("Start training", variant="primary")
        message = gr.Markdown()
    return TrainBox(pipeline, data, steps, options, start, message)


def build_runs_panel() -> RunsPanel:
    gr.Markdown("### Runs")
    table = gr.Dataframe(headers=RUN_COLUMNS, label="Runs (click a row to see it)",
                         interactive=False, wrap=True)
    refresh = gr.Button("Refresh", size="sm")
    with gr.Row():
        with gr.Column(scale=1):
            run = gr.Dropdown([], value=None, label="Run", allow_custom_value=False)
            status = gr.Markdown("Pick a run to see its latest samples.")
            stop = gr.Button("Stop this run", variant="stop", interactive=False)
        with gr.Column(scale=2):
            image = gr.Image(label="samples", type="filepath", interactive=False,
                             elem_id="sample-grid", height=360)
    seen = gr.State({"rows": None, "ids": None, "image": None})
    return RunsPanel(table, refresh, run, image, status, stop, seen)


# --- the page's behaviour ------------------------------------------------------------------

def wire_train_box(box: TrainBox, panel: RunsPanel, jobs: JobManager) -> None:
    @shows_errors(2)
    def start_training(pipeline, data, steps, options):
        try:
            run_id = jobs.start(pipeline, data, steps or 0, extra_set=parse_options(options))
        except StudioError as e:  # the whole message stays in the box; the toast may cut it
            gr.Warning(as_markdown_text(str(e)))
            return f"**Not started:** {as_markdown_text(str(e))}", gr.skip()
        gr.Info(f"started run {run_id}")
        return f"Started run `{run_id}`.", gr.Dropdown(choices=[run_id], value=run_id)

    box.start.click(start_training, [box.pipeline, box.data, box.steps, box.options],
                    [box.message, panel.run], concurrency_limit=1).then(
        refresher(panel, jobs), [panel.run, panel.seen], refresh_outputs(panel),
        show_progress="hidden")


def refresh_outputs(panel: RunsPanel) -> list:
    return [panel.table, panel.run, panel.image, panel.status, panel.stop, panel.seen]


def refresher(panel: RunsPanel, jobs: JobManager, *, pick_newest: bool = False) -> Callable:
    """The handler that brings the runs table and the selected run up to date, sending only
    what changed since this session's last update."""
    @shows_errors(6)
    def refresh(selected, seen):
        codes = jobs.exit_codes()
        rows = run_rows(jobs.runs_dir, codes)
        ids = [row[0] for row in rows]
        if pick_newest and not selected and ids:
            selected = ids[0]
        if selected not in ids:
            selected = None
        view = run_view(jobs.runs_dir, selected, codes.get(selected or ""))
        shown = (selected, view.image, view.caption)
        new_seen = {"rows": rows, "ids": ids, "image": shown}
        return (rows if rows != seen.get("rows") else gr.skip(),
                gr.Dropdown(choices=ids, value=selected) if ids != seen.get("ids")
                or pick_newest else gr.skip(),
                gr.Image(value=view.image, label=view.caption)
                if shown != seen.get("image") else gr.skip(),
                view.status, gr.Button(interactive=view.active), new_seen)
    return refresh


def wire_runs_panel(app: gr.Blocks, panel: RunsPanel, jobs: JobManager) -> None:
    refresh = refresher(panel, jobs)
    inputs, outputs = [panel.run, panel.seen], refresh_outputs(panel)
    app.load(refresher(panel, jobs, pick_newest=True), inputs, outputs, show_progress="hidden")
    gr.Timer(REFRESH_SECONDS).tick(refresh, inputs, outputs, show_progress="hidden")
    panel.refresh.click(refresh, inputs, outputs)
    panel.run.change(refresh, inputs, outputs, show_progress="hidden")

    def pick_clicked_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[0] if row else gr.skip()

    panel.table.select(pick_clicked_row, None, panel.run)

    @shows_errors(1)
    def stop_run(run_id):
        message = jobs.stop(run_id)
        gr.Info(message)
        return as_markdown_text(message)

    panel.stop.click(stop_run, panel.run, panel.status)


def build_app(runs_dir: str | os.PathLike | None = None,
              jobs: JobManager | None = None, *, viewer: bool = False,
              worker: SamplingWorker | None = None) -> gr.Blocks:
    """The studio's page for the runs under `runs_dir` (default $STUDIO_RUNS_DIR or
    ./checkpoints). Jobs started from this page are kept by `jobs` (a new JobManager if none
    is given); sampling goes through `worker` (started on first use). `viewer`: read-only."""
    from .tabs import images, text, train
    jobs = jobs or JobManager(runs_dir_from_env(runs_dir))
    studio = Studio(jobs.runs_dir, jobs, worker or SamplingWorker(jobs.runs_dir), viewer)
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"# {TITLE}\nTrain small generative models on bundled or your own data, "
                    f"and watch them learn. Runs live in `{jobs.runs_dir}`.")
        with gr.Tabs():
            with gr.Tab("Train", id="train"):
                train.build(studio, app)
                with gr.Accordion("What can be trained", open=False):
                    build_catalog()
            with gr.Tab("Images", id="images") as images_tab:
                image_run = images.build(studio)
            with gr.Tab("Text", id="text") as text_tab:
                text_run = text.build(studio)
            with gr.Tab("Runs", id="runs"):
                panel = build_runs_panel()
                wire_runs_panel(app, panel, jobs)
        # Opening a tab lists the runs that finished since the page loaded.
        images_tab.select(lambda: run_choices(studio, "image"), None, image_run)
        text_tab.select(lambda: run_choices(studio, "text"), None, text_run)
        app.load(lambda: (run_choices(studio, "image"), run_choices(studio, "text")), None,
                 [image_run, text_run])
    app.studio_jobs = jobs  # for launchers and tests: the manager behind this page
    app.studio = studio
    return app


def launch_studio(runs_dir: str | os.PathLike | None = None, *, host: str = "127.0.0.1",
                  port: int = 7860, inbrowser: bool = True, share: bool = False,
                  prevent_thread_lock: bool = False) -> gr.Blocks:
    """Build the page and serve it; the run folders' sample grids may be served to it."""
    runs = runs_dir_from_env(runs_dir).resolve()
    app = build_app(runs)
    # Start the sampling worker now (it imports torch: seconds) so the first form is quick.
    threading.Thread(target=lambda: [app.studio.worker.describe(e.name)
                                     for e in list_pipelines()[:1]], daemon=True).start()
    app.launch(server_name=host, server_port=port, inbrowser=inbrowser, share=share,
               allowed_paths=[str(runs)], theme=gr.themes.Soft(), css=CSS,
               prevent_thread_lock=prevent_thread_lock, footer_links=["gradio", "settings"])
    return app
