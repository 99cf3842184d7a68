"""Diffusion with diffusers: DDPM training (epsilon, v or sample prediction; linear or cosine
betas; EMA; min-SNR; classifier-free guidance dropout), every common scheduler, class and text
conditioning, img2img, inpainting, step previews, and export as a diffusers folder."""

from .config import SCHEDULERS, DiffusionConfig, DiffusionSampleControls
from .pipeline import Diffusion, make_scheduler
from .variants import VARIANTS, ClassDDPM, DDPM, TextDDPM

__all__ = ["SCHEDULERS", "VARIANTS", "ClassDDPM", "DDPM", "Diffusion", "DiffusionConfig",
           "DiffusionSampleControls", "TextDDPM", "make_scheduler"]
