"""Diffusion with diffusers, as two single-file pipelines: pixel.py (`ddpm`, `ddpm-class`: a
UNet2DModel, class conditioning, patches) and text_to_image.py (`ddpm-text`: an AutoencoderKL,
a CLIP text encoder and a UNet2DConditionModel on captioned images). They share plain
functions: common.py (the UNet layout, noise schedule and denoising loss), sampling.py (every
common scheduler in one loop, classifier-free guidance), tools.py (img2img, inpainting, step
previews) and export.py (diffusers folders). The options (config.py) and the declarations
(spec.py) import no torch."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "SCHEDULERS": ".config", "make_scheduler": ".sampling",
    "DDPM": ".pixel", "ClassDDPM": ".pixel", "TextDDPM": ".text_to_image"})
