"""Autoencoders and VAEs: the models the studio uses to show what a latent space is.

Read in this order:
    config.py         the options of every model (one shared dataclass, fields per model)
    spec.py           without torch: each model's spec (config, sampling controls, tools'
                      options, training defaults, presets), what the page and CLI read
    networks.py       MLP and conv encoders/decoders; AENet and VAENet
    latent_mixture.py the Gaussian mixture fitted to a VAE's latents, which it samples from
    losses.py         reconstruction NLL, Gaussian KL, corruptions, sparsity and contractive
                      penalties, active units, perplexity, PCA (slerp lives in ../latent.py)
    common.py         the shared pipeline: one module, Adam, measuring, reconstructions grid
    deterministic.py  ae, dae, sparse-ae, contractive-ae
    vae.py            vae, beta-vae, cvae
    vqvae.py          vqvae: EMA codebook, commitment, dead codes, code maps
    tools.py          reconstruct, interpolate, traverse, latent-map, denoise, anomaly
                      (their options are declared in spec.py)
"""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "AutoencoderPipeline": ".common", "AE": ".deterministic", "DAE": ".deterministic",
    "SparseAE": ".deterministic", "ContractiveAE": ".deterministic", "VAE": ".vae",
    "BetaVAE": ".vae", "CVAE": ".vae", "VQVAE": ".vqvae"})
