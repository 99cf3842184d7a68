"""The deterministic autoencoders: plain (common.py), denoising, sparse and contractive.
Each differs from the plain one only in its loss (and, for the last two, sigmoid code units)."""

from __future__ import annotations

import torch

from . import spec as S
from .common import AutoencoderPipeline
from .losses import corrupt, jacobian_frobenius2, sparsity_kl


class AE(AutoencoderPipeline):
    """A plain autoencoder: minimise -log p(x | decoder(encoder(x)))."""
    spec = S.AE


class DAE(AutoencoderPipeline):
    """Denoising autoencoder (Vincent et al., 2008): encode a corrupted x, reconstruct the clean
    one, so the code must capture structure rather than copy pixels."""
    spec = S.DAE

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
    spec = S.SPARSE_AE
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
    spec = S.CONTRACTIVE_AE
    code = "sigmoid"

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
