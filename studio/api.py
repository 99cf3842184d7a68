"""The studio's API: each tab's main action as a named endpoint, for scripts (and the tests).

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")            # auth=("user", "pw") with --auth
    run, message = client.predict("dcgan", "digits", {"steps": 300}, api_name="/train")
    print(client.predict(run, api_name="/progress"))     # "**running** · step 120/300 · ..."
    images, batch_zip, message = client.predict(run, 7, 8, api_name="/sample")

The page's own events stay off the API (they are wired to its components); these endpoints
call the same functions they do. Every endpoint ends its answer with a message: what happened,
or "error: ..." with the one sentence the page would show (never a traceback), and empty
results. In a read-only studio (--viewer) the endpoints that train, stop, resume, delete,
upload, classify (a picture is an upload), export or keep checkpoints do not exist.
"""

import functools  # no `from __future__ import annotations`: gr.api reads the hints at runtime
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np
from gradio import FileData
from PIL import Image

from pipelines.core.config import check_seed
from pipelines.data.images import bomb_guard, check_image_pixels
from pipelines.core.errors import StudioError
from pipelines.services.model_card import model_card_text
from pipelines.core.runs import RunFolder, delete_run

from . import live
from .common import Studio, error_text, whole_number
from .tabs.classify import classify_picture
from .tabs.images import parse_step, sample_batch
from .tabs.runs import RUN_COLUMNS, config_comparison, run_rows
from .tabs.text import write_texts
from .uploads import store_upload

EDITOR_ENDPOINTS = ("train", "dry_run", "stop", "resume", "upload", "delete", "export",
                    "keep_checkpoint")


def answers(*empty: Any) -> Callable:
    """An endpoint's errors become its message ("error: ...") after `empty` results, and a
    warning in the client's log."""
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def endpoint(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the console gets the traceback
                message = error_text(e, fn.__name__)
                gr.Warning(message)
                return (*empty, f"error: {message}") if empty else f"error: {message}"
        return endpoint
    return decorate


def uploaded_path(file: Any) -> Path:
    """The path of a file the client uploaded (gradio_client's handle_file): only files in
    Gradio's upload folder, so a request cannot name any other file on this machine."""
    raw = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
    if not raw:
        raise StudioError("no file arrived; upload one with gradio_client.handle_file(PATH)")
    path = Path(raw).resolve()
    if Path(gr.utils.get_upload_folder()).resolve() not in path.parents:
        raise StudioError("only a file uploaded with this request can be read")
    return path


def options_dict(value: Any, what: str = "options") -> dict[str, Any]:
    """An endpoint's options or controls (a JSON object of names and values), or a
    StudioError: a list, a number or a text is refused before anything is started."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        example = ' such as {"steps": 300}' if what == "options" else ""
        raise StudioError(f"{what} must be a JSON object of names and values{example}, not "
                          f"{type(value).__name__} {shown}")
    return dict(value)


def register(studio: Studio) -> None:
    """Add the endpoints to the gr.Blocks being built."""
    def run_folder(run: str) -> RunFolder:
        return RunFolder.by_id(studio.runs_dir, run)

    # --- everyone: look and sample ----------------------------------------------------------
    @answers([], [])
    def runs() -> tuple[list[str], list[list[str]], str]:
        """The Runs table: its columns and one row per run, newest first."""
        rows = run_rows(studio.runs_dir, studio.jobs.exit_codes())
        return RUN_COLUMNS, rows, f"{len(rows)} runs"

    @answers("", "")
    def compare(runs: list[str]) -> tuple[str, str, str]:
        """Several runs' configs side by side (markdown, what differs in bold), and the first
        run's model card."""
        ids = [run_folder(r).id for r in runs or []]
        if not ids:
            raise StudioError("choose one or more runs")
        return (config_comparison(studio, ids), model_card_text(run_folder(ids[0])),
                f"compared {len(ids)} runs")

    @answers()
    def progress(run: str) -> str:
        """The live view's progress line of a run (status, step, ETA, device...)."""
        folder = run_folder(run)
        return live.progress_text(folder, studio.jobs.exit_codes().get(folder.id),
                                  studio.jobs.queue_position(folder.id))

    @answers([], None)
    def sample(run: str, seed: int = 0, batch: int = 16, step: str = "latest",
               label: str = "", controls: dict | None = None, upscale_with: str = ""
               ) -> tuple[list[FileData], FileData | None, str]:
        """The Images tab's Generate: PNGs (image i from seed + i) and a zip of the batch.
        `seed`: 0 to 2**32 - 1; `controls`: the family's sampling controls by name; `label`: a
        class index; `upscale_with`: a super-resolution run that upscales the batch."""
        pictures, batch_zip = sample_batch(studio, run, step, check_seed(seed), batch,
                                           label or None, options_dict(controls, "controls"),
                                           upscale_with or None)
        return ([FileData(path=path, orig_name=Path(path).name) for path, _ in pictures],
                FileData(path=batch_zip, orig_name="batch.zip"),
                f"{len(pictures)} images from {run}: " + ", ".join(c for _, c in pictures))

    @answers("")
    def write(run: str, seed: int = 0, samples: int = 1, step: str = "latest",
              controls: dict | None = None) -> tuple[str, str]:
        """The Text tab's Write: `samples` texts (sample i from seed + i), separated by
        '---' lines; `controls` such as prompt, temperature, top_k."""
        text, controls = "", options_dict(controls, "controls")
        for text in write_texts(studio, run, step, check_seed(seed), samples, controls):
            pass
        return text, f"wrote {text.count(chr(10) + '---' + chr(10)) + 1} samples with {run}"

    @answers([])
    def classify(image: FileData) -> tuple[list[dict], str]:
        """The Classify tab: every finished digits classifier's answer for a picture."""
        path = uploaded_path(image)
        try:
            with bomb_guard(path.name), Image.open(path) as picture:
                check_image_pixels(picture, path.name)   # from the header, before decoding
                pixels = np.asarray(picture.convert("RGBA"))
        except OSError as e:
            raise StudioError(f"that file is not a picture ({e}); send a PNG or JPEG") from None
        found = classify_picture(studio, pixels)
        return found, f"{len(found)} classifiers answered"

    @answers(None, None)
    def tool(run: str, name: str, inputs: list[FileData] | None = None,
             options: dict | None = None, step: str = "latest"
             ) -> tuple[FileData | None, dict | None, str]:
        """The Images tab's Tools: the family's tool `name` on a run (`studio list` names
        each family's), on `inputs` (pictures sent with gradio_client.handle_file; editors
        only) or on what the tool picks without them (e.g. validation images), `options` by
        name. Returns the tool's picture, its numbers (a classifier's class probabilities
        under "probabilities") and a message."""
        paths = [str(uploaded_path(file)) for file in inputs or []]
        if paths:
            studio.require_editor("uploading images")
        result = studio.worker.call("tool", run=run_folder(run).id, name=name,
                                    options=options_dict(options), inputs=paths or None,
                                    step=parse_step(step))
        image = result.get("image")
        values = result.get("values")
        if result.get("probabilities"):     # what the page shows as bars
            values = {**(values or {}), "probabilities": result["probabilities"]}
        return (FileData(path=image, orig_name=Path(image).name) if image else None,
                values,
                f"{name} on {run}" + (f": {result['text']}" if result.get("text") else ""))

    for fn in (runs, compare, progress, sample, write, tool):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=4)
    if studio.viewer:
        return   # (/classify takes a picture, an upload: a read-only studio takes none)
    gr.api(classify, api_name="classify", concurrency_limit=4)

    # --- editors: train, change, delete -----------------------------------------------------
    @answers("")
    def train(pipeline: str, data: str, options: dict | None = None) -> tuple[str, str]:
        """The Train tab's Start: queue a run (`options`: any pipeline or trainer option by
        name, e.g. {"steps": 300, "lr_g": 1e-4}). Returns the run id."""
        studio.require_editor("training")
        run = studio.jobs.start(pipeline, data, 0, extra_set=options_dict(options))
        return run, studio.jobs.queue_message(run, "queued run")

    @answers()
    def inspect(pipeline: str, data: str, options: dict | None = None) -> str:
        """The Train tab's Inspect the network: every layer of the model these options build
        (output shapes, parameters, multiply-adds, conv arithmetic), as Markdown."""
        studio.require_editor("inspecting a model (it trains one step)")
        return studio.jobs.inspect(pipeline, data, extra_set=options_dict(options))

    @answers()
    def dry_run(pipeline: str, data: str, options: dict | None = None) -> str:
        """The Train tab's Dry run: train a few steps in a scratch folder and report speed,
        memory, checkpoint size and the time the configured steps would take."""
        studio.require_editor("training")
        return studio.jobs.dry_run(pipeline, data, 0, extra_set=options_dict(options))

    @answers()
    def stop(run: str) -> str:
        """Stop a running run (it saves; status stopped) or cancel a queued one."""
        studio.require_editor("stopping runs")
        return studio.jobs.stop(run)

    @answers()
    def resume(run: str, steps: int = 0) -> str:
        """Queue a stopped run to continue; `steps`: a new total (0 keeps the old one)."""
        studio.require_editor("training")
        return studio.jobs.resume(run, steps)

    @answers("")
    def upload(file: FileData) -> tuple[str, str]:
        """Upload a .zip of images (subfolders = classes) or a .txt file; returns the data
        spec to train on."""
        studio.require_editor("uploading data")
        return store_upload(uploaded_path(file), studio.runs_dir)

    @answers()
    def delete(run: str, confirm: bool = False) -> str:
        """Delete a run's folder (never a training one); `confirm` must be true."""
        studio.require_editor("deleting runs")
        if confirm is not True:
            raise StudioError("pass confirm=True to delete a run")
        return delete_run(studio.runs_dir, run)

    @answers()
    def export(run: str) -> str:
        """Write the run's export/ folder: weights, config, model card, library formats."""
        studio.require_editor("exporting")
        done = studio.worker.call("export", run=run_folder(run).id)
        return f"exported to {done['folder']}: {', '.join(done['files'])}"

    @answers()
    def keep_checkpoint(run: str, step: int) -> str:
        """The Timeline's Keep: this checkpoint is never pruned."""
        studio.require_editor("keeping checkpoints")
        folder = run_folder(run)
        step = whole_number(step, "step", 0)
        folder.keep_checkpoint(step)
        return f"step {step} of {folder.id} is kept"

    for fn in (train, inspect, dry_run, stop, resume, upload, delete, export, keep_checkpoint):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=4)

