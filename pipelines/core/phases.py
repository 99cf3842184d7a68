"""Training phases, owned by the trainer: the parts of a run that train different things.

    phases = [Phase("autoencoder", 1500, step="autoencoder_step"), Phase("diffusion")]

A family declares them (`Pipeline.phases(config)`, a classmethod: the dry run reads them
without building anything); by default a run is one phase, "training", whose steps call
`train_step`. Each step of a phase calls the pipeline method the phase names, with the batch
and the StepContext, so a family's step functions stay one per phase instead of an `if` on the
step number inside one. Phases are laid end to end; a phase of `steps=None` takes the rest of
the run (at most one, the last). Which phase a step belongs to depends on the step number
alone, so a run resumed across a boundary continues exactly.

The trainer writes the current phase into run.json (`phase`), the live view shows it and its
own ETA, and `--dry-run` times every phase (pipelines/services/dryrun.py). A learning-rate `Schedule`
that begins with a phase sets its `start` to `span.start` (pipelines/core/schedules.py).

This module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int | None = None      # None: the rest of the run
    step: str = "train_step"      # the pipeline method each step of this phase calls
    # Whether this phase's steps update the EMA of the pipeline's `ema_modules`: False for a
    # phase that trains something else (BERT's masked-LM pre-training before its classifier
    # is fine-tuned, ddpm-text's autoencoder before its UNet), so that the average, warm-up
    # included, begins with the first step that trains them instead of counting steps in
    # which they stood still.
    ema: bool = True


@dataclass(frozen=True)
class Span:
    """Where a phase lies in a run of `total` steps: steps start <= s < end."""
    phase: Phase
    index: int
    start: int
    end: int

    @property
    def steps(self) -> int:
        return self.end - self.start


def spans(phases: list[Phase], total: int) -> list[Span]:
    """The phases laid end to end over `total` steps; phases that get no step are left out
    (a run shorter than its first phase is that phase alone)."""
    if any(p.steps is None for p in phases[:-1]):
        raise ValueError("only the last phase may take the rest of the run (steps=None)")
    out, start = [], 0
    for i, phase in enumerate(phases):
        end = total if phase.steps is None else min(total, start + max(0, phase.steps))
        if end > start:
            out.append(Span(phase, i, start, end))
        start = end
    if start < total and out:   # the declared phases are shorter than the run: the last goes on
        last = out[-1]
        out[-1] = Span(last.phase, last.index, last.start, total)
    return out


def span_at(all_spans: list[Span], step: int) -> Span:
    """The span that step `step` (0-based) belongs to; past the end, the last."""
    for span in all_spans:
        if step < span.end:
            return span
    return all_spans[-1]
