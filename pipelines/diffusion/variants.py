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
    name = "ddpm-text"
    Config = variant_config("TextDDPMConfig", DiffusionConfig, conditioning="text",
                            image_size=0, latent_channels=4, autoencoder_steps=2500,
                            width=32, levels=2,
                            prediction_type="v_prediction", beta_schedule="cosine",
                            min_snr_gamma=0.0)
    train_defaults = {**Diffusion.train_defaults, "steps": 7000, "grad_clip": 1.0}
    # `--preset gpu`, not yet measured on a GPU (bench/gpu.py will). The defaults ran at 20.5
    # steps/s in fp32 on an H200 (~50 ms a step, launch-bound), so the same two-level latent
    # UNet at twice the width, on 64 px shapes (16x16x4 latents, attention and cross-attention
    # at both levels), a wider text encoder and 4x the autoencoder's batch add arithmetic, not
    # launches: ~55 ms a step, 6,000 steps (2,000 of them the autoencoder's, each on 64
    # images, 3x the images of the default's 2,500 on 16) in about 5.5 minutes.
    presets = {"gpu": {
        "config": {"image_size": 64, "width": 64, "attention_size": 16, "text_width": 128,
                   "autoencoder_width": 32, "autoencoder_batch": 64, "autoencoder_steps": 2000},
        "trainer": {"steps": 6000, "batch_size": 64, "mixed_precision": "auto",
                    "log_every": 100, "sample_every": 1000, "checkpoint_every": 1000}}}


VARIANTS = (DDPM, ClassDDPM, TextDDPM)
