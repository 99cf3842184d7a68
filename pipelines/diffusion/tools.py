"""The diffusion tools both pipelines offer (spec.TOOLS): img2img (SDEdit), inpaint
(RePaint-style) and denoise-steps (x_t every k steps), as plain functions over the shared
sampling loop (sampling.py). The pipelines bind them as their `tool_*` methods.

Images come in and go out (N, C, H, W) in [0, 1]; the loop works in [-1, 1].
"""

from __future__ import annotations

import torch

from ..core.base import ToolResult
from ..core.errors import StudioError
from .sampling import Denoiser, denoise, noise_for, run_controls, to_unit


def _conditions(model: Denoiser, n: int, label: int, prompt: str, negative_prompt: str,
                seed: int):
    labels = None if label < 0 or not model.num_classes else label
    return model.conditions(n, labels, prompt, negative_prompt, list(range(seed, seed + n)))


@torch.no_grad()
def img2img(model: Denoiser, ctx, strength: float, label: int, seed: int, prompt: str,
            negative_prompt: str, **controls) -> ToolResult:
    init = torch.from_numpy(ctx.images).to(model.device) * 2 - 1      # (N, C, H, W)
    n = len(init)
    cond, null, _, _ = _conditions(model, n, label, prompt, negative_prompt, seed)
    noise, gens = noise_for(model, list(range(seed, seed + n)))
    x, _ = denoise(model, noise, gens, cond, null, strength=strength, init=init,
                   **run_controls(**controls))
    pairs = torch.stack([init, x], 1).reshape(-1, *init.shape[1:])   # input, result, ...
    return ToolResult(images=to_unit(pairs), columns=2, text="columns: input | result")


@torch.no_grad()
def inpaint(model: Denoiser, ctx, label: int, seed: int, count: int, prompt: str,
            negative_prompt: str, **controls) -> ToolResult:
    if ctx.images is None or len(ctx.images) != 2:
        raise StudioError("inpaint needs two images: --input picture.png mask.png (white "
                          "in the mask = repaint)")
    picture = torch.from_numpy(ctx.images[:1]).to(model.device) * 2 - 1  # (1, C, H, W)
    mask = (torch.from_numpy(ctx.images[1:]).mean(1, keepdim=True) > 0.5).float()
    if not mask.any():
        raise StudioError("the mask has no white pixels: paint white where to repaint")
    mask = mask.to(model.device).expand(count, -1, -1, -1)          # (count, 1, H, W)
    init = picture.expand(count, -1, -1, -1)
    cond, null, _, _ = _conditions(model, count, label, prompt, negative_prompt, seed)
    noise, gens = noise_for(model, list(range(seed, seed + count)))
    x, _ = denoise(model, noise, gens, cond, null, init=init, mask=mask,
                   **run_controls(**controls))
    kept = ((x - init).abs() * (1 - mask)).amax().item() / 2       # in [0, 1] units
    shown = torch.cat([picture, mask[:1].expand_as(picture) * 2 - 1, x])
    return ToolResult(images=to_unit(shown), columns=count + 2,
                      values={"max_change_outside_mask": kept},
                      text="columns: picture | mask | fillings")


@torch.no_grad()
def denoise_steps(model: Denoiser, ctx, every: int, label: int, seed: int, count: int,
                  prompt: str, negative_prompt: str, **controls) -> ToolResult:
    cond, null, _, _ = _conditions(model, count, label, prompt, negative_prompt, seed)
    noise, gens = noise_for(model, list(range(seed, seed + count)))
    noise = noise.to(model.device)
    _, frames = denoise(model, noise, gens, cond, null, every=every,
                        **run_controls(**controls))
    # (a latent model's noise is shown decoded, like its x_t)
    strip = torch.stack([model.to_pixels(noise)] + frames, 1)      # (count, F, C, H, W)
    return ToolResult(images=to_unit(strip.flatten(0, 1)), columns=strip.shape[1],
                      text=f"columns: noise, then x_t every {every} steps; the last is "
                           f"the image")
