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
    UNet2DConditionModel that reads it through cross-attention, on the captioned shapes (32 px;
    held-out colour/shape pairs evaluated)."""
    name = "ddpm-text"
    Config = variant_config("TextDDPMConfig", DiffusionConfig, conditioning="text",
                            image_size=0, levels=3)
    train_defaults = {**Diffusion.train_defaults, "steps": 3000}


VARIANTS = (DDPM, ClassDDPM, TextDDPM)
