"""Best-checkpoint keeping and early stopping, for every family that validates.

A family names the validation number that says "better" (`Pipeline.best_metric`, e.g.
("loss", "min") for a language model, ("accuracy", "max") for a classifier). At every log
step the trainer hands the logged means to `BestTracker.update`; when the number improves, the
sampling weights of that step are written to `best.safetensors` in the run folder, and what
samples, exports and evaluates a finished run uses them by default (the latest weights stay in
`model.safetensors` and every checkpoint in `state/` stays resumable). With a patience of N,
a run whose number has not improved for N validations in a row stops early.

Why: a long run keeps training after its validation loss bottoms out (a small text model at
nanoGPT's shape overfits from step ~600 of 2,000), and the last weights are then worse than
weights it already had. The tracker's state (best value and step, validations since) is saved
in each checkpoint, so a resumed run makes the same decisions as an uninterrupted one.

This module never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class BestState:
    value: float | None = None   # the best validation number so far (None: none yet)
    step: int = -1               # the step it was measured at
    since: int = 0               # validations without an improvement since then


class BestTracker:
    """Follows one validation number (`metric` as logged, e.g. "val/loss"), lower or higher
    being better (`mode` "min" / "max")."""

    def __init__(self, metric: str, mode: str, patience: int = 0,
                 state: dict[str, Any] | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, not {mode!r}")
        self.metric, self.mode, self.patience = metric, mode, patience
        self.state = BestState(**(state or {}))

    def update(self, means: dict[str, float], step: int) -> bool:
        """Record one validation; True when it is the best so far (save its weights). A step
        that did not measure the metric (e.g. a latent diffusion model's autoencoder phase)
        changes nothing."""
        value = means.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        best = self.state.value
        if best is None or (value < best if self.mode == "min" else value > best):
            self.state = BestState(value=float(value), step=step, since=0)
            return True
        self.state.since += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Patience used up: `patience` validations in a row without an improvement."""
        return self.patience > 0 and self.state.since >= self.patience

    def stop_message(self, step: int) -> str:
        s = self.state
        return (f"stopped early at step {step}: {self.metric} has not improved for "
                f"{s.since} validations since its best, {s.value:.4g} at step {s.step} "
                f"(early_stop_patience={self.patience}); sampling and export use the weights "
                f"of step {s.step}")

    def summary(self) -> dict[str, Any]:
        """What run.json says about it (the Runs tab and the model card read it)."""
        return {"metric": self.metric, "mode": self.mode, "value": self.state.value,
                "step": self.state.step}

    def to_json(self) -> dict[str, Any]:
        return asdict(self.state)
