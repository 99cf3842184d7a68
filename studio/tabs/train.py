"""Train tab: pick a pipeline and a data set (bundled, or an uploaded zip of images or text
file), set its options in a form generated from the family's config (presets: quick look,
default, long for a CPU, gpu for one GPU, declared by the engine and filled into the form),
start; then watch any run live: curves, sample grids with a scrubber, progress and ETA, the
log; stop, resume, or duplicate it with changes.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.data import BUNDLED_DATASETS
from pipelines.core.errors import StudioError
from pipelines.core.presets import data_name
from pipelines.registry import list_pipelines
from pipelines.core.runs import RunFolder

from .. import live
from . import calculator
from ..common import (Studio, as_markdown_text, describe, offer_runs, shows_errors,
                      whole_number)
from ..forms import changed_values, field_input
from ..uploads import store_upload

PRESET_INFO = ("quick look, default, long: a tenth, one or three times the default steps (a "
               "CPU; a family may declare its own measured longer recipe as long); gpu: a "
               "bigger model, batch and steps for one GPU, about 5 minutes. Fills in the "
               "options below")
CUSTOM_DATA_HINT = ("or type folder:/path/to/images (a .zip works too), text:/path/to/file.txt, "
                    "a table (iris, wine, breast_cancer, diabetes) or csv:/path/to/file.csv")


def data_default(spec: dict[str, Any], data: str | None) -> Any:
    """A form field's default on that data set (the pipeline may train longer on one)."""
    return (spec.get("default_by_data") or {}).get(data_name(data), spec["default"])


def preset_values(desc: dict[str, Any], preset: str, data: str | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """What choosing `preset` puts in the form, as ({model option: value}, {trainer option:
    value}), from the presets in the pipeline's description (`pipelines.core.presets`) on
    that data set: every option that any of its presets sets gets this preset's value or else
    its default (so default undoes gpu); options no preset touches keep what the user typed."""
    presets = ((desc.get("presets_by_data") or {}).get(data_name(data))
               or desc.get("presets") or {})
    chosen = presets.get(preset, {"config": {}, "trainer": {}})
    values = []
    for part, specs in (("config", desc["options"]), ("trainer", desc["trainer"])):
        touched = set().union(*(p[part] for p in presets.values()))
        values.append({s["name"]: chosen[part].get(s["name"], data_default(s, data))
                       for s in specs if s["name"] in touched})
    return values[0], values[1]


def data_values(desc: dict[str, Any], preset: str, data: str | None) -> list[Any]:
    """What picking a data set changes in the trainer form: the fields whose default depends
    on the data (steps, where a 32 px set trains fewer than 8 px digits), under the preset
    chosen; gr.skip() for every other field."""
    trainer = preset_values(desc, preset, data)[1]
    return [trainer.get(s["name"], data_default(s, data)) if s.get("default_by_data")
            else gr.skip() for s in desc["trainer"]]


def start_message(studio: Studio, run_id: str) -> str:
    """What the page says after Start: started at once, or waiting in the queue."""
    ahead = studio.jobs.queue_position(run_id)
    if ahead is None:
        gr.Info(f"started run {run_id}")
        return f"Started run `{run_id}`."
    gr.Info(f"queued run {run_id}")
    return (f"Queued run `{run_id}`: it waits for a free slot ({ahead} ahead; `--max-jobs` "
            f"sets how many train at once).")


def build(studio: Studio, app: gr.Blocks) -> gr.Dropdown:
    names = [e.name for e in list_pipelines()]
    data_names = [name for name, _, _ in BUNDLED_DATASETS]
    prefill = gr.State({})   # per session: a run's options, when duplicating it

    def training_form():
        """Pipeline, data (or an upload), the generated options form, Start and Dry run."""
        with gr.Row():
            pipeline = gr.Dropdown(names, value=names[0], label="Pipeline",
                                   info="what to train (`studio list` describes each)",
                                   elem_id="train-pipeline")
            data = gr.Dropdown(data_names, value=data_names[0], allow_custom_value=True,
                               label="Data", info=CUSTOM_DATA_HINT, interactive=True,
                               elem_id="train-data")
            upload = gr.File(label="…or upload a .zip of images (subfolders = classes), a "
                             ".txt, a .csv (a table, or passages with a label column) or a "
                             ".tsv of source<TAB>target pairs",
                             file_types=[".zip", ".txt", ".csv", ".tsv"], height=110,
                             elem_id="train-upload")

        # Drawn again for another pipeline (or a duplicated run's values); another data set
        # only changes the fields whose default depends on it (data.change below).
        @gr.render(inputs=[pipeline, prefill, data],
                   triggers=[app.load, pipeline.change, prefill.change])
        def options_form(pipeline_name, prefill_values, data_spec_now):
            desc = describe(pipeline_name)
            values = prefill_values if prefill_values.get("pipeline") == pipeline_name else {}
            gr.Markdown(as_markdown_text(desc["summary"]))
            trainer_specs = desc["trainer"]
            preset = None
            if desc.get("presets"):   # models fit in one go have none
                with gr.Row():
                    preset = gr.Radio(list(desc["presets"]), value="default", label="Preset",
                                      interactive=True,
                                      info=PRESET_INFO, elem_id="train-preset")
            with gr.Accordion("Model options", open=False):
                model_inputs = [field_input(s, values.get("config", {}).get(s["name"]))
                                for s in desc["options"]]
            with gr.Accordion("Training options", open=bool(values)):
                trainer_inputs = [field_input(s, values.get("trainer", {}).get(
                                      s["name"], data_default(s, data_spec_now)))
                                  for s in trainer_specs]
            if preset is not None:
                def fill(name, data_spec):
                    config, trainer = preset_values(desc, name, data_spec)
                    return ([config.get(s["name"], gr.skip()) for s in desc["options"]]
                            + [trainer.get(s["name"], gr.skip()) for s in trainer_specs])

                preset.change(fill, [preset, data], [*model_inputs, *trainer_inputs],
                              show_progress="hidden")
                if any(s.get("default_by_data") for s in trainer_specs):
                    data.change(lambda *now: data_values(desc, *now), [preset, data],
                                trainer_inputs, show_progress="hidden")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start",
                                  scale=3)
                dry = gr.Button("Dry run", elem_id="train-dry-run", scale=1)
                look = gr.Button("Inspect the network", elem_id="train-inspect", scale=1)
                live_look = gr.Checkbox(True, label="Inspect as options change",
                                        interactive=True, elem_id="train-inspect-live", scale=1,
                                        info="each change trains one step in a scratch "
                                             "folder (a few seconds)")

            def overrides(form_values):
                n = len(model_inputs)
                return {**changed_values(desc["options"], list(form_values[:n])),
                        **changed_values(trainer_specs, list(form_values[n:]))}

            @shows_errors(2)
            def start_training(data_spec, *form_values):
                studio.require_editor("training")
                run_id = studio.jobs.start(pipeline_name, data_spec, 0,
                                           extra_set=overrides(form_values))
                return (start_message(studio, run_id),
                        gr.Dropdown(choices=studio.run_ids(with_weights=False), value=run_id))

            @shows_errors(1)
            def dry_run(data_spec, *form_values):
                studio.require_editor("training")
                gr.Info("dry run: training a few steps in a scratch folder…")
                report = studio.jobs.dry_run(pipeline_name, data_spec, 0,
                                             extra_set=overrides(form_values))
                return f"**Dry run** of {pipeline_name} on `{data_spec}`:\n```\n{report}\n```"

            @shows_errors(1)
            def inspect(data_spec, *form_values):
                gr.Info("inspecting: one training step in a scratch folder…")
                return studio.jobs.inspect(pipeline_name, data_spec, overrides(form_values))

            @shows_errors(1)
            def inspect_as_changed(live, data_spec, *form_values):
                if not live:
                    return gr.skip()
                return studio.jobs.inspect(pipeline_name, data_spec, overrides(form_values))

            form = [data, *model_inputs, *trainer_inputs]
            start.click(start_training, form, [message, run], concurrency_limit=1)
            dry.click(dry_run, form, message, concurrency_limit=1)
            look.click(inspect, form, network, concurrency_limit=2)
            # Live: the form's fields report a change when it is drawn for a newly picked
            # pipeline too, so picking one inspects it. One at a time: a burst of changes
            # (drawing the form, typing, a preset filling it) inspects once, then once more
            # for the values as they stand when it ends (always_last).
            gr.on([c.change for c in form] + [live_look.change], inspect_as_changed,
                  [live_look, *form], network, trigger_mode="always_last",
                  concurrency_limit=1, show_progress="minimal")

        message = gr.Markdown(elem_id="train-message")
        # The inspector's tables, for the options as they stand: after each change (Inspect
        # as options change) or on Inspect the network
        with gr.Accordion("Network: layers, shapes, parameters", open=True):
            network = gr.Markdown("Pick a pipeline, or press **Inspect the network**, to see "
                                  "every layer of the model its options build.",
                                  elem_id="train-network")

        return pipeline, data, upload, message

    if not studio.viewer:   # a read-only studio has no form at all, not a hidden one
        with gr.Group():
            pipeline, data, upload, message = training_form()
    calculator.build()

    gr.Markdown("### Live view")
    with gr.Row():
        run = gr.Dropdown([], label="Run", info="any run in the runs folder, newest first",
                          scale=3, elem_id="live-run")
        smoothing = gr.Slider(0, 0.95, value=0.6, step=0.05, label="Curve smoothing", scale=1)
    progress = gr.Markdown("Pick a run.", elem_id="live-progress")
    if not studio.viewer:
        with gr.Row():
            stop = gr.Button("Stop", variant="stop", size="sm", elem_id="live-stop")
            resume = gr.Button("Resume", size="sm", elem_id="live-resume")
            more_steps = gr.Number(0, precision=0, minimum=0, label="Resume to total steps",
                                   info="0 = the run's own total", scale=1)
            duplicate = gr.Button("Duplicate with changes", size="sm", elem_id="live-duplicate")
    # One chart per group of metrics, each with its own y axis (live.CHARTS, live.chart_of).
    # (no height=: with one, Gradio 6 cuts the legend off below the plot)
    plots = []
    for row in (live.CHARTS[:2], live.CHARTS[2:]):
        with gr.Row():
            for chart in row:
                plots.append(gr.LinePlot(x="step", y="value", color="series",
                                         label=chart.capitalize(),
                                         elem_id=f"live-{chart.replace('learning rate', 'lr')}"))
    chart_note = gr.Markdown(elem_id="live-chart-note")
    with gr.Row():
        with gr.Column():
            grid = gr.Image(label="Samples", type="filepath", interactive=False, height=320,
                            elem_id="live-grid", elem_classes="pixelated")
            scrub = gr.Slider(0, 1, value=0, step=1, label="Earlier grids (0 = latest)")
        with gr.Column():
            text_sample = gr.Textbox(label="Latest text sample", lines=6, max_lines=12)
            log = gr.Textbox(label="Log", lines=8, max_lines=12, autoscroll=True)

    # per session: the lines each plot shows (live.needs_redraw)
    drawn = gr.State([()] * len(plots))

    # The Stop button is there only for an editor, and enabled only while the picked run is
    # queued or training (a finished, stopped or interrupted run has nothing to stop).
    controls = [] if studio.viewer else [stop]

    n_out = 7 + len(plots) + len(controls)

    @shows_errors(n_out)
    def refresh(run_id, smooth, back, shown):
        if not run_id:
            yield (gr.skip(),) * n_out
            return
        folder = RunFolder(studio.runs_dir / run_id)
        if not folder.info_path.is_file():
            yield ((f"Run `{run_id}` is gone (deleted?); pick another.",)
                   + (gr.skip(),) * (n_out - 1))
            return
        stoppable = [gr.Button(interactive=folder.display_status() in ("queued", "running"))
                     for _ in controls]
        codes = studio.jobs.exit_codes()
        charts = live.chart_frames(folder, float(smooth or 0))
        frames = list(charts.values())
        series = [live.plotted_series(frame) for frame in frames]
        blank = [live.needs_redraw(old, new)
                 for old, new in zip(shown or [()] * len(plots), series)]
        if any(blank):   # new lines: empty the plot first, so that it draws a new chart
            yield ((gr.skip(), *(None if b else gr.skip() for b in blank))
                   + (gr.skip(),) * (6 + len(controls)))
        grids = live.sample_grids(folder)
        back = min(int(back or 0), max(len(grids) - 1, 0))
        image = gr.Image(value=str(grids[-1 - back][1]),
                         label=f"Samples at step {grids[-1 - back][0]}") if grids else None
        ahead = studio.jobs.queue_position(run_id)
        yield (live.progress_text(folder, codes.get(run_id), ahead),
               *(live.plot_value(frame) for frame in frames), live.empty_charts_note(charts),
               image,
               gr.Slider(maximum=max(len(grids) - 1, 1)),
               live.latest_text_sample(folder),
               live.log_tail(folder, studio.jobs.log_path(run_id)), *stoppable, series)

    outputs = [progress, *plots, chart_note, grid, scrub, text_sample, log, *controls, drawn]
    inputs = [run, smoothing, scrub, drawn]
    # One at a time (they share `drawn`): two refreshes interleaved could leave a plot's chart
    # built for other lines than `drawn` says.
    listen = dict(show_progress="hidden", concurrency_id="live-view")
    run.change(refresh, inputs, outputs, **listen)
    smoothing.release(refresh, inputs, outputs, **listen)
    scrub.release(refresh, inputs, outputs, **listen)
    gr.Timer(2.0).tick(refresh, inputs, outputs, **listen)

    @shows_errors(1)
    def stop_run(run_id):
        studio.require_editor("stopping runs")
        return as_markdown_text(studio.jobs.stop(run_id))

    @shows_errors(1)
    def resume_run(run_id, total):
        studio.require_editor("training")
        return as_markdown_text(studio.jobs.resume(run_id, whole_number(total or 0,
                                                                        "total steps", 0)))

    @shows_errors(3)
    def duplicate_run(run_id):
        studio.require_editor("training")
        if not run_id:
            raise StudioError("pick a run to duplicate")
        info = RunFolder(studio.runs_dir / run_id).info()
        gr.Info("the form above now holds this run's options: change what you like, then Start")
        return ({"pipeline": info["pipeline"], "config": info.get("config", {}),
                 "trainer": info.get("trainer", {})},
                gr.Dropdown(value=info["pipeline"]), gr.Dropdown(value=info["data"]))

    @shows_errors(2)
    def uploaded(file):
        studio.require_editor("uploading data")
        if file is None:
            return gr.skip(), gr.skip()
        spec, note = store_upload(file if isinstance(file, str) else file.name, studio.runs_dir)
        return gr.Dropdown(value=spec), as_markdown_text(note)

    if not studio.viewer:
        stop.click(stop_run, run, progress)
        resume.click(resume_run, [run, more_steps], progress)
        duplicate.click(duplicate_run, run, [prefill, pipeline, data])
        upload.upload(uploaded, upload, [data, message])
    offer_runs(app.load, [run], lambda: [studio.run_ids(with_weights=False)], gr.State({}))
    return run
