"""A run's tools, built from its family's spec: one panel, used by the Images tab (image in,
image out: translate, upscale, reconstruct...), the Text tab (attention maps) and the Classify
tab (filters, feature maps, confusion matrices). Pictures (or a .zip of them) and each tool's
options and button on the left; on the right the tool's picture, its class probabilities as
bars (only for a tool that gives them, e.g. a classifier's), its other numbers, and its text
line by line. Tools run in the sampling worker, as `studio tool` runs them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.core.errors import StudioError

from ..common import Studio, as_markdown_text, describe, shows_errors
from ..forms import changed_values, field_input
from .picker import parse_step, run_pipeline


def takes_pictures(described: tuple[str, dict[str, Any]] | None) -> bool:
    """Whether a run's tools take pictures (its Tools panel then opens by itself)."""
    return bool(described) and any(t["accepts_images"] or t["needs_images"]
                                   for t in describe(described[0])["tools"])


def build(studio: Studio, run: gr.Dropdown, step: gr.Dropdown, prefix: str,
          title: str = "Tools", open: bool = False) -> gr.Accordion:
    """The panel for the run picked in `run` at `step`; element ids start with `prefix`."""
    with gr.Accordion(title, open=open, elem_id=f"{prefix}-tools") as panel:
        drawn = gr.State(None)           # the run the panel is drawn for
        image = gr.Image(label="Tool result", type="filepath", interactive=False, height=420,
                         elem_id=f"{prefix}-tool-result", elem_classes="tool-result",
                         render=False)
        probabilities = gr.Label(label="Probability of each class", num_top_classes=10,
                                 visible=False, elem_id=f"{prefix}-tool-probabilities",
                                 render=False)
        values = gr.JSON(label="Tool numbers", elem_id=f"{prefix}-tool-numbers", render=False)
        # line_breaks: a passage, a fill-mask answer or a report keeps its lines
        text = gr.Markdown(elem_id=f"{prefix}-tool-text", line_breaks=True, render=False)
        with gr.Row():
            with gr.Column(scale=1):
                # Read-only: no uploads, so tools that need input images are refused.
                inputs = gr.State(None) if studio.viewer else gr.File(
                    label="Input images or a .zip of them (for tools that take them; without "
                          "any, the tools use validation pictures)", file_count="multiple",
                    file_types=["image", ".zip"], elem_id=f"{prefix}-tool-inputs",
                    interactive=True)   # an output too (offer_upload): Gradio would lock it

                # The panel is drawn once per run picked: for a change of `drawn`, which a
                # State makes only when its value differs. `run` itself can fire change
                # again with the same run on a busy machine (measured: the panel drawn six
                # times in five seconds), and each drawing replaced the box being typed in
                # and the button being clicked (its answer lost, or the box's text).
                @gr.render(inputs=[drawn])
                def tools_form(run_id):
                    described = run_pipeline(studio, run_id) if run_id else None
                    tools = describe(described[0])["tools"] if described else []
                    if described:
                        # which run these are for: the panel is drawn again for each run
                        # picked, a moment later on a busy machine (tests wait for this line)
                        gr.Markdown(f"Tools of run `{run_id}`", elem_id=f"{prefix}-tools-run")
                    if not tools:
                        gr.Markdown("This model's family has no tools." if described
                                    else "Pick a run.")
                    for tool in tools:
                        with gr.Group():
                            gr.Markdown(f"**{tool['name']}** — "
                                        f"{as_markdown_text(tool['help'])}")
                            fields = [field_input(spec) for spec in tool["options"]]
                            button = gr.Button(f"Run {tool['name']}", size="sm",
                                               variant="primary",
                                               elem_id=f"{prefix}-tool-{tool['name']}")
                        button.click(tool_handler(studio, tool), [run, step, inputs, *fields],
                                     [image, probabilities, values, text])
            with gr.Column(scale=1):
                image.render()
                probabilities.render()
                values.render()
                text.render()
    run.change(lambda run_id: run_id, run, drawn, show_progress="hidden")
    if not studio.viewer:
        # Only offered where a tool takes pictures (an upload nothing reads would be a
        # control that looks enabled and does nothing).
        @shows_errors(1)
        def offer_upload(run_id):
            return gr.File(visible=takes_pictures(run_pipeline(studio, run_id)),
                           interactive=True)

        run.change(offer_upload, run, inputs, show_progress="hidden")
    return panel


def tool_handler(studio: Studio, tool: dict[str, Any]):
    @shows_errors(4)
    def run_tool(run_id, step, files, *values):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files or []]
        if (paths or tool["needs_images"]) and studio.viewer:
            studio.require_editor("uploading images")
        if tool["needs_images"] and not paths:
            raise StudioError(f"{tool['name']} needs input images: add them above")
        if paths and not (tool["needs_images"] or tool["accepts_images"]):
            raise StudioError(f"{tool['name']} takes no input images: remove them above")
        result = studio.worker.call("tool", run=run_id, step=parse_step(step), name=tool["name"],
                                    options=changed_values(tool["options"], list(values)),
                                    inputs=paths or None)
        if result.get("image"):
            studio.outputs.keep(Path(result["image"]).parent)
        probabilities = result.get("probabilities") or {}
        # the picture box only where there is a picture: a text tool's answer stays in view
        return (gr.Image(value=result.get("image"), visible=bool(result.get("image"))),
                gr.Label(value=probabilities or None, visible=bool(probabilities)),
                result.get("values") or None,
                tool_text(result.get("text") or ""))
    return run_tool


COLUMNS = re.compile(r"\S {2,}\S")   # text laid out in columns: "circle     0.93    0.88"


def tool_text(text: str) -> str:
    """A tool's text for the Markdown box: columns aligned with spaces (two lines or more, as
    a per-class report) in a fixed-width block, where they keep their alignment; any other
    text (a Markdown table too) escaped, its line breaks kept by the box."""
    lines = text.splitlines()
    if (sum(bool(COLUMNS.search(line)) for line in lines) >= 2
            and not any(line.lstrip().startswith("|") for line in lines)):  # not a Markdown table
        return "```\n" + text.replace("```", "'''") + "\n```"
    return as_markdown_text(text)
