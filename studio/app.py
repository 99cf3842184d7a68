"""The studio's page: tabs to train and watch runs (Train), sample images (Images), write
text (Text) and compare, export or delete runs (Runs); one file per tab in studio/tabs/.

`build_app(runs_dir)` returns the `gr.Blocks`; `launch_studio(...)` builds and serves it (what
`python launch.py` calls). The page reads everything from run folders, so it can be closed,
reloaded or opened twice and still shows every run, including runs started from a terminal.

No torch here: training runs in subprocesses of the CLI (`studio.jobs`), sampling in one
worker process (`studio.worker`). Errors reach the user as a warning that names the problem,
never as a traceback. No tab names a family: forms come from the families' configs. Scripts
reach each tab's main action through named API endpoints (studio/api.py); the page's own
events are kept off the API.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import gradio as gr

from pipelines.core import limits
from pipelines.data import BUNDLED_DATASETS
from pipelines.registry import list_pipelines
from pipelines.core.runs import runs_dir_from_env

from .common import Studio, changed_lists, markdown_table, offer_runs
from .guards import RequestLimits
from .jobs import JobManager
from .worker import SamplingWorker

log = logging.getLogger(__name__)

TITLE = "Generative Media Studio"
PIPELINE_COLUMNS = ["pipeline", "family", "kind", "summary"]
DATASET_COLUMNS = ["data set", "kind", "summary"]
CSS = """
#sample-grid img, #images-gallery img, #images-tool-result img, .pixelated img {
    image-rendering: pixelated; }
.tool-result img { height: 380px; width: auto; max-width: 100%; object-fit: contain; }
.catalog th, .catalog td:not(:last-child) { white-space: nowrap; }
.history-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(96px, 128px))
                                   !important; grid-template-rows: none !important; }
"""


# --- what the catalog shows (plain data: tested without a browser) ------------------------

def pipeline_rows() -> list[list[str]]:
    return [[e.name, e.family, e.kind, e.summary] for e in list_pipelines()]


def dataset_rows() -> list[list[str]]:
    return [[name, kind, summary] for name, kind, summary in BUNDLED_DATASETS]


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


def build_app(runs_dir: str | os.PathLike | None = None,
              jobs: JobManager | None = None, *, viewer: bool = False,
              worker: SamplingWorker | None = None, max_jobs: int = 1,
              data_dirs: list[str | os.PathLike] | tuple = ()) -> gr.Blocks:
    """The studio's page for the runs under `runs_dir` (default $STUDIO_RUNS_DIR or
    ./checkpoints). Jobs started from this page are kept by `jobs` (a new JobManager running
    `max_jobs` at once if none is given); sampling goes through `worker` (started on first
    use). `viewer`: read-only. `data_dirs`: folders (besides the runs folder) whose files the
    page may train on (launch.py --data-dir; studio/guards.py)."""
    from . import api
    from .tabs import classify, images, runs, text, timeline, train
    from .tabs.reading import READERS
    jobs = jobs or JobManager(runs_dir_from_env(runs_dir), max_running=max_jobs,
                              dispatching=not viewer)
    jobs.data_dirs = tuple(str(os.path.abspath(os.path.expanduser(d))) for d in data_dirs)
    studio = Studio(jobs.runs_dir, jobs, worker or SamplingWorker(jobs.runs_dir), viewer)
    # The page's pictures are served from the runs folder's .ui/ itself, not copied into
    # Gradio's cache, so studio/outputs.py bounds them all; Gradio's own copies of uploads
    # are deleted once a day old (they were copied into the runs folder at once).
    gr.set_static_paths([studio.outputs.root])
    with gr.Blocks(title=TITLE, delete_cache=(limits.UPLOAD_SWEEP_SECONDS,
                                              limits.UPLOAD_MAX_AGE_SECONDS)) as app:
        gr.Markdown(f"# {TITLE}\nTrain small generative models on bundled or your own data, "
                    f"and watch them learn. Runs live in `{jobs.runs_dir}`.")
        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train"):
                train.build(studio, app)
                with gr.Accordion("What can be trained", open=False):
                    build_catalog()
            with gr.Tab("Timeline", id="timeline") as timeline_tab:
                timeline_slot = gr.Column()
            with gr.Tab("Images", id="images") as images_tab:
                image_ui = images.build(studio)
                image_run = image_ui.run
            with gr.Tab("Text", id="text") as text_tab:
                text_run, reader_run = text.build(studio)
            with gr.Tab("Classify", id="classify") as classify_tab:
                classifier_run = classify.build(studio)
            with gr.Tab("Runs", id="runs") as runs_tab:
                runs.build(studio, app, runs_tab)
        with timeline_slot:  # built last: it opens checkpoints in the Images tab
            timeline_run = timeline.build(studio, image_ui, tabs)
        shown = gr.State({})                    # the lists each run dropdown shows

        def timeline_runs(already: dict):
            (update,), already = changed_lists([timeline_run], [studio.run_ids()], already)
            return update, already
        timeline_tab.select(timeline_runs, shown, [timeline_run, shown], show_progress="hidden")
        # Opening a tab (and the page) lists the runs that finished since; a run already
        # picked stays picked (common.offer_runs: the lists' answer raced with the user's pick
        # and with the Timeline's "Open this checkpoint in Images", whose tab switch fires the
        # Images tab's select too).
        offer_runs(images_tab.select, [image_run], lambda: [studio.run_ids("image")], shown)
        offer_runs(text_tab.select, [text_run, reader_run],
                   lambda: [studio.run_ids("text"), studio.run_ids(READERS)], shown)
        # The pad draws at once (its brush is picked); the runs are listed again after it.
        offer_runs(classify_tab.select(None, js=classify.BRUSH_READY_JS).then,
                   [classifier_run], lambda: [classify.inside_ids(studio)], shown)
        offer_runs(app.load, [image_run, text_run, reader_run, classifier_run],
                   lambda: [studio.run_ids("image"), studio.run_ids("text"),
                            studio.run_ids(READERS), classify.inside_ids(studio)], shown)

        def session_left(request: gr.Request):
            """A tab closed (or a gradio_client closed): its pictures are no longer needed."""
            studio.outputs.drop_session(str(request.session_hash or ""))
        app.unload(session_left)
        # The page's events serve its components; scripts get the named endpoints of
        # studio/api.py instead (which call the same functions).
        for block_fn in app.fns.values():
            block_fn.api_visibility = "private"
            block_fn.api_name = f"page_{block_fn.api_name}"   # frees the names for the API
        api.register(studio)
    app.studio_jobs = jobs  # for launchers and tests: the manager behind this page
    app.studio = studio
    return app


def launch_options(runs_dir: str | os.PathLike, *, viewer: bool = False) -> dict:
    """What `launch_studio` passes to Gradio's launch besides address, port and logins: files
    under the runs folder may be served, nothing else; an upload over limits.MAX_UPLOAD_BYTES
    is refused by Gradio while it arrives (never stored), and so is any request over
    limits.MAX_REQUEST_BYTES; a read-only studio has no upload route at all and takes requests
    of limits.MAX_VIEWER_REQUEST_BYTES (studio/guards.py). Python serves every route itself
    (no Node proxy, no static-file workers, no MCP server), so these checks cover them all."""
    from starlette.middleware import Middleware
    guard = Middleware(RequestLimits, refuse_uploads=viewer,
                       max_body=limits.MAX_VIEWER_REQUEST_BYTES if viewer
                       else limits.MAX_REQUEST_BYTES)
    return dict(allowed_paths=[str(Path(runs_dir).resolve())],
                max_file_size=limits.MAX_UPLOAD_BYTES, ssr_mode=False, num_workers=0,
                mcp_server=False, app_kwargs={"middleware": [guard]})


def launch_studio(runs_dir: str | os.PathLike | None = None, *, host: str = "127.0.0.1",
                  port: int = 7860, inbrowser: bool = True, share: bool = False,
                  auth: list[tuple[str, str]] | None = None, viewer: bool = False,
                  max_jobs: int = 1, prevent_thread_lock: bool = False,
                  data_dirs: list[str | os.PathLike] | tuple = ()) -> gr.Blocks:
    """Build the page and serve it (`launch_options`: what may be served and uploaded).
    `auth`: (user, password) logins required. `max_jobs`: how many runs train at once; more
    wait in the queue, which moves on with no page open (a read-only studio starts nothing).
    `data_dirs`: folders the page may train on besides the runs folder."""
    runs = runs_dir_from_env(runs_dir).resolve()
    app = build_app(runs, viewer=viewer, max_jobs=max_jobs, data_dirs=data_dirs)
    if not viewer:
        app.studio_jobs.run_queue_in_background()
    app.studio.outputs.sweep()     # pictures a stopped studio left behind
    # The forms come from the specs in this process; the sampling worker (torch: seconds)
    # starts now, in the background, so that the first sample is quick too.
    threading.Thread(target=app.studio.worker.warm_up, daemon=True).start()
    # quiet: Gradio's own lines end with "set `share=True` in `launch()`", advice for its API
    # that a studio user cannot follow; the studio says where it is, and its own flag.
    app.launch(server_name=host, server_port=port, inbrowser=inbrowser, share=share,
               auth=auth, auth_message="Generative Media Studio: log in" if auth else None,
               theme=gr.themes.Soft(), css=CSS, prevent_thread_lock=True,
               footer_links=["gradio", "settings"], quiet=True,
               **launch_options(runs, viewer=viewer))
    print(f"Generative Media Studio: {app.local_url}"
          + (f" and {app.share_url}" if app.share_url else "  (`--share` for a public link)"),
          flush=True)
    if not prevent_thread_lock:
        app.block_thread()         # serve until Ctrl-C, as launch() itself would have
    return app
