"""What the trainer says about its run, out of the loop: a log line every N steps and the
last word at its end. Plain functions of the `Trainer` (as in trainer_state.py), so the class
keeps the loop and what it owns.

    log_window(tr, ...)     the window's means over every process, validation, the best
                            weights, the phase under way and its ETA: metrics.jsonl, run.json
                            and the `log` event. A non-finite mean stops the run here.
    finish(tr, ...)         the final evaluation, the status and message, the model card
    failure_message(tr, e)  what a run that failed says
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING, Any

import torch

from . import hardware as hw
from . import tracking, trainer_state
from .base import Pipeline
from .phases import Span, span_at
from ..services.model_card import write_model_card

if TYPE_CHECKING:
    from .trainer import Trainer


class TrainingFailed(Exception):
    """The run could not go on (e.g. a non-finite loss); its message says why and what to try."""


def log_window(tr: Trainer, window: dict[str, list], steps: int, seconds: float) -> None:
    """Log the mean of each value over the steps since the last log line that reported it
    (a WGAN's generator loss comes every n_critic steps); a non-finite mean stops the run
    before anything is saved from it."""
    means = hw.window_means(tr.accelerator, window)
    bad = [k for k, v in means.items() if not math.isfinite(v)]
    if bad:
        kept = tr.run.checkpoint_steps()
        raise TrainingFailed(
            f"{', '.join(bad)} became non-finite near step {tr.step}; the last good "
            f"checkpoint ({f'step {kept[-1]}' if kept else 'none yet'}) is kept. Try a "
            f"lower learning rate, grad_clip, or fp32")
    speed = steps / max(seconds, 1e-9)
    # The ETA of the phase under way, at its own speed; later phases' steps cost
    # differently (a latent model's UNet steps are slower than its autoencoder's), so they
    # are named in run.json's `phase`, not guessed at this speed.
    span = span_at(tr.spans, max(tr.step - 1, 0))
    eta = (span.end - tr.step) / speed
    # The family's own alarms (mode collapse, posterior collapse): in the metrics line and
    # the run's status line while they last.
    if tr.accelerator.is_main_process:
        means.update(tr.validate())
        track_best(tr, means)
    warning = "; ".join(tr.pipeline.log_warnings(means, tr.step))
    peak = tr._peak_memory_mb()
    if tr.accelerator.scaler is not None:
        means["skipped_steps"] = float(tr.skipped_steps)
    if tr.accelerator.is_main_process:
        record = {"step": tr.step, "time": round(tr.elapsed, 3), **means}
        tr.run.log_metrics({**record, "warning": warning} if warning else record)
        tracking.log(tr, record)
        tr.run.update_info(step=tr.step, steps_per_sec=round(speed, 3), warning=warning,
                           eta_seconds=round(eta, 1), elapsed_seconds=round(tr.elapsed, 1),
                           peak_memory_mb=round(peak, 1), phase=phase_info(tr.spans, span))
    tr.emit("log", metrics=means, steps_per_sec=speed, eta=eta, warning=warning)


def phase_info(spans: list[Span], span: Span) -> dict[str, Any]:
    """run.json's `phase`: the phase under way and the ones after it (the live view)."""
    return {"name": span.phase.name, "number": span.index + 1, "of": len(spans),
            "start": span.start, "end": span.end,
            "after": [{"name": s.phase.name, "steps": s.steps}
                      for s in spans if s.start >= span.end]}


def track_best(tr: Trainer, means: dict[str, float]) -> None:
    """Main process, after validation: keep this step's sampling weights if they are the
    best so far, and note when the early-stopping patience is used up."""
    if tr.best is None or not tr.best.update(means, tr.step):
        tr.early_stopped = bool(tr.best and tr.best.should_stop)
        return
    if type(tr.pipeline).on_new_best is not Pipeline.on_new_best:
        with torch.no_grad(), trainer_state.sampling_weights(tr):
            tr.pipeline.on_new_best(tr.data)
    trainer_state.save_best_weights(tr)
    tr.run.update_info(best=tr.best.summary())


def data_note(info: dict[str, Any]) -> str:
    """What the run's messages keep saying about its data (e.g. files it could not read)."""
    skipped = info.get("skipped_files") or 0
    return f"{skipped} unreadable files were skipped" if skipped else ""


def failure_message(tr: Trainer, e: BaseException) -> str:
    """What a run that failed says: the error, and what is kept and how to go on."""
    kept = tr.run.checkpoint_steps()
    where = f"step {kept[-1]}" if kept else "none yet: a resume starts from step 0"
    disk = (" (is the disk full, or a file size limit reached?)"
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            else "")
    return (f"{type(e).__name__} at step {tr.step}: {e}{disk}. The last complete "
            f"checkpoint is kept ({where}); `studio resume {tr.run.id}` continues")


def finish(tr: Trainer, status: str, signal_name: str | None) -> str:
    """The end of a run that was not a failure (done, early-stopped or stopped): the final
    evaluation where asked for, run.json's status and message, the model card."""
    message = ""
    if status == "stopped":
        why = f"signal {signal_name}" if signal_name else "a stop request"
        message = f"stopped at step {tr.step} by {why}; `studio resume {tr.run.id}` continues"
    elif tr.early_stopped:
        message = tr.best.stop_message(tr.step)
    message = "; ".join(m for m in (message, data_note(tr.info)) if m)
    if status == "done" and tr.accelerator.is_main_process and tr.tc.final_eval:
        with trainer_state.sampling_weights(tr), trainer_state.best_weights(tr), torch.no_grad():
            results = tr.pipeline.evaluate(tr.data, tr.run.path.parent / ".judges")
        if results and tr.best is not None and tr.best.state.step >= 0:
            results["weights_step"] = tr.best.state.step  # judged: the best weights
        if results:
            record = {"step": tr.step, "time": round(tr.elapsed, 3),
                      **{f"eval/{k}": v for k, v in results.items()}}
            tr.run.log_metrics(record)
            tracking.log(tr, record)
            tr.run.update_info(eval=results)
    tr.run.clear_stop()
    if tr.accelerator.is_main_process:
        tr.run.update_info(status=status, step=tr.step, message=message,
                           elapsed_seconds=round(tr.elapsed, 1), eta_seconds=0)
        write_model_card(tr.run)
    tracking.finish(tr)
    tr.emit("end", status=status, message=message)
    return status
