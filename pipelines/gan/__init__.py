"""GANs: every classic variant on one pipeline (pipeline.py), its networks (networks.py), its
losses (losses.py), and the named variants with their papers' defaults (variants.py)."""

from ..latent import slerp
from .pipeline import GAN, GANConfig, truncated_normal
from .variants import (DCGAN, LSGAN, SNGAN, VARIANTS, WGAN, WGANGP, ConditionalGAN, InfoGAN,
                       VanillaGAN)

__all__ = ["GAN", "GANConfig", "slerp", "truncated_normal", "VARIANTS", "VanillaGAN", "DCGAN",
           "ConditionalGAN", "WGAN", "WGANGP", "LSGAN", "SNGAN", "InfoGAN"]
