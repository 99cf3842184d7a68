"""The deterministic autoencoders: plain (common.py), denoising, sparse and contractive.
Each differs from the plain one only in its loss (and, for the last two, sigmoid code units)."""

from __future__ import annotations

import torch

from ..config import variant_config
from ..presets import extend
from .common import AutoencoderPipeline
from .config import ContractiveAEConfig, DAEConfig, SparseAEConfig
from .losses import corrupt, jacobian_frobenius2, sparsity_kl


class AE(AutoencoderPipeline):
    """A plain autoencoder: minimise -log p(x | decoder(encoder(x)))."""
    name = "ae"


class DAE(AutoencoderPipeline):
    """Denoising autoencoder (Vincent et al., 2008): encode a corrupted x, reconstruct the clean
    one, so the code must capture structure rather than copy pixels."""
    name = "dae"
    Config = DAEConfig

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]                                   # (B, C, H, W)
        noisy = corrupt(x, self.config.corruption, self.config.noise_level)
        out = self.net(noisy)
        loss = self.recon(out["logits"], x).mean()            # against the clean images
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "grad_norm": grad}

    def measure_batch(self, x, y, generator) -> dict[str, torch.Tensor]:
        out = super().measure_batch(x, y, generator)
        noisy = corrupt(x, self.config.corruption, self.config.noise_level, generator)
        out["noisy_mse"] = (noisy - x).pow(2).flatten(1).mean(1)
        out["denoised_mse"] = (self.reconstruct(noisy) - x).pow(2).flatten(1).mean(1)
        return out


class SparseAE(AutoencoderPipeline):
    """Sparse autoencoder (Ng's lecture notes, 2011): sigmoid code units pushed toward a small
    mean activation rho by beta * sum_j KL(rho || rho_hat_j)."""
    name = "sparse-ae"
    # Overcomplete (64 units for 64 pixels): sparsity, not the bottleneck, limits the code.
    Config = variant_config("SparseAEConfig", SparseAEConfig, latent_dim=64)
    code = "sigmoid"

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]
        out = self.net(x)
        recon = self.recon(out["logits"], x).mean()
        sparsity = sparsity_kl(out["z"], self.config.rho)    # over this batch's mean activations
        loss = recon + self.config.sparsity_beta * sparsity
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "recon": recon.detach(), "sparsity": sparsity.detach(),
                "mean_activation": out["z"].detach().float().mean(), "grad_norm": grad}

    def summarise(self, measured) -> dict[str, float]:
        out = super().summarise(measured)
        codes = measured["latent"]                            # (N, D) in (0, 1)
        out["mean_activation"] = float(codes.mean())
        out["sparsity"] = float(sparsity_kl(codes, self.config.rho))
        return out


class ContractiveAE(AutoencoderPipeline):
    """Contractive autoencoder (Rifai et al., 2011): penalise ||dz/dx||_F^2, so the code is
    insensitive to directions the data does not vary in."""
    name = "contractive-ae"
    Config = ContractiveAEConfig
    code = "sigmoid"
    # The exact Jacobian costs latent_dim extra backward passes per step.
    train_defaults = {**AutoencoderPipeline.train_defaults, "steps": 2000}
    # gpu preset (not yet measured on a GPU): 16 Jacobian passes, each differentiated again
    # in training, are ~20x a plain step's work: width 32 and batch 128 keep a step near
    # 40 ms, so 6,000 steps in about 4 minutes.
    presets = {"gpu": extend(AutoencoderPipeline.presets["gpu"],
                             config={"width": 32, "latent_dim": 16},
                             trainer={"steps": 6000, "batch_size": 128, "sample_every": 1000,
                                      "checkpoint_every": 2000})}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]
        out = self.net(x, jacobian=True)
        recon = self.recon(out["logits"], x).mean()
        penalty = out["jacobian_penalty"].mean()
        loss = recon + self.config.contractive_lambda * penalty
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "recon": recon.detach(),
                "jacobian_penalty": penalty.detach(), "grad_norm": grad}

    def measure_batch(self, x, y, generator) -> dict[str, torch.Tensor]:
        out = super().measure_batch(x, y, generator)
        out["jacobian_penalty"] = jacobian_frobenius2(self.net.encode, x)
        return out
