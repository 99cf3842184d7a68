"""Learning-rate schedules, owned by the trainer: a family declares one `Schedule` per
optimiser (`Pipeline.schedules()`), and the trainer sets each optimiser's learning rate from it
before every step (pipelines/core/trainer.py, `apply_schedules`).

    Schedule(warmup_steps=100, decay="cosine", decay_steps=1500, floor=0.1)
    # linear warm-up from 0 over 100 steps, then a cosine from the peak down to 10% of it at
    # step 1,500, held there after

The peak is each parameter group's learning rate when the optimiser was made (kept in the
group as `initial_lr`, PyTorch's own name for it, so it is checkpointed with the group and a
resumed run follows the same curve). The factor is a function of the step alone: resume needs
no scheduler state. `start` lets a schedule begin with its phase (a latent diffusion model's
UNet trains after its autoencoder): before `start` the factor is 0; `end` lets it stop with its
phase (the autoencoder's optimiser is idle while the UNet trains): from `end` on it is 0 too,
so the logged learning rate of an optimiser that no longer steps reads 0, not its floor.

Why not torch's LRScheduler classes: their state is a step counter that must be checkpointed
and kept in step with the trainer's, and chaining a warm-up into a cosine takes three objects
(LinearLR, CosineAnnealingLR, SequentialLR); the families here need one formula of the step.

This module never imports torch: the page can show a family's schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DECAYS = ("constant", "linear", "cosine", "inverse")


@dataclass(frozen=True)
class Schedule:
    warmup_steps: int = 0      # linear warm-up from 0 to the peak over these steps
    decay: str = "constant"    # after the warm-up: constant, linear or cosine down to `floor`;
    #                            inverse: (1 + 10 p)^-0.75 of the peak, p = progress (Ganin &
    #                            Lempitsky 2015's annealing for DANN; `floor` unused)
    decay_steps: int = 0       # the step (from `start`) where the decay reaches `floor`;
    #                            0: no decay
    floor: float = 0.0         # the learning rate at the end of the decay, as a share of the peak
    start: int = 0             # the first step of the schedule's phase
    end: int | None = None     # the first step after its phase; None: it runs to the end

    def __post_init__(self):
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, not {self.decay!r}")

    def factor(self, step: int) -> float:
        """The share of the peak learning rate at `step` (the run's step, counted from 0)."""
        s = step - self.start
        if s < 0 or (self.end is not None and step >= self.end):
            return 0.0                                   # its phase has not begun, or is over
        if s < self.warmup_steps:
            return (s + 1) / self.warmup_steps
        if self.decay == "constant" or self.decay_steps <= 0:
            return 1.0
        progress = min(1.0, (s - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps))
        if self.decay == "inverse":
            return (1 + 10 * progress) ** -0.75
        if self.decay == "cosine":
            return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
        return self.floor + (1 - self.floor) * (1 - progress)
