"""Classify tab: draw a digit (or upload a picture) and see every finished classifier's
prediction and probabilities side by side — CNNs, MLPs, row readers and classic models."""

from __future__ import annotations

import shutil
import time
import uuid

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from pipelines.core.errors import StudioError

from ..common import Studio, newest_picked, shows_errors
from . import tools as tools_view
from .picker import LATEST, run_picker, step_choices


def picture_from(editor: dict | np.ndarray | None) -> np.ndarray:
    """The drawn or uploaded picture as an (H, W, C) uint8 array; a blank pad is refused."""
    if isinstance(editor, dict):
        editor = editor.get("composite")
    if editor is None:
        raise StudioError("draw a digit or upload a picture first")
    picture = np.asarray(editor)
    if picture.size == 0 or picture.ndim not in (2, 3):
        raise StudioError("that is not a picture; draw a digit or upload a PNG or JPEG")
    rgb = picture[..., :3].astype(np.float32) if picture.ndim == 3 else picture.astype(np.float32)
    if picture.ndim == 3 and picture.shape[2] == 4:   # as the pad shows it: on white paper
        alpha = picture[..., 3:].astype(np.float32) / 255.0
        rgb = rgb * alpha + 255.0 * (1.0 - alpha)
    if float(rgb.max()) - float(rgb.min()) < 1.0:
        raise StudioError("the pad is empty; draw a digit first")
    return picture.astype(np.uint8)


# Gradio's Sketchpad opens with no tool chosen ("select the draw tool to start"): a stroke
# there draws nothing and Classify then says the pad is empty. Opening the tab picks the brush,
# as a drawing pad is expected to behave. (Sketchpad has no option for its first tool.)
BRUSH_READY_JS = """() => { let tries = 0; const pick = () => {
    const brush = document.querySelector('#classify-pad button[aria-label="Brush"]');
    if (brush && !brush.classList.contains('selected')) brush.click();
    if (++tries < 25) setTimeout(pick, 200);
}; setTimeout(pick, 200); }"""


def answers_table(answers: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run: prediction and its probability; long table of probabilities for a
    grouped bar plot)."""
    rows, bars = [], []
    for a in answers:
        best = max(a["probabilities"].items(), key=lambda kv: kv[1])
        rows.append([a["run"], a["pipeline"], a["prediction"], round(best[1], 3)])
        bars += [(a["pipeline"] + " · " + a["run"][-6:], str(name), float(p))
                 for name, p in a["probabilities"].items()]
    return (pd.DataFrame(rows, columns=["run", "pipeline", "prediction", "probability"]),
            pd.DataFrame(bars, columns=["model", "class", "probability"]))


def classify_picture(studio: Studio, picture: np.ndarray) -> list[dict]:
    """Every finished digits classifier's answer for `picture` (saved under the runs folder
    for the worker to read, and deleted once it has)."""
    folder = studio.runs_dir / ".ui" / time.strftime("%Y%m%d") / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(picture).save(folder / "drawing.png")
        answers = studio.worker.call("classify", image=str(folder / "drawing.png"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not answers:
        raise StudioError("no finished classifier trained on digits yet: train one in the "
                          "Train tab (e.g. resnet or svm-rbf on digits)")
    return answers


VIEWER_NOTE = ("This studio is read-only (`--viewer`): it takes no uploads, and a drawing "
               "reaches the classifiers as an upload, so there is nothing to draw on here. "
               "Whoever runs the studio can classify from their own page, or with `studio "
               "classify --input digit.png`.")


def build(studio: Studio) -> gr.Dropdown:
    """The drawing pad (editors only) and, for everyone, the tools of one classifier; returns
    that classifier's run picker."""
    if studio.viewer:
        # Checked in a browser: Gradio's sketchpad sends its picture through the upload
        # route, on a click and on a change alike, and a read-only studio has none
        # (studio/guards.py). A pad that draws but never answers would be a broken control.
        gr.Markdown(VIEWER_NOTE, elem_id="classify-viewer-note")
        return build_inside(studio)
    gr.Markdown("Draw a digit (light or dark strokes both work) or upload a picture; every "
                "finished classifier trained on `digits` answers.")
    with gr.Row():
        pad = gr.Sketchpad(label="Draw here", type="numpy", height=360, canvas_size=(280, 280),
                           brush=gr.Brush(default_size=18, colors=["#000000"]),
                           elem_id="classify-pad")
        with gr.Column():
            answer = gr.Button("Classify", variant="primary", elem_id="classify-go")
            table = gr.Dataframe(headers=["run", "pipeline", "prediction", "probability"],
                                 interactive=False, label="Predictions",
                                 elem_id="classify-answers")
    bars = gr.BarPlot(x="class", y="probability", color="model", label="Probabilities")
    # (no height=: it would cut the legend off)

    @shows_errors(2)
    def classify(editor):
        return answers_table(classify_picture(studio, picture_from(editor)))

    answer.click(classify, pad, [table, bars], concurrency_limit=2)
    return build_inside(studio)


def build_inside(studio: Studio) -> gr.Dropdown:
    """Look inside one classifier, or a classic model: its tools (filters, feature maps,
    confusion matrix; a classic fit's tables and pictures)."""
    gr.Markdown("### Inside a classifier or a classic model")
    run, step, refresh = run_picker("classifier runs with weights and finished classic fits, "
                                    "newest first", elem_id="classify-run")
    tools_view.build(studio, run, step, "classify", title="Tools (filters, feature maps, "
                     "confusion matrix, a classic model's tables and pictures, ...)", open=True)
    run.change(lambda r: gr.Dropdown(choices=step_choices(studio, r), value=LATEST), run, step,
               show_progress="hidden")
    refresh.click(lambda: inside_choices(studio), None, run)
    return run


def inside_ids(studio: Studio) -> list[str]:
    """Classifier runs with weights, then classic fits (they keep no weights: their tools read
    the summary and pictures the fit wrote)."""
    return studio.run_ids("classifier") + [
        r for r in studio.run_ids("classic", with_weights=False)
        if (studio.runs_dir / r / "summary.json").is_file()]


def inside_choices(studio: Studio) -> gr.Dropdown:
    """The Refresh button's update: those runs, the newest picked."""
    return newest_picked(inside_ids(studio))
