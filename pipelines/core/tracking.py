"""Experiment trackers (`--report-to tensorboard`): a run's metrics and sample grids also go
where people already watch training, through Accelerate's tracker API.

    Accelerator(log_with=..., project_dir=<run folder>)   the trainer makes it so (accelerator_args)
    start(tr)        after a resume's checkpoint is restored: open the tracker, the options as
                     hyperparameters
    log(tr, record)  every log line's numbers, at its step
    log_grid(tr, path)   every sample grid the run saves, as one image
    finish(tr)       close the files

TensorBoard writes into the run folder's `tensorboard/`, so `tensorboard --logdir checkpoints`
shows every run (each as `<run id>/tensorboard`). A resumed run opens its writer with
`purge_step` just after the checkpoint's step: TensorBoard then drops what the interrupted
process logged after it, as the studio drops those lines of metrics.jsonl, so no curve doubles back.
metrics.jsonl stays the studio's own record; a tracker is a copy for other tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer

TRACKERS = ("none", "tensorboard")
FOLDER = "tensorboard"      # inside the run folder


def accelerator_args(report_to: str, run_path) -> dict[str, Any]:
    """What the Accelerator needs to hold the run's tracker (nothing for `none`)."""
    if report_to == "none":
        return {}
    return {"log_with": [report_to], "project_dir": str(run_path)}


def start(tr: Trainer) -> None:
    if tr.tc.report_to == "none":
        return
    options = {**{f"config/{k}": v for k, v in tr.info["config"].items()},
               **{f"trainer/{k}": v for k, v in tr.info["trainer"].items()},
               "pipeline": tr.info["pipeline"], "data": tr.info["data"]}
    # hyperparameters must be numbers, strings or booleans (a list is shown as its text)
    hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
               for k, v in options.items()}
    # purge_step: TensorBoard hides what earlier writers logged at this step or later; what
    # was logged up to the checkpoint (tr.step) stays, as in metrics.jsonl.
    tr.accelerator.init_trackers(FOLDER, config=hparams,
                                 init_kwargs={"tensorboard": {"purge_step": tr.step + 1}})


def log(tr: Trainer, record: dict[str, Any]) -> None:
    """One log line's numbers (the step and wall time are the tracker's own axes)."""
    if tr.tc.report_to != "none":
        values = {k: v for k, v in record.items() if k not in ("step", "time")
                  and isinstance(v, (int, float)) and not isinstance(v, bool)}
        tr.accelerator.log(values, step=tr.step)


def log_grid(tr: Trainer, path) -> None:
    """The sample grid the run just saved (samples/step_N.png), as the image `samples` at
    this step."""
    if tr.tc.report_to == "none":
        return
    from PIL import Image
    with Image.open(path) as picture:
        grid = np.asarray(picture.convert("RGB"))                         # (H, W, 3)
    tr.accelerator.get_tracker(tr.tc.report_to).log_images(
        {"samples": grid[None]}, step=tr.step, dataformats="NHWC")


def finish(tr: Trainer) -> None:
    if tr.tc.report_to != "none":
        tr.accelerator.end_training()
