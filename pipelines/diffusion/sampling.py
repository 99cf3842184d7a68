"""Diffusion sampling, shared by both pipelines as plain functions: any diffusers scheduler
driven by our own loop, so that class labels, text states, classifier-free guidance, SDEdit
starts and RePaint-style inpainting all fit one loop.

The functions take the pipeline as `model` and use what both pipelines define (`Denoiser`
below says what); the pipelines bind the ones they expose as methods (`sample =
sampling.sample`). A latent model runs the loop on latents and decodes at the end.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

import inspect
from typing import Protocol

import numpy as np
import torch

from ..core.base import Samples
from ..services.latent import slerp
from .config import STOCHASTIC


class Denoiser(Protocol):
    """What the loop asks of a pipeline (pixel.py and text_to_image.py define each)."""
    noise_scheduler: object     # the training DDPMScheduler; samplers are made from its config
    device: torch.device
    num_classes: int            # 0 for models without classes
    noise_shape: tuple[int, int, int]   # (C, H, W) of one image in the UNet's space
    SampleControls: type | None         # the pipeline's sampling defaults (its spec's)

    def predict(self, x, t, states): ...          # the UNet's raw output
    def encode_condition(self, cond): ...         # class ids pass; token ids -> text states
    def conditions(self, n, labels, prompt, negative_prompt, seeds): ...  # (cond, null, shown, _)
    def to_model_space(self, images): ...         # pixels in [-1, 1] -> what the UNet diffuses
    def to_pixels(self, x): ...                   # the inverse
    def model_mask(self, mask, size): ...         # a pixel mask (N, 1, H, W) -> the UNet's


def make_scheduler(name: str, base_config) -> object:
    """A fresh diffusers scheduler of kind `name` built from the training scheduler's config.
    The training config has clip_sample=False: a DDIM made from a DDPM config with clip_sample
    inherits it, clips the predicted clean image but not the noise estimate, and with guidance
    above 1 a class-conditional model falls to chance (DESIGN.md). "trailing" spacing makes the
    first step start from pure noise (t = T - 1) at any step count."""
    from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                           EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                           HeunDiscreteScheduler, UniPCMultistepScheduler)
    kinds = {"ddpm": (DDPMScheduler, {}), "ddim": (DDIMScheduler, {}),
             "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++",
                                                     "solver_order": 2}),
             "euler": (EulerDiscreteScheduler, {}),
             "euler-ancestral": (EulerAncestralDiscreteScheduler, {}),
             "heun": (HeunDiscreteScheduler, {}), "unipc": (UniPCMultistepScheduler, {})}
    cls, extra = kinds[name]
    return cls.from_config(base_config, clip_sample=False, timestep_spacing="trailing", **extra)


def to_unit(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] tensors -> [0, 1] float32 arrays, as Samples and ToolResults hold them."""
    return ((x.float() + 1) / 2).clamp(0, 1).cpu().numpy()


# --- guidance ----------------------------------------------------------------------------------
def guided(model: Denoiser, x, t, states, null_states, scale: float) -> torch.Tensor:
    """Classifier-free guidance: u + scale * (c - u), both from one doubled batch. Scale 1
    is the conditional prediction itself, so its second pass is skipped."""
    if null_states is None or scale == 1:
        return model.predict(x, t, states)
    if scale == 0:
        return model.predict(x, t, null_states)
    return cfg(model, x, t, states, null_states, scale)


def cfg(model: Denoiser, x, t, states, null_states, scale: float) -> torch.Tensor:
    both = model.predict(torch.cat([x, x]), t, torch.cat([null_states, states]))
    uncond, cond = both.chunk(2)
    return uncond + scale * (cond - uncond)


# --- the loop ----------------------------------------------------------------------------------
def noise_for(model: Denoiser, seeds: list[int]) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Image i's starting noise comes from its own generator seeded seeds[i], which then
    draws that image's later noise too: an image repeats alone, whatever the batch."""
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    return torch.stack([torch.randn(model.noise_shape, generator=g) for g in gens]), gens


def evaluation_controls(controls: dict, defaults: type) -> dict:
    """The sampling controls an evaluation draws with: the pipeline's defaults (`defaults`,
    its SampleControls class), changed by `controls`, without prompts (the evaluation picks
    its own)."""
    from ..core.config import to_dict
    out = {**to_dict(defaults()), **controls}
    out.pop("prompt"), out.pop("negative_prompt")
    return out


def with_defaults(model: Denoiser, controls: dict) -> dict:
    """`controls` over the pipeline's own sampling defaults (its SampleControls: ddpm-class
    guides at 1.1, not run_controls' 3.0), so a caller that names none, like the trainer's
    periodic grids, draws as the page and `studio sample` do. Prompts are arguments of their
    own and are left out."""
    from ..core.config import to_dict
    defaults = to_dict(model.SampleControls()) if model.SampleControls else {}
    merged = {**defaults, **controls}
    merged.pop("prompt", None), merged.pop("negative_prompt", None)
    return merged


def run_controls(scheduler: str = "dpm++", steps: int = 25, guidance: float = 3.0,
                 eta: float = 0.0, **_) -> dict:
    """The controls the loop reads, from any set of sampling controls."""
    return {"scheduler": scheduler, "steps": steps, "guidance": guidance, "eta": eta}


@torch.no_grad()
def denoise(model: Denoiser, noise: torch.Tensor, gens, cond, null, *, scheduler: str,
            steps: int, guidance: float, eta: float, strength: float = 1.0,
            init: torch.Tensor | None = None, mask: torch.Tensor | None = None,
            every: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The sampling loop. noise (N, C, H, W); init (N, C, H, W) in [-1, 1] with strength < 1
    starts from init noised to that level (SDEdit); with mask (N, 1, H, W), 1 = repaint,
    the known region is replaced by init noised to the current level before every step
    (RePaint) and pasted exactly at the end. Returns the images in [-1, 1] and, every
    `every` steps, x_t. A latent model does all of it on latents (init encoded, the mask
    widened to whole latent cells) and decodes at the end, before the exact pixel paste."""
    device = model.device
    pixel_init, pixel_mask = init, mask
    if init is not None:
        init = model.to_model_space(init)
    if mask is not None:
        mask = model.model_mask(mask, init.shape[-1])
    sched = make_scheduler(scheduler, model.noise_scheduler.config)
    sched.set_timesteps(steps, device=device)
    start = 0
    if init is not None and strength < 1:
        start = (steps - int(round(steps * strength))) * sched.order
        if start >= len(sched.timesteps):
            return pixel_init.clone(), []
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(start)
    timesteps = sched.timesteps[start:]
    noise, n = noise.to(device), len(noise)
    if init is not None and start > 0:
        x = sched.add_noise(init, noise, timesteps[:1].repeat(n))
    else:
        x = noise * sched.init_noise_sigma
    states = model.encode_condition(cond)
    null_states = model.encode_condition(null) if null is not None and guidance != 1 else None
    extra = {"generator": gens} if "generator" in inspect.signature(sched.step).parameters else {}
    if scheduler == "ddim":
        extra["eta"] = eta
    frames = []
    for i, t in enumerate(timesteps):
        if mask is not None:
            fresh = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
            known = sched.add_noise(init, fresh.to(device), t.reshape(1).repeat(n))
            x = mask * x + (1 - mask) * known
        out = guided(model, sched.scale_model_input(x, t), t, states, null_states, guidance)
        x = sched.step(out, t, x, **extra).prev_sample
        if every and ((i + 1) % every == 0 or i == len(timesteps) - 1):
            frames.append(model.to_pixels(x))
    x = model.to_pixels(x)
    if mask is not None:
        x = pixel_mask * x + (1 - pixel_mask) * pixel_init
    return x, frames


def draw(model: Denoiser, seeds: list[int], cond, null, **controls) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] for the given seeds and conditions, 128 at a time."""
    images = []
    for i in range(0, len(seeds), 128):                      # bounded memory at any n
        noise, gens = noise_for(model, seeds[i:i + 128])
        part = (lambda v: None if v is None else v[i:i + 128])
        x, _ = denoise(model, noise, gens, part(cond), part(null), **run_controls(**controls))
        images.append(to_unit(x))
    return np.concatenate(images)


# --- what the page and the CLI call ------------------------------------------------------------
def sample(model: Denoiser, n: int, seed: int, labels=None, prompt: str = "",
           negative_prompt: str = "", **controls) -> Samples:
    """n images from seeds seed, seed + 1, ...: the class(es) asked for, or the prompt."""
    seeds = [seed + i for i in range(n)]
    cond, null, shown, _ = model.conditions(n, labels, prompt, negative_prompt, seeds)
    return Samples(images=draw(model, seeds, cond, null, **with_defaults(model, controls)),
                   labels=shown)


def interpolate(model: Denoiser, seed_a: int, seed_b: int, frames: int, labels=None,
                prompt: str = "", negative_prompt: str = "", **controls) -> Samples:
    """Slerp between the two seeds' starting noise, then a deterministic sampler (a
    stochastic one is replaced by DDIM with eta 0), so the frames change smoothly; one class
    (or seed_a's prompt) throughout the walk."""
    run = run_controls(**with_defaults(model, controls))
    if run["scheduler"] in STOCHASTIC or (run["scheduler"] == "ddim" and run["eta"] > 0):
        run.update(scheduler="ddim", eta=0.0)
    if labels is None and model.num_classes:
        labels = 0
    noise, _ = noise_for(model, [seed_a, seed_b])
    shape = noise.shape[1:]
    path = slerp(noise[0].flatten(), noise[1].flatten(), torch.linspace(0, 1, frames))
    cond, null, shown, _ = model.conditions(frames, labels, prompt, negative_prompt,
                                            [seed_a] * frames)
    x, _ = denoise(model, path.reshape(frames, *shape), None, cond, null, **run)
    return Samples(images=to_unit(x), labels=shown)
