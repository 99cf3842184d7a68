"""The configs of the autoencoder family: one shared dataclass and the fields each model adds
(spec.py makes the variants that only change defaults, `variant_config`). Torch-free: the UI's
forms and `--set` read these through spec.py."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import option

CORRUPTIONS = ("gaussian", "masking", "salt-and-pepper")


@dataclass
class AEConfig:
    """What every autoencoder shares: the networks, the likelihood, the optimiser."""
    architecture: str = option("mlp", "Encoder/decoder: mlp (fully connected) or conv "
                               "(strided convs down to ~4x4, transposed convs back up).",
                               choices=("mlp", "conv"))
    latent_dim: int = option(16, "Size of the latent code z.", low=1, high=1024)
    hidden: int = option(256, "Width of each hidden layer of an MLP encoder/decoder.",
                         low=4, high=4096)
    depth: int = option(2, "Hidden layers of an MLP encoder (the decoder mirrors it).",
                        low=1, high=8)
    width: int = option(32, "Channels of a conv encoder's first layer, doubled at each "
                        "halving of the resolution (capped at 128).", low=4, high=256)
    likelihood: str = option("bernoulli", "Reconstruction likelihood: bernoulli (binary "
                             "cross-entropy on pixel values in [0, 1]) or gaussian (squared "
                             "error with a fixed sigma). Both are in nats per image.",
                             choices=("bernoulli", "gaussian"))
    gaussian_sigma: float = option(0.1, "Pixel standard deviation of the gaussian likelihood.",
                                   low=1e-3, high=1.0)
    lr: float = option(1e-3, "Learning rate (Adam).", low=0.0, high=1.0)
    weight_decay: float = option(0.0, "Adam weight decay.", low=0.0, high=1.0)
    image_size: int = option(0, "Resize the data to this size; 0 keeps the data set's size.",
                             low=0, high=128)


@dataclass
class DAEConfig(AEConfig):
    corruption: str = option("gaussian", "How inputs are corrupted before encoding: gaussian "
                             "noise, masking (pixels set to 0) or salt-and-pepper (pixels set "
                             "to 0 or 1).", choices=CORRUPTIONS)
    noise_level: float = option(0.3, "Gaussian: the noise's standard deviation; masking and "
                                "salt-and-pepper: the fraction of pixels hit.", low=0.0, high=1.0)


@dataclass
class SparseAEConfig(AEConfig):
    rho: float = option(0.05, "Target mean activation of each code unit (sigmoid units).",
                        low=1e-4, high=0.99)
    sparsity_beta: float = option(1.0, "Weight of the KL(rho || mean activation) penalty, "
                                  "summed over code units.", low=0.0, high=1000.0)


@dataclass
class ContractiveAEConfig(AEConfig):
    contractive_lambda: float = option(0.1, "Weight of the squared Frobenius norm of the "
                                       "encoder's Jacobian dz/dx (computed exactly: one "
                                       "backward pass per code unit, fine for small layers).",
                                       low=0.0, high=1000.0)


@dataclass
class VAEConfig(AEConfig):
    beta: float = option(1.0, "Weight of the KL term (1 = the ELBO; above 1 = beta-VAE).",
                         low=0.0, high=1000.0)
    kl_warmup_steps: int = option(1000, "Steps over which the KL weight rises linearly from "
                                  "0 to beta (0 = no warm-up); counters early posterior "
                                  "collapse.", low=0)
    conditional: bool = option(False, "Condition encoder and decoder on the class label "
                               "(a conditional VAE).")
    prior_components: int = option(10, "Gaussians in the mixture fitted to the training "
                                   "images' latents at each new best validation ELBO, which "
                                   "samples are drawn from (per class for a conditional VAE; "
                                   "Ghosh et al., 2020); 0 fits none. The ELBO keeps the "
                                   "N(0, I) prior.", low=0, high=100)


@dataclass
class VQVAEConfig(AEConfig):
    codebook_size: int = option(64, "Number of codes K in the codebook.", low=2, high=8192)
    downsample: int = option(1, "Halvings from the image to the code map (8x8 digits: 1 "
                             "gives a 4x4 map of codes).", low=0, high=6)
    commitment_beta: float = option(0.25, "Weight of the commitment loss ||z_e - sg(e)||^2.",
                                    low=0.0, high=100.0)
    codebook_ema: bool = option(True, "Update the codebook as an exponential moving average "
                                "of the encoder outputs assigned to each code (else by a "
                                "codebook loss and the optimiser).")
    codebook_decay: float = option(0.99, "Decay of the codebook EMA.", low=0.0, high=0.99999)
    dead_code_steps: int = option(50, "A code unused for this many training steps is moved "
                                  "onto a random encoder output of the batch (0 = never).",
                                  low=0)
