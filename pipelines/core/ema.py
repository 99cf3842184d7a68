"""The trainer's exponential moving average of a module's weights.

Written here rather than imported, and why: diffusers' `EMAModel` (diffusers/training_utils.py)
is the field's, and this is its arithmetic and its state, line for line, for the one way the
trainer uses it (warm-up on, no foreach, no DeepSpeed). But importing
`diffusers.training_utils` imports diffusers' UNets, its pipelines and transformers with it:
about 4 s of a training process's start (a 2-core CPU beside two other jobs, session 30),
paid by every GAN, autoencoder and classifier run that never touches diffusers. Its `step`
also asks, for every parameter at every step, whether DeepSpeed ZeRO-3 is on.
tests/test_ema.py checks that this class and `EMAModel` give bit-identical weights over a run
and read each other's state, so the checkpoints written with `EMAModel` (ema.json,
ema.safetensors) resume exactly.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch


class EMA:
    """Shadow copies of `parameters`, each update moved towards the live weights by
    1 - decay, where decay = min(decay, 1 - (1 + updates / inv_gamma)^-power) after the first
    update (`use_ema_warmup`; the first update copies the weights)."""

    def __init__(self, parameters: Iterable[torch.nn.Parameter], decay: float = 0.9999,
                 power: float = 2 / 3, inv_gamma: float = 1.0, min_decay: float = 0.0):
        self.shadow_params = [p.clone().detach() for p in parameters]
        self.decay, self.power, self.inv_gamma, self.min_decay = decay, power, inv_gamma, min_decay
        self.update_after_step = 0         # EMAModel's; the trainer never delays the EMA
        self.use_ema_warmup = True
        self.optimization_step = 0
        self.temp_stored_params: list[torch.Tensor] | None = None

    def get_decay(self, optimization_step: int) -> float:
        step = max(0, optimization_step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if self.use_ema_warmup:
            value = 1 - (1 + step / self.inv_gamma) ** -self.power
        else:                                        # EMAModel's other schedule, for its state
            value = (1 + step) / (10 + step)
        return max(min(value, self.decay), self.min_decay)

    @torch.no_grad()
    def step(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        self.optimization_step += 1
        one_minus_decay = 1 - self.get_decay(self.optimization_step)
        for shadow, param in zip(self.shadow_params, parameters):
            if param.requires_grad:
                shadow.sub_(one_minus_decay * (shadow - param))
            else:
                shadow.copy_(param)

    def copy_to(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        for shadow, param in zip(self.shadow_params, parameters):
            param.data.copy_(shadow.to(param.device).data)

    def store(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Keep the live weights (on the CPU) for `restore` after sampling with the EMA's."""
        self.temp_stored_params = [p.detach().cpu().clone() for p in parameters]

    def restore(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        if self.temp_stored_params is None:
            raise RuntimeError("EMA.restore without a store() first")
        for kept, param in zip(self.temp_stored_params, parameters):
            param.data.copy_(kept.data)
        self.temp_stored_params = None

    def state_dict(self) -> dict:
        """EMAModel's state: its counters and settings, and the shadow tensors (references)."""
        return {"decay": self.decay, "min_decay": self.min_decay,
                "optimization_step": self.optimization_step,
                "update_after_step": self.update_after_step,
                "use_ema_warmup": self.use_ema_warmup, "inv_gamma": self.inv_gamma,
                "power": self.power, "shadow_params": self.shadow_params}

    def load_state_dict(self, state: dict) -> None:
        """EMAModel's state (or this class's): every key optional, checked as EMAModel does."""
        state = copy.deepcopy(state)
        checks = {"decay": (float, int), "min_decay": float, "optimization_step": int,
                  "update_after_step": int, "use_ema_warmup": bool, "inv_gamma": (float, int),
                  "power": (float, int)}
        for key, kind in checks.items():
            value = state.get(key, getattr(self, key))
            if not isinstance(value, kind) or (key == "decay" and not 0.0 <= value <= 1.0):
                raise ValueError(f"the EMA state's {key} is invalid: {value!r}")
            setattr(self, key, value)
        shadows = state.get("shadow_params")
        if shadows is not None:
            if not isinstance(shadows, list) or not all(isinstance(p, torch.Tensor)
                                                        for p in shadows):
                raise ValueError("the EMA state's shadow_params must be a list of tensors")
            self.shadow_params = shadows
