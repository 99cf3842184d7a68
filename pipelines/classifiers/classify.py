"""Every finished classifier's answer for one picture: the engine of the Classify tab and of
`studio classify --input drawing.png`.

    classify_image(image, runs_dir) -> [{"run", "pipeline", "data", "prediction",
                                         "probabilities": {class: p}}, ...]

A run takes part when its status is done and it classifies images of the picture's kind:

- torch classifiers (mlp, the CNNs, the row readers) on image data: the picture is made grey
  or colour as the run's data is, centre-cropped to a square and resized to its size. For
  `digits`-like grey data a dark-on-light drawing is inverted first (the data is light strokes
  on black);
- classic models fit on the `digits` table: the picture is resized to 8x8, inverted when
  dark-on-light, and scaled to 0..16 like scikit-learn's digits. The model is refit from
  run.json (nothing is pickled; seconds). SVM probabilities are scikit-learn's
  probability=True (Platt scaling), logistic regression's are one-vs-rest normalised.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from ..core.errors import StudioError
from ..registry import get_entry
from ..core.runs import list_runs, runs_dir_from_env


def as_float_image(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 / float -> (H, W, 3) float32 in [0, 1] (alpha on white)."""
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise StudioError(f"an image must be (H, W) or (H, W, 1/3/4) pixels, not {a.shape}")
    a = a.astype(np.float32)
    if a.max(initial=0.0) > 1.0:
        a = a / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 4:                                      # composite on white paper
        a = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.clip(a, 0.0, 1.0)


def _square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) -> centre square -> (size, size, 3), area-averaged (a thin pen stroke stays)."""
    h, w, _ = rgb.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top:top + side, left:left + side]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(square[..., c])).resize(
        (size, size), Image.Resampling.BOX)) for c in range(3)]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def digit_like(image: np.ndarray, size: int) -> np.ndarray:
    """A drawing as (size, size) grey in [0, 1], light strokes on black like digits: inverted
    when the picture is mostly light (dark ink on paper), then cropped to the ink's bounding
    square with a small margin, as the digits were (a stroke drawn small in a corner of a big
    pad would otherwise shrink to a pixel)."""
    grey = _grey(as_float_image(image))
    if np.median(grey) > 0.5:
        grey = 1.0 - grey
    rows, cols = np.nonzero(grey > 0.25 * grey.max(initial=0.0))
    if len(rows):
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        side = int(max(bottom - top, right - left) * 1.15) + 1
        cy, cx = (top + bottom) // 2, (left + right) // 2
        canvas = np.zeros((side, side), np.float32)
        y0, x0 = cy - side // 2, cx - side // 2
        src = grey[max(y0, 0):y0 + side, max(x0, 0):x0 + side]
        canvas[max(-y0, 0):max(-y0, 0) + src.shape[0], max(-x0, 0):max(-x0, 0) + src.shape[1]] = src
        grey = canvas
    rgb = np.repeat(grey[..., None], 3, axis=2)
    return _grey(_square_resize(rgb, size)).astype(np.float32)


def image_for(image: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The picture as (1, C, S, S) in [0, 1] the way a torch run's data looks."""
    size, channels = int(info["image_size"]), int(info["channels"])
    if channels == 1:
        return digit_like(image, size)[None, None]
    rgb = _square_resize(as_float_image(image), size)
    return rgb.transpose(2, 0, 1)[None].astype(np.float32)


def _answer(run_id: str, pipeline: str, data: str, proba: np.ndarray,
            class_names: list[str]) -> dict[str, Any]:
    proba = np.asarray(proba, dtype=np.float64)
    return {"run": run_id, "pipeline": pipeline, "data": data,
            "prediction": class_names[int(np.argmax(proba))],
            "probabilities": {name: float(p) for name, p in zip(class_names, proba)}}


def classify_image(image: np.ndarray, runs_dir: str | os.PathLike | None = None, *,
                   data: str | None = "digits") -> list[dict[str, Any]]:
    """Every finished classifier run's prediction and class probabilities for `image`.

    `data` picks the runs' data set (default digits, what a sketch pad draws); None takes
    every image classifier (each run resizes the picture to its own data's size)."""
    from ..services.loading import load_for_sampling
    from ..core.runs import RunFolder
    root = runs_dir_from_env(runs_dir)
    answers = []
    for row in reversed(list_runs(root)):                     # oldest first
        if row["status"] != "done" or (data is not None and row["data"] != data):
            continue
        try:
            entry = get_entry(row["pipeline"])
        except StudioError:
            continue                                          # a run of a removed pipeline
        if entry.kind == "classifier":
            pipe = load_for_sampling(root / row["id"], device="cpu")
            proba = pipe.predict_proba(image_for(image, pipe.info))[0]
            answers.append(_answer(row["id"], row["pipeline"], row["data"], proba,
                                   list(pipe.info["class_names"])))
        elif entry.trains == "fit" and row["data"] == "digits":
            from ..classic.fit import refit
            _, fitted, table = refit(RunFolder(root / row["id"]))
            pixels = digit_like(image, 8).reshape(1, 64).astype(np.float64) * 16.0
            proba = fitted.predict_proba(pixels)[0]
            answers.append(_answer(row["id"], row["pipeline"], row["data"], proba,
                                   list(table.class_names)))
    return answers


def format_table(answers: list[dict[str, Any]], top: int = 3) -> str:
    """A plain-text table: run, pipeline, prediction, the top classes with probabilities."""
    if not answers:
        return "no finished classifier runs match this image (train one: studio train resnet --data digits)"
    rows = [("run", "pipeline", "prediction", f"top {top}")]
    for a in answers:
        best = sorted(a["probabilities"].items(), key=lambda kv: -kv[1])[:top]
        rows.append((a["run"], a["pipeline"], a["prediction"],
                     "  ".join(f"{k}:{v:.2f}" for k, v in best)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
