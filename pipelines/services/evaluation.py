"""Judge a run's samples after (or during) training, and record the numbers in its folder.

`evaluate_run` is what `studio eval <run>` calls: it loads the run's sampling weights (latest,
or a checkpoint step), reloads the run's data set the way the trainer did, and runs the
family's own `evaluate` (for image families, `metrics.judge_samples`: Fréchet distance, KID,
precision and recall next to their floors; conditional accuracy for conditional
models).
The judge is cached per data set in the runs folder's `.judges/`, shared by every run on it.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.base import data_info
from ..data import ImageData, TextData
from ..core.errors import StudioError
from .loading import load_for_sampling
from ..metrics.judge import data_fingerprint
from ..core.runs import RunFolder
from ..core.run_setup import load_data_for

def evaluate_run(run_ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None, *,
                 step: int | None = None, data: str | None = None) -> dict[str, Any]:
    """Judge a run at its latest weights or checkpoint `step` with its family's own evaluation
    (the same numbers as at the end of training: e.g. a GAN's 500 samples, InfoGAN's categories
    matched to classes first); write them to run.json (`eval`, `eval_step`, `eval_judge`) and
    as an `eval/<key>` row of metrics.jsonl. Returns the numbers."""
    import torch
    run = RunFolder.resolve(run_ref, runs_dir)
    spec = run.info().get("data")
    if not isinstance(spec, str) or not spec:
        raise StudioError(f"run {run.id}'s run.json names no data set; the file is damaged")
    pipe = load_for_sampling(run.path, step=step)
    if getattr(pipe, "data_kind", "image") == "text":
        return _evaluate_text(run, pipe, spec, data)
    if data is not None:
        raise StudioError("--data is for text models: an image model is judged on its own "
                          "data set")
    data = load_data_for(type(pipe), pipe.config, spec)
    if not isinstance(data, ImageData):
        raise StudioError(f"run {run.id} is a {data.kind} model; `studio eval` judges images")
    _check_same_shape(run, pipe.info, data_info(data))
    with torch.no_grad():
        results = pipe.evaluate(data, run.path.parent / ".judges")
    if not results:
        raise StudioError(f"{pipe.name} has no evaluation")
    run.update_info(eval=results, eval_step=pipe.step, eval_judge=data_fingerprint(data)[:16])
    run.log_metrics({"step": pipe.step, **{f"eval/{key}": value for key, value in results.items()}})
    return results


def _evaluate_text(run: RunFolder, pipe: Any, spec: str, other: str | None) -> dict[str, Any]:
    """A text model's loss, perplexity and bits per character: on its run's validation split
    (recorded in run.json and metrics.jsonl like the end-of-training numbers), or on all of
    the text `other` names (text:FILE or shakespeare; recorded under run.json's eval_other)."""
    import torch
    data = load_data_for(type(pipe), pipe.config, other or spec)
    if other:  # all of the given text is scored, not only its last 10%
        data = TextData(data.name, train_text="", val_text=data.train_text + data.val_text)
    with torch.no_grad():
        results = pipe.evaluate(data, run.path.parent / ".judges")
    if other:
        scored = dict(run.info().get("eval_other") or {})
        scored[other] = {**results, "step": pipe.step}
        run.update_info(eval_other=scored)
    else:
        run.update_info(eval=results, eval_step=pipe.step)
        run.log_metrics({"step": pipe.step, **{f"eval/{k}": v for k, v in results.items()}})
    return results


def _check_same_shape(run: RunFolder, trained: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse a data set that no longer has the shape the model was trained on (a user's folder
    changed since): its samples could not be compared with it."""
    keys = ("channels", "image_size", "num_classes")
    if any(trained.get(k) != now.get(k) for k in keys):
        was = ", ".join(f"{k} {trained.get(k)}" for k in keys)
        is_now = ", ".join(f"{k} {now.get(k)}" for k in keys)
        raise StudioError(f"run {run.id}'s data set has changed since training (it had {was}; "
                          f"it now has {is_now}); its samples cannot be judged against it")
