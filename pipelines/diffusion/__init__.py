"""Diffusion with diffusers: DDPM training (epsilon, v or sample prediction; linear or cosine
betas; EMA; min-SNR; classifier-free guidance dropout), every common scheduler, class and text
conditioning, img2img, inpainting, step previews, and export as a diffusers folder. The options
(config.py) and the three named forms' declarations (spec.py) import no torch."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "SCHEDULERS": ".config", "DiffusionConfig": ".config", "DiffusionSampleControls": ".config",
    "Diffusion": ".pipeline", "make_scheduler": ".pipeline", "VARIANTS": ".variants",
    "ClassDDPM": ".variants", "DDPM": ".variants", "TextDDPM": ".variants"})
