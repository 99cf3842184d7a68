"""Diffusion sampling: any diffusers scheduler driven by our own loop, so that class labels,
text states, classifier-free guidance, SDEdit starts and RePaint-style inpainting all fit one
loop; a latent model runs it on latents and decodes at the end.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ..core.base import Samples
from ..core.errors import StudioError
from ..services.latent import requested_labels, slerp
from ..data import shapes as grammar
from . import text as T
from .autoencoder import DOWNSCALE, latent_mask
from .config import STOCHASTIC


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


class DiffusionSampling:
    """The sampling loop and what drives it; mixed into Diffusion (which gives predict,
    encode_condition, null_condition, to_model_space, to_pixels, autoencoder)."""

    def guided(self, x, t, states, null_states, scale: float) -> torch.Tensor:
        """Classifier-free guidance: u + scale * (c - u), both from one doubled batch. Scale 1
        is the conditional prediction itself, so its second pass is skipped."""
        if null_states is None or scale == 1:
            return self.predict(x, t, states)
        if scale == 0:
            return self.predict(x, t, null_states)
        return self.cfg(x, t, states, null_states, scale)

    def cfg(self, x, t, states, null_states, scale: float) -> torch.Tensor:
        both = self.predict(torch.cat([x, x]), t, torch.cat([null_states, states]))
        uncond, cond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    def conditions(self, n: int, labels=None, prompt: str = "", negative_prompt: str = "",
                   seeds: list[int] | None = None):
        """(cond, null, labels, prompts) for n images: cond and null as the UNet reads them
        (class ids or token ids), labels the class (or prompted shape) per image."""
        device = self.device
        if self.config.conditioning == "text":
            if labels is not None:
                raise StudioError("this model is conditioned on text: give a prompt, not a class")
            prompts = [prompt] * n if prompt else [self.seeded_prompt(s) for s in seeds]
            ids = torch.from_numpy(T.encode(self.tokenizer, prompts)).to(device)
            null = torch.from_numpy(T.encode(self.tokenizer, [negative_prompt] * n)).to(device)
            shapes = np.array([grammar.caption_attributes(p)[1] for p in prompts])
            return ids, null, shapes, prompts
        if prompt or negative_prompt:
            raise StudioError(f"{self.name} is not text-conditional; leave out the prompt")
        y = requested_labels(n, labels, self.num_classes, names=self.info.get("class_names", []))
        if y is None:
            return None, None, None, None
        return y.to(device), self.null_condition(n, device), y.numpy(), None

    def noise_for(self, seeds: list[int]) -> tuple[torch.Tensor, list[torch.Generator]]:
        """Image i's starting noise comes from its own generator seeded seeds[i], which then
        draws that image's later noise too: an image repeats alone, whatever the batch."""
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        shape = (self.info["channels"], self.info["image_size"], self.info["image_size"])
        if self.config.latent_channels:
            side = self.info["image_size"] // DOWNSCALE
            shape = (self.config.latent_channels, side, side)
        return torch.stack([torch.randn(shape, generator=g) for g in gens]), gens

    @torch.no_grad()
    def denoise(self, noise: torch.Tensor, gens, cond, null, *, scheduler: str, steps: int,
                guidance: float, eta: float, strength: float = 1.0,
                init: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                every: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The sampling loop. noise (N, C, H, W); init (N, C, H, W) in [-1, 1] with strength < 1
        starts from init noised to that level (SDEdit); with mask (N, 1, H, W), 1 = repaint,
        the known region is replaced by init noised to the current level before every step
        (RePaint) and pasted exactly at the end. Returns the images in [-1, 1] and, every
        `every` steps, x_t. A latent model does all of it on latents (init encoded, the mask
        widened to whole latent cells) and decodes at the end, before the exact pixel paste."""
        self.require_diffusion_model()
        device = self.device
        pixel_init, pixel_mask = init, mask
        if init is not None:
            init = self.to_model_space(init)
        if mask is not None and self.autoencoder is not None:
            mask = latent_mask(mask, init.shape[-1])
        sched = make_scheduler(scheduler, self.noise_scheduler.config)
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
        states = self.encode_condition(cond)
        null_states = self.encode_condition(null) if null is not None and guidance != 1 else None
        extra = {"generator": gens} if "generator" in inspect.signature(sched.step).parameters else {}
        if scheduler == "ddim":
            extra["eta"] = eta
        frames = []
        for i, t in enumerate(timesteps):
            if mask is not None:
                fresh = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
                known = sched.add_noise(init, fresh.to(device), t.reshape(1).repeat(n))
                x = mask * x + (1 - mask) * known
            out = self.guided(sched.scale_model_input(x, t), t, states, null_states, guidance)
            x = sched.step(out, t, x, **extra).prev_sample
            if every and ((i + 1) % every == 0 or i == len(timesteps) - 1):
                frames.append(self.to_pixels(x))
        x = self.to_pixels(x)
        if mask is not None:
            x = pixel_mask * x + (1 - pixel_mask) * pixel_init
        return x, frames

    def run_controls(self, scheduler: str = "dpm++", steps: int = 25, guidance: float = 3.0,
                     eta: float = 0.0, **_) -> dict:
        return {"scheduler": scheduler, "steps": steps, "guidance": guidance, "eta": eta}

    def draw(self, seeds: list[int], cond, null, **controls) -> np.ndarray:
        """Images (N, C, H, W) in [0, 1] for the given seeds and conditions, 128 at a time."""
        images = []
        for i in range(0, len(seeds), 128):                      # bounded memory at any n
            noise, gens = self.noise_for(seeds[i:i + 128])
            part = (lambda v: None if v is None else v[i:i + 128])
            x, _ = self.denoise(noise, gens, part(cond), part(null), **self.run_controls(**controls))
            images.append(((x.float() + 1) / 2).clamp(0, 1).cpu().numpy())
        return np.concatenate(images)

    def sample(self, n: int, seed: int, labels=None, prompt: str = "",
               negative_prompt: str = "", **controls) -> Samples:
        if self.autoencoder is not None and not self.autoencoder.ready:
            return self.reconstructions(n)
        seeds = [seed + i for i in range(n)]
        cond, null, shown, _ = self.conditions(n, labels, prompt, negative_prompt, seeds)
        return Samples(images=self.draw(seeds, cond, null, **controls), labels=shown)

    def require_diffusion_model(self) -> None:
        if self.autoencoder is not None and not self.autoencoder.ready:
            raise StudioError("this run stopped while its autoencoder was still training (the "
                              f"first {self.config.autoencoder_steps} steps), so it has no "
                              "diffusion model yet: resume it to train one")

    def reconstructions(self, n: int) -> Samples:
        """What a latent model's grids show while its autoencoder trains: validation images,
        each followed by its reconstruction."""
        if self.preview_images is None:
            self.require_diffusion_model()
        x = self.preview_images[: max(1, n // 2)].to(self.device) * 2 - 1
        rebuilt = self.autoencoder.reconstruct(x)
        pairs = torch.stack([x, rebuilt], 1).flatten(0, 1)               # original, rebuilt, ...
        # labels 0 (picture) and 1 (rebuilt) cycle, so the grid's columns alternate the two
        return Samples(images=((pairs.float() + 1) / 2).clamp(0, 1).cpu().numpy(),
                       labels=np.arange(len(pairs)) % 2)

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels=None, prompt: str = "",
                    negative_prompt: str = "", **controls) -> Samples:
        """Slerp between the two seeds' starting noise, then a deterministic sampler (a
        stochastic one is replaced by DDIM with eta 0), so the frames change smoothly."""
        run = self.run_controls(**controls)
        if run["scheduler"] in STOCHASTIC or (run["scheduler"] == "ddim" and run["eta"] > 0):
            run.update(scheduler="ddim", eta=0.0)
        if labels is None and self.num_classes:
            labels = 0                                            # one class throughout the walk
        noise, _ = self.noise_for([seed_a, seed_b])
        shape = noise.shape[1:]
        path = slerp(noise[0].flatten(), noise[1].flatten(), torch.linspace(0, 1, frames))
        if self.config.conditioning == "text" and not prompt:
            prompt = self.seeded_prompt(seed_a)
        cond, null, shown, _ = self.conditions(frames, labels, prompt, negative_prompt,
                                               [seed_a] * frames)
        x, _ = self.denoise(path.reshape(frames, *shape), None, cond, null, **run)
        return Samples(images=((x.float() + 1) / 2).clamp(0, 1).cpu().numpy(), labels=shown)
