"""How a family takes an optimiser step: `StepContext`, handed to every step method.

    logs["grad_norm"] = ctx.backward_step(loss, "g", "generator")
    norm = ctx.accumulate_step(micro_batch_losses, "model", "model")   # gradient accumulation

The one way to step an optimiser in the studio: zero the gradients, backward through
Accelerate (scaled under fp16), clip or just measure the gradient norm, step, and notice
when fp16's gradient scaler skipped the step (`skipped`; the trainer then drops that step's
overflowed numbers with `without_overflow` instead of calling them a divergence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator


@dataclass
class StepContext:
    """Handed to `train_step`: the one way a family takes an optimiser step."""
    accelerator: Accelerator
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float
    step: int = 0
    # Set when fp16's gradient scaler skipped an optimizer step of this training step (its
    # gradients overflowed: by design at the first steps, while the scale settles).
    skipped: bool = False

    def backward_step(self, loss: torch.Tensor, optimizer: str,
                      module: str | tuple[str, ...]) -> torch.Tensor:
        """zero_grad, backward, clip (or just measure) the gradient norm of `module` (one name
        or several, e.g. a generator and InfoGAN's Q head), step. Returns the norm.

        Gradients are zeroed first so that, e.g., a generator loss that flowed through the
        discriminator leaves nothing behind for the discriminator's own step."""
        return self.accumulate_step((loss,), optimizer, module)

    def accumulate_step(self, losses: Any, optimizer: str,
                        module: str | tuple[str, ...]) -> torch.Tensor:
        """Gradient accumulation: like `backward_step`, but backward runs on each loss of the
        iterable `losses` as it comes (a generator keeps one micro-batch's graph in memory at a
        time; scale each loss, e.g. by its share of the batch), then one clip and step."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        inputs = self._stepped_parameters(opt)
        for loss in losses:
            self.accelerator.backward(loss, inputs=inputs)
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        names = (module,) if isinstance(module, str) else module
        params = [p for name in names for p in self.modules[name].parameters()]
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        scaler = self.accelerator.scaler
        scale = scaler.get_scale() if scaler is not None else None
        opt.step()
        # The scaler backs off exactly when it found an overflow and skipped the step.
        # (Accelerate's `step_was_skipped` misses it for fused Adam, which skips inside its
        # kernel.)
        if scaler is not None and scaler.get_scale() < scale:
            self.skipped = True
        return norm.detach() if torch.is_tensor(norm) else torch.tensor(float(norm))

    def _stepped_parameters(self, opt: torch.optim.Optimizer) -> list[torch.Tensor] | None:
        """The parameters backward must reach: the stepped optimiser's own. A generator's
        loss flows through the discriminator, whose weight gradients backward would compute
        and the next zero_grad throw away (about half of each of its convolutions' backward
        cost); naming the inputs lets autograd skip them, with the same gradients for the
        stepped ones. None (every leaf, as before) in a multi-process run: each DDP-wrapped
        module's reducer waits for all of its gradients once it has run forward."""
        if self.accelerator.num_processes > 1:
            return None
        return [p for group in opt.param_groups for p in group["params"] if p.requires_grad]


def without_overflow(logs: dict[str, Any]) -> dict[str, Any]:
    """The logs of a step fp16's gradient scaler skipped, less the overflowed numbers it
    produced (an infinite gradient norm): those are the scaler at work, not a divergence.
    Losses stay, so the NaN guard still stops a run whose losses go non-finite."""
    def overflowed(key: str, value: Any) -> bool:
        v = float(value) if not torch.is_tensor(value) else float(value.detach().float())
        return "loss" not in key and not math.isfinite(v)
    return {k: v for k, v in logs.items() if not overflowed(k, v)}
