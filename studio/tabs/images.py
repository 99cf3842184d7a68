"""Images tab: sample a trained image model — run and checkpoint, seed, batch, class, every
sampling control its family offers (read from the family, not written here), walks between two
seeds (a strip and a GIF), and the family's tools. Sampling happens in the sampling worker.
Every sample PNG carries the settings that made it; dropping one on the tab brings them back
(pipelines/core/png_settings.py), so Generate draws the same batch again.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from pipelines.core import generations
from pipelines.core.errors import StudioError
from pipelines.core.png_settings import read_settings
from pipelines.core.runs import RunFolder

from ..common import Studio, describe, run_choices, shows_errors, whole_number
from ..forms import changed_values, field_input
from . import history as history_view
from . import tools as tools_view
from .picker import LATEST, parse_step, run_picker, run_pipeline, step_choices  # noqa: F401

CYCLE = "cycle through classes"
NO_UPSCALE = "no upscaling"


def class_choices(info: dict[str, Any]) -> list[str]:
    names = (info.get("data_info") or {}).get("class_names") or []
    return [CYCLE] + [f"{i}: {name}" for i, name in enumerate(names)]


def parse_label(label: str | None) -> int | None:
    if label in (None, "", CYCLE):
        return None
    return whole_number(str(label).split(":")[0], "class", 0)


def label_choice(info: dict[str, Any], label: int | None) -> str:
    """The Class dropdown's entry for class `label` (None: cycle through the classes)."""
    if label is None:
        return CYCLE
    choices = class_choices(info)
    if not 0 <= label < len(choices) - 1:
        raise StudioError(f"class {label} is not one of this run's classes")
    return choices[label + 1]


def restored_settings(studio: Studio, path: str | None) -> dict[str, Any]:
    """A studio PNG's settings, checked against this studio's runs: the run must be here, be
    the pipeline that made the picture, and still have the checkpoint it was drawn from."""
    if not path:
        raise StudioError("drop a PNG the studio wrote (one of the Images tab's samples)")
    settings = read_settings(path)
    name, run_id = Path(path).name, settings["run"]
    if not (studio.runs_dir / run_id).is_dir():
        raise StudioError(f"{name} was drawn by run {run_id}, which is not in this studio's "
                          f"runs folder")
    run = RunFolder.by_id(studio.runs_dir, run_id)
    info = run.info()
    if info["pipeline"] != settings["pipeline"]:
        raise StudioError(f"{name} was drawn by a {settings['pipeline']} model, but run "
                          f"{run_id} here is {info['pipeline']}")
    if settings["upscale_with"] and not (studio.runs_dir / settings["upscale_with"]).is_dir():
        raise StudioError(f"{name} was upscaled by run {settings['upscale_with']}, which is not "
                          f"in this studio's runs folder")
    if settings["checkpoint"] is not None and settings["checkpoint"] not in run.checkpoint_steps():
        raise StudioError(f"run {run_id} no longer keeps the checkpoint of step "
                          f"{settings['checkpoint']} that {name} was drawn from")
    return {**settings, "classes": class_choices(info),
            "label_choice": label_choice(info, settings["label"])}


def restore_updates(studio: Studio, path: str | None) -> tuple:
    """What restoring a studio PNG sets on the tab: run, checkpoint step, seed, batch size,
    class, the controls the form then shows, and a note saying what was restored."""
    s = restored_settings(studio, path)
    place = (f"; the picture is number {s['index'] + 1} of the batch"
             if s["index"] is not None else "")
    upscaled = f", upscaled with {s['upscale_with']}" if s["upscale_with"] else ""
    note = (f"Restored run {s['run']}, checkpoint {s['checkpoint'] or LATEST} (weights of step "
            f"{s['weights_step']}), seed {s['seed']}, batch {s['count']}{upscaled} and its "
            f"sampling controls: Generate draws the same batch{place}.")
    return (gr.Dropdown(choices=studio.run_ids("image"), value=s["run"]),
            gr.Dropdown(choices=step_choices(studio, s["run"]),
                        value=LATEST if s["checkpoint"] is None else str(s["checkpoint"])),
            s["seed"], s["count"],
            gr.Dropdown(choices=s["classes"], value=s["label_choice"]),
            gr.Dropdown(choices=upscaler_choices(studio), value=s["upscale_with"] or NO_UPSCALE),
            {"run": s["run"], "controls": s["controls"]}, note)


def zip_batch(files: list[str]) -> str:
    """The batch's PNGs in one zip, next to them (the names carry seed and class)."""
    path = Path(files[0]).parent / "batch.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in files:
            archive.write(name, Path(name).name)
    return str(path)


def upscaler_choices(studio: Studio) -> list[str]:
    """"No upscaling" and every finished run whose pipeline upscales (super-resolution)."""
    return [NO_UPSCALE] + [run_id for run_id in studio.run_ids("image")
                           if describe(RunFolder(studio.runs_dir / run_id)
                                       .info()["pipeline"])["upscales"]]


def sample_batch(studio: Studio, run_id: str, step: Any, seed: Any, batch: Any, label: Any,
                 controls: dict[str, Any], upscale_with: str | None = None
                 ) -> tuple[list[tuple[str, str]], str]:
    """The Generate button (and the API's /sample): ([(PNG, caption)], zip of the batch),
    upscaled by the super-resolution run `upscale_with` if given."""
    seed = whole_number(seed, "seed", 0)
    upscale_with = None if upscale_with in (None, "", NO_UPSCALE) else upscale_with
    result = studio.worker.call(
        "sample", run=RunFolder.by_id(studio.runs_dir, run_id).id, step=parse_step(step),
        seed=seed, n=whole_number(batch, "batch size", 1, 256), label=parse_label(label),
        controls=controls, upscale_with=upscale_with)
    if not result.get("files"):
        raise StudioError(f"run {run_id} writes text, not images; use the Text tab")
    names = result.get("class_names") or []
    labels = result.get("labels") or [None] * len(result["files"])
    if len(result["files"]) != whole_number(batch, "batch size"):   # groups: input | output ...
        captions = [f"seed {seed} · {i + 1}" for i in range(len(result["files"]))]
    else:
        captions = [f"seed {seed + i}" + (f" · {names[c]}" if c is not None and c < len(names)
                                          else "") for i, c in enumerate(labels)]
    batch_zip = zip_batch(result["files"])
    studio.outputs.keep(Path(batch_zip).parent)   # bounded per session (studio/outputs.py)
    generations.record_images(                    # and in the History
        studio.runs_dir, RunFolder.by_id(studio.runs_dir, run_id).id,
        sorted(Path(result["grid"]).parent.glob("*.png")), seed, len(result["files"]))
    return list(zip(result["files"], captions)), batch_zip


def build(studio: Studio) -> None:
    # Inputs read only by listeners inside gr.render get interactive=True: Gradio would
    # otherwise render them read-only.
    gr.Markdown("Sample a trained image model. The same seed gives the same image; image *i* "
                "of a batch uses seed + *i* (the file names in the zip say which).")
    run, step, refresh = run_picker("runs with weights, newest first", elem_id="images-run")
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", minimum=0, interactive=True)
        batch = gr.Number(16, precision=0, label="Batch size", minimum=1, maximum=256,
                          interactive=True)
        label = gr.Dropdown([CYCLE], value=CYCLE, label="Class", info="conditional models",
                            interactive=True)
        upscale = gr.Dropdown([NO_UPSCALE], value=NO_UPSCALE, label="Upscale with",
                              info="a super-resolution run (srresnet, srgan): 4x larger",
                              interactive=True, elem_id="images-upscale")
    # {"run": id, "controls": {...}} from a dropped studio PNG: the form below shows them
    restored = gr.State({})
    with gr.Row():
        if not studio.viewer:      # an upload: editors only
            png = gr.File(label="Restore the settings of a studio PNG (drop one of its samples)",
                          file_types=[".png"], elem_id="images-restore", scale=2)
        restore_note = gr.Markdown(elem_id="images-restore-note")

    @gr.render(inputs=[run, restored])
    def sampling_form(run_id, restored_values):
        described = run_pipeline(studio, run_id) if run_id else None
        if described is None:
            gr.Markdown("No image run with weights yet: train one in the Train tab.")
            return
        desc = describe(described[0])
        specs = desc["controls"]
        restored_here = (restored_values or {}).get("run") == run_id
        values = restored_values.get("controls", {}) if restored_here else {}
        with gr.Group():
            inputs = [field_input(spec, values.get(spec["name"])) for spec in specs]
        if restored_here:
            # Says the form above is the dropped PNG's now (the form is redrawn after the
            # note above appears: a click before that would reach the old form).
            gr.Markdown("The sampling controls above are the restored picture's.",
                        elem_id="images-form-restored")
        with gr.Row():
            generate = gr.Button("Generate", variant="primary", elem_id="images-generate")
            walk = gr.Button("Walk A → B", interactive=desc["can_interpolate"])

        @shows_errors(2)
        def sample(run_id, step, seed, batch, label, upscale_with, *values):
            return sample_batch(studio, run_id, step, seed, batch, label,
                                changed_values(specs, list(values)), upscale_with)

        generate.click(sample, [run, step, seed, batch, label, upscale, *inputs],
                       [gallery, download],
                       concurrency_limit=4).then(past.relist, None, [past.table, past.folders])

        @shows_errors(2)
        def interpolate(run_id, step, seed_a, seed_b, frames, label, *values):
            result = studio.worker.call(
                "interpolate", run=run_id, step=parse_step(step),
                seed_a=whole_number(seed_a, "seed A", 0), seed_b=whole_number(seed_b, "seed B", 0),
                frames=whole_number(frames, "frames", 2, 64), label=parse_label(label),
                controls=changed_values(specs, list(values)))
            studio.outputs.keep(Path(result["strip"]).parent)
            return result["strip"], result["gif"]

        walk.click(interpolate, [run, step, seed_a, seed_b, frames, label, *inputs],
                   [walk_strip, walk_gif])

    gallery = gr.Gallery(label="Samples", columns=8, height=420, elem_id="images-gallery")
    download = gr.File(label="Download the batch (zip, seeds in the file names)",
                       interactive=False)
    with gr.Accordion("Walk between two seeds", open=False):
        with gr.Row():
            seed_a = gr.Number(0, precision=0, label="Seed A", minimum=0, interactive=True)
            seed_b = gr.Number(1, precision=0, label="Seed B", minimum=0, interactive=True)
            frames = gr.Number(10, precision=0, label="Frames", minimum=2, maximum=64,
                               interactive=True)
        walk_strip = gr.Image(label="Walk (strip)", type="filepath", interactive=False)
        walk_gif = gr.Image(label="Walk (GIF)", type="filepath", interactive=False)
    # Opened by picking a run whose tools take pictures (image in, image out: translate,
    # upscale); the tools without inputs run on the run's own validation pictures.
    tools_panel = tools_view.build(studio, run, step, "images")

    @shows_errors(4)
    def pick_run(run_id, current_step, current_label, current_upscale):
        described = run_pipeline(studio, run_id)
        labels = class_choices(described[1]) if described else [CYCLE]
        steps = step_choices(studio, run_id)
        upscalers = [u for u in upscaler_choices(studio) if u != run_id]
        takes_pictures = tools_view.takes_pictures(described)
        # The Timeline tab sets run and step together, a restored PNG run, step, class and
        # upscaler: keep what fits the new run.
        return (gr.Dropdown(choices=steps, value=current_step if current_step in steps
                            else LATEST),
                gr.Dropdown(choices=labels, value=current_label if current_label in labels
                            else CYCLE),
                gr.Dropdown(choices=upscalers, value=current_upscale
                            if current_upscale in upscalers else NO_UPSCALE),
                gr.Accordion(open=takes_pictures))

    run.change(pick_run, [run, step, label, upscale], [step, label, upscale, tools_panel],
               show_progress="hidden")

    restore_outputs = [run, step, seed, batch, label, upscale, restored, restore_note]
    past = history_view.build(
        studio, history_view.IMAGES,
        lambda studio, folder: restore_updates(studio, str(folder / "grid.png")),
        restore_outputs)
    if not studio.viewer:
        @shows_errors(len(restore_outputs))
        def restore_png(path):
            return restore_updates(studio, path)

        png.upload(restore_png, png, restore_outputs)
    refresh.click(lambda: run_choices(studio, "image"), None, run)
    return SimpleNamespace(run=run, step=step, seed=seed, batch=batch)
