"""What both diffusion pipelines train with, as plain functions: the UNet's block layout, the
noise schedule, the checks every diffusion config needs, the denoising loss (epsilon, v or
sample targets with min-SNR weighting and condition dropout) and the fixed-noise validation
batch. pixel.py and text_to_image.py call them; each reads top to bottom on its own.

Tensors are (N, C, H, W) in the UNet's space, [-1, 1] for pixels.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..core.errors import StudioError


def check_schedule(config) -> None:
    """The noise options that cannot work together, refused before a run exists."""
    if config.beta_schedule == "cosine" and config.prediction_type == "epsilon":
        # alpha_bar(T) ~ 1e-9: x0 = (x - sqrt(1 - a) eps) / sqrt(a) blows up by ~3e4 there
        raise StudioError("cosine betas leave no signal at the last timestep, where an "
                          "epsilon model's image estimate blows up; use "
                          "prediction_type=v_prediction (or sample), or linear betas")


def check_size(image_size: int, multiple: int, what: str) -> None:
    """`what` (e.g. "a 3-level UNet (it halves the image 2 times)") needs image_size to be a
    multiple of `multiple`."""
    if image_size % multiple:
        raise StudioError(f"{what} need image_size to be a multiple of {multiple}, not "
                          f"{image_size}")


def unet_layout(config, size: int, cross_attention: bool) -> dict[str, Any]:
    """The arguments a diffusers UNet of `config`'s width and levels takes for feature maps of
    side `size`: channels doubling per level (e.g. 16, 32, 64), and attention only where the
    maps are small (at 16x16 it costs as much as the rest of the UNet on a CPU), always at the
    deepest level; cross-attention blocks for a text model."""
    c = config
    widths = tuple(c.width * 2 ** i for i in range(c.levels))            # e.g. (16, 32, 64)
    attends = [size // 2 ** i <= c.attention_size or i == c.levels - 1 for i in range(c.levels)]
    attn = "CrossAttn" if cross_attention else "Attn"
    return dict(
        sample_size=size, block_out_channels=widths, layers_per_block=c.layers_per_block,
        norm_num_groups=math.gcd(c.width, 8),
        down_block_types=tuple(f"{attn}DownBlock2D" if a else "DownBlock2D" for a in attends),
        up_block_types=tuple(f"{attn}UpBlock2D" if a else "UpBlock2D" for a in reversed(attends)))


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """Betas whose signal-to-noise ratio at every t is `shift` times the given schedule's
    (Hoogeboom et al. 2023, "simple diffusion"; Chen 2023). A 32 px image averages its noise
    over 4x the pixels of a 16 px one, so at the same t its background and colours are still
    readable from x_t and the model learns to ignore the prompt; shift 1/4 makes each t as
    hard as at 16 px. (T,) -> (T,)."""
    snr = alphas_cumprod.double() / (1 - alphas_cumprod.double()) * shift
    shifted = snr / (1 + snr)                                          # alpha_bar_t, shifted
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1 - shifted / previous).clamp(max=0.999).float()


def noise_scheduler(config):
    """The training process: a diffusers DDPMScheduler of T steps, linear or cosine betas,
    optionally SNR-shifted. "trailing" spacing makes every sampler's first step start from
    pure noise; clip_sample is off (see sampling.make_scheduler)."""
    from diffusers import DDPMScheduler
    c = config
    settings = dict(num_train_timesteps=c.num_train_timesteps,
                    prediction_type=c.prediction_type, clip_sample=False,
                    beta_schedule="squaredcos_cap_v2" if c.beta_schedule == "cosine"
                    else "linear", timestep_spacing="trailing")
    scheduler = DDPMScheduler(**settings)
    if c.snr_shift != 1:
        betas = shifted_betas(scheduler.alphas_cumprod, c.snr_shift)
        # trained_betas travel in the scheduler's config, so every sampler made from it
        # (and the exported scheduler/) uses the shifted schedule.
        scheduler = DDPMScheduler(**settings, trained_betas=betas.tolist())
    return scheduler


def target(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
           prediction_type: str) -> torch.Tensor:
    """What the UNet is trained to output for x_t = add_noise(x0, noise, t)."""
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    return noise if prediction_type == "epsilon" else x0


def denoising_loss(model, x0: torch.Tensor, cond: torch.Tensor | None, config) -> torch.Tensor:
    """One DDPM training loss on clean x0 (B, C, H, W) with condition `cond` (class ids or
    token ids, or None): noise, a random timestep per image, the condition replaced by the
    null one with probability cond_dropout (classifier-free guidance training), and the
    target's squared error with min-SNR weights. `model` gives noise_scheduler,
    null_condition, encode_condition and predict."""
    c, sched = config, model.noise_scheduler
    b, device = x0.shape[0], x0.device
    noise = torch.randn_like(x0)
    t = torch.randint(0, sched.config.num_train_timesteps, (b,), device=device)
    xt = sched.add_noise(x0, noise, t)
    if cond is not None:                                    # CFG: drop the condition
        drop = torch.rand(b, device=device) < c.cond_dropout
        null = model.null_condition(b, device)
        cond = torch.where(drop.view(-1, *[1] * (cond.dim() - 1)), null, cond)
    pred = model.predict(xt, t, model.encode_condition(cond)).float()
    wanted = target(sched, x0, noise, t, c.prediction_type)
    per_image = F.mse_loss(pred, wanted.float(), reduction="none").mean((1, 2, 3))   # (B,)
    if c.min_snr_gamma <= 0:
        return per_image.mean()
    # Min-SNR-gamma (Hang et al. 2023): the x0-loss weight min(SNR, gamma), divided by what
    # this target's loss already carries (SNR for epsilon, SNR + 1 for v, 1 for the sample).
    from diffusers.training_utils import compute_snr
    snr = compute_snr(sched, t).float()
    capped = snr.clamp(max=c.min_snr_gamma)
    weight = {"epsilon": capped / snr, "v_prediction": capped / (snr + 1),
              "sample": capped}[c.prediction_type]
    return (per_image * weight).mean()


def fixed_noise_loss(scheduler, x0: torch.Tensor, prediction_type: str,
                     predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """Validation: the plain MSE on x0 at fixed timesteps and noise (their own generator, so
    training's random stream is untouched), comparable across steps and runs.
    predict(x_t, t) -> the UNet's output."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=g).to(x0.device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=g).to(
        x0.device)
    xt = scheduler.add_noise(x0, noise, t)
    return F.mse_loss(predict(xt, t).float(), target(scheduler, x0, noise, t, prediction_type)
                      ).item()
