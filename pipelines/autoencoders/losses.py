"""The family's losses and measurements, each a small function of tensors (tested against
closed forms, finite differences and hand-computed cases in tests/test_autoencoders.py).

Per-image quantities are in nats per image: summed over pixels (or latent units), not averaged,
so that a VAE's reconstruction term and its KL term are on one scale and the ELBO means what
the papers mean by it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..services.latent import slerp  # re-exported: the family's walks use it

__all__ = ["recon_nll", "gaussian_kl", "log_normal", "corrupt", "sparsity_kl",
           "jacobian_frobenius2", "active_units", "perplexity", "pca_2d", "slerp"]


def recon_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
              sigma: float = 0.1) -> torch.Tensor:
    """-log p(x | z) per image, (B,), for decoder logits (B, C, H, W) and targets x in [0, 1].

    bernoulli: binary cross-entropy of sigmoid(logits) against x (grey values are soft targets,
    so a perfect reconstruction of a grey pixel still costs its entropy).
    gaussian: N(x; sigmoid(logits), sigma^2) per pixel."""
    logits, x = logits.float(), x.float()
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        err = (torch.sigmoid(logits) - x) / sigma
        nll = 0.5 * err ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    return nll.flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent unit, (B, D), in closed form:
    0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim."""
    return (-0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))).sum(-1)


def _random(shape, like: torch.Tensor, generator: torch.Generator | None, normal: bool):
    # A local generator draws on the CPU (it lives there) and moves; no generator draws from
    # the global RNG on the tensor's device (training, whose RNG state the trainer saves).
    draw = torch.randn if normal else torch.rand
    if generator is None:
        return draw(shape, device=like.device)
    return draw(shape, generator=generator).to(like.device)


def corrupt(x: torch.Tensor, kind: str, level: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of images x (B, C, H, W) in [0, 1], still in [0, 1].

    gaussian: x + level * N(0, 1), clipped; masking: each pixel set to 0 with probability
    level; salt-and-pepper: each pixel set to 0 or 1 (even odds) with probability level."""
    if kind == "gaussian":
        return (x + level * _random(x.shape, x, generator, normal=True)).clamp(0, 1)
    hit = _random(x.shape, x, generator, normal=False) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    if kind == "salt-and-pepper":
        salt = (_random(x.shape, x, generator, normal=False) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)
    raise ValueError(f"unknown corruption {kind!r}")


def sparsity_kl(code: torch.Tensor, rho: float) -> torch.Tensor:
    """The sparse AE's penalty: sum over code units j of KL(Bernoulli(rho) || Bernoulli(rho_j)),
    where rho_j is unit j's mean activation over the batch. code: (B, D) in (0, 1)."""
    rho_hat = code.float().mean(0).clamp(1e-6, 1 - 1e-6)     # (D,)
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def jacobian_frobenius2(encode: Callable[[torch.Tensor], torch.Tensor],
                        x: torch.Tensor) -> torch.Tensor:
    """||dz/dx||_F^2 per image, (B,), computed exactly: row j of every image's Jacobian is the
    gradient of sum_b z[b, j] with respect to x (images do not interact), so D backward passes
    give all of it. Differentiable when gradients are on (the contractive AE trains through
    it); its cost grows with D, so it suits small codes. `encode` must treat the images of a
    batch independently (no batch norm). (torch.func's vmap(jacrev) gives the same numbers
    but was ~3.5x slower here on a CPU.)"""
    train = torch.is_grad_enabled()
    with torch.enable_grad():                                 # validation runs under no_grad
        x = x.detach().requires_grad_(True)
        z = encode(x)                                         # (B, D)
        dtype = torch.promote_types(x.dtype, torch.float32)   # at least fp32, fp64 in tests
        total = torch.zeros(len(x), device=x.device, dtype=dtype)
        for j in range(z.shape[1]):
            row, = torch.autograd.grad(z[:, j].sum(), x, create_graph=train,
                                       retain_graph=True)                 # (B, C, H, W)
            total = total + row.to(dtype).flatten(1).pow(2).sum(1)
    return total if train else total.detach()


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Units whose posterior mean varies across the data: Cov_x(E_q[z_u]) > threshold
    (Burda et al., 2016). mu: (N, D). A unit that does not vary carries no information."""
    return int((mu.float().var(0, unbiased=False) > threshold).sum())


def perplexity(codes: torch.Tensor, k: int) -> torch.Tensor:
    """exp(entropy) of how often each of k codes is used: k when all are used evenly, 1 when
    one code takes everything."""
    p = torch.bincount(codes.flatten(), minlength=k).float()
    p = p / p.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


def pca_2d(points: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """(N, D) -> its projection on the first two principal components (N, 2), and the fraction
    of the variance each explains. D <= 2 is returned as it is (padded with zeros to 2)."""
    points = points.float()
    if points.shape[1] <= 2:
        out = torch.zeros(len(points), 2)
        out[:, :points.shape[1]] = points
        var = out.var(0, unbiased=False)
        return out, (var / var.sum().clamp_min(1e-12)).tolist()
    centred = points - points.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    return centred @ vh[:2].T, (var[:2] / var.sum()).tolist()
