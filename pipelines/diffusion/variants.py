"""The named diffusion forms: one Diffusion pipeline with the defaults of each, so that
`studio train ddpm-text --data shapes` works as meant and every default can still be changed
with --set."""

from __future__ import annotations

from . import spec as S
from .pipeline import Diffusion


class DDPM(Diffusion):
    """Ho et al. (2020): an unconditional UNet2DModel trained to predict the noise."""
    spec = S.DDPM


class ClassDDPM(Diffusion):
    """A class embedding in the UNet, dropped 10% of the time so that classifier-free guidance
    (Ho & Salimans 2022) can contrast the class with the null one."""
    spec = S.CLASS_DDPM


class TextDDPM(Diffusion):
    """Text-to-image at small scale: a CLIP text encoder trained jointly with a
    UNet2DConditionModel that reads it through cross-attention and, pooled, through the
    timestep embedding, on the captioned shapes (32 px; held-out colour/shape pairs evaluated).
    A latent diffusion model, as Stable Diffusion is: the run's first 2,500 steps train an
    AutoencoderKL (32 px -> 8 x 8 x 4), the next 4,500 a two-level UNet (32, 64) on its
    latents (about 28 minutes on 2 CPU cores).
    Why (docs/diffusion.md, "ddpm-text on shapes"): every 32 px pixel UNet that trains in
    minutes drew the asked background but not the asked colour or shape; on 8 x 8 latents a
    UNet step costs 1/16 as much and a shape is a few cells. Also:
    - v-prediction on cosine betas: an epsilon model's image estimate at high noise is its
      noise error times 1/sqrt(alpha_bar) (~150 at t = T), and its samples stayed noise;
    - no min-SNR weighting: its v weight is ~SNR at heavy noise, where only the prompt says
      what the image is, and the pixel models learned to ignore the prompt;
    - gradient clipping at 1: without it a loss spike made the pixel model lose the prompt."""
    spec = S.TEXT_DDPM


VARIANTS = (DDPM, ClassDDPM, TextDDPM)
