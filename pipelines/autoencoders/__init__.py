"""Autoencoders and VAEs: the models the studio uses to show what a latent space is.

Read in this order:
    config.py         the options of every model (one shared dataclass, fields per model)
    networks.py       MLP and conv encoders/decoders; AENet and VAENet
    losses.py         reconstruction NLL, Gaussian KL, corruptions, sparsity and contractive
                      penalties, active units, perplexity, PCA (slerp lives in ../latent.py)
    common.py         the shared pipeline: one module, Adam, measuring, reconstructions grid
    deterministic.py  ae, dae, sparse-ae, contractive-ae
    vae.py            vae, beta-vae, cvae
    vqvae.py          vqvae: EMA codebook, commitment, dead codes, code maps
    tools.py          reconstruct, interpolate, traverse, latent-map, denoise, anomaly
"""

from .common import AutoencoderPipeline
from .deterministic import AE, DAE, ContractiveAE, SparseAE
from .vae import CVAE, VAE, BetaVAE
from .vqvae import VQVAE

__all__ = ["AutoencoderPipeline", "AE", "DAE", "SparseAE", "ContractiveAE", "VAE", "BetaVAE",
           "CVAE", "VQVAE"]
