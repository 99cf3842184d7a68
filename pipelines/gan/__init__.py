"""GANs: every classic variant on one pipeline (pipeline.py), its networks (networks.py), its
losses (losses.py), the named variants (variants.py) and their torch-free declarations
(spec.py: configs, defaults, presets, tools). Three later ideas of how a generator should be
built each have a file of their own on the same pipeline, declared in their own spec module:
StyleGAN2 (stylegan_networks.py, stylegan.py), BigGAN (biggan.py) and LAPGAN (lapgan.py)."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "GAN": ".pipeline", "truncated_normal": ".pipeline", "GANConfig": ".spec",
    "slerp": "..services.latent", "VARIANTS": ".variants", "VanillaGAN": ".variants",
    "DCGAN": ".variants", "ConditionalGAN": ".variants", "WGAN": ".variants",
    "WGANGP": ".variants", "LSGAN": ".variants", "SNGAN": ".variants", "InfoGAN": ".variants",
    "StyleGAN": ".stylegan", "BigGAN": ".biggan", "LAPGAN": ".lapgan"})
