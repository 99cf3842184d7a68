"""The named diffusion forms: one Diffusion pipeline with the defaults of each, so that
`studio train ddpm-text --data shapes` works as meant and every default can still be changed
with --set."""

from __future__ import annotations

from ..config import variant_config
from .config import DiffusionConfig
from .pipeline import Diffusion


class DDPM(Diffusion):
    """Ho et al. (2020): an unconditional UNet2DModel trained to predict the noise."""
    name = "ddpm"
    Config = variant_config("DDPMConfig", DiffusionConfig)


class ClassDDPM(Diffusion):
    """A class embedding in the UNet, dropped 10% of the time so that classifier-free guidance
    (Ho & Salimans 2022) can contrast the class with the null one."""
    name = "ddpm-class"
    Config = variant_config("ClassDDPMConfig", DiffusionConfig, conditioning="class")


class TextDDPM(Diffusion):
    """Text-to-image at small scale: a CLIP text encoder trained jointly with a
    UNet2DConditionModel that reads it through cross-attention and, pooled, through the
    timestep embedding, on the captioned shapes (32 px; held-out colour/shape pairs evaluated).
    Its samples follow the prompt's background but not yet its colour, shape or position
    (docs/diffusion.md, "ddpm-text on shapes"). Its defaults differ from the other forms where
    a measurement said so:
    - snr_shift 1/4 and no min-SNR weighting: at 32 px a plain schedule leaves the background
      readable from x_t at almost every t, and min-SNR's v weight is ~SNR at heavy noise, so
      the model learned to ignore the prompt altogether;
    - v-prediction on cosine betas: an epsilon model's image estimate at high noise is its
      noise error times 1/sqrt(alpha_bar) (~150 at t = T), and its samples stayed noise;
    - lr 1e-3 with gradient clipping at 1: at lr 3e-3 a 3,000-step run lost the prompt after
      a loss spike;
    - no patches, three levels of width 8, 16, 32: with patches of 2 (12 channels into a
      16-wide first level) the UNet barely denoised at low noise and every sample kept pixel
      noise; at the same speed on 2 cores."""
    name = "ddpm-text"
    Config = variant_config("TextDDPMConfig", DiffusionConfig, conditioning="text",
                            image_size=0, width=8, levels=3,
                            prediction_type="v_prediction", beta_schedule="cosine",
                            snr_shift=0.25, min_snr_gamma=0.0)
    train_defaults = {**Diffusion.train_defaults, "steps": 3000, "grad_clip": 1.0}


VARIANTS = (DDPM, ClassDDPM, TextDDPM)
