"""A Gaussian mixture fitted to a VAE's latents: where its samples are drawn from.

Why: a VAE is trained with the prior N(0, I), but the codes its encoder gives the training
images (the aggregate posterior) do not fill that prior. With a sharp decoder (a Gaussian
likelihood at sigma 0.1) they gather in clumps, and z drawn from N(0, I) falls between them:
on digits such samples were 11x the judge's real-vs-real floor, where z drawn from a mixture
of 10 Gaussians fitted to the training images' posterior means gave 1.8x (docs/autoencoders.md).
This is "ex-post density estimation" (Ghosh et al., 2020, "From Variational to Deterministic
Autoencoders", section 4; Dai & Wipf, 2019, fit a second VAE for the same reason).

The ELBO and the log-likelihood the studio reports stay those of the trained model, with its
N(0, I) prior: the mixture decides only where samples come from. scikit-learn fits it (full
covariances, k-means start, seed 0); the means, Cholesky factors and weights are buffers of the
VAE's net, so every weights file carries them. A conditional VAE gets one mixture per class.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

MAX_FIT_POINTS = 10_000    # images fitted at most (a seeded subset): enough for D <= 64


class LatentMixture(nn.Module):
    """`groups` mixtures (one per class, or one) of `components` full-covariance Gaussians
    over a `dim`-dimensional latent. Unfitted until `fit` is called."""

    def __init__(self, groups: int, components: int, dim: int):
        super().__init__()
        self.register_buffer("means", torch.zeros(groups, components, dim))         # (G, K, D)
        self.register_buffer("scale_tril", torch.eye(dim).expand(groups, components, dim, dim)
                             .clone())                                            # (G, K, D, D)
        self.register_buffer("log_weights", torch.zeros(groups, components))      # (G, K)
        self.register_buffer("fitted", torch.zeros(()))                            # 1.0 once fit

    @property
    def is_fitted(self) -> bool:
        return self.means.shape[1] > 0 and bool(self.fitted > 0)

    def fit(self, latents: np.ndarray, groups: np.ndarray | None = None) -> None:
        """Fit each group's mixture to its rows of `latents` (N, D); `groups` (N,) gives each
        row's group (a class), None puts every row in group 0. The caller picks the rows
        (the VAE: at most MAX_FIT_POINTS training images, before encoding them)."""
        from sklearn.exceptions import ConvergenceWarning   # why here: only training fits
        from sklearn.mixture import GaussianMixture

        g_count, k, d = self.means.shape[:3]
        means = np.zeros((g_count, k, d))
        tril = np.broadcast_to(np.eye(d), (g_count, k, d, d)).copy()
        log_w = np.full((g_count, k), -np.inf)
        for g in range(g_count):
            z = latents if groups is None else latents[groups == g]
            # At least two points per component: fewer fit no covariance at all.
            use = min(k, len(z) // 2)
            if use == 0:                        # a class with (almost) no images: N(mean, I)
                means[g, 0] = z.mean(0) if len(z) else 0.0
                log_w[g, 0] = 0.0
                continue
            gmm = GaussianMixture(use, covariance_type="full", random_state=0, reg_covar=1e-5)
            with warnings.catch_warnings():
                # EM may not meet its tolerance in 100 iterations (an early encoder's
                # latents have no clusters to find); where it stops is still a mixture.
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(z.astype(np.float64))
            means[g, :use] = gmm.means_
            tril[g, :use] = np.linalg.cholesky(gmm.covariances_)
            log_w[g, :use] = np.log(gmm.weights_)
        for name, value in (("means", means), ("scale_tril", tril), ("log_weights", log_w)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        self.fitted.fill_(1.0)

    def draw(self, n: int, generator: torch.Generator, groups: torch.Tensor | None = None,
             temperature: float = 1.0) -> torch.Tensor:
        """n latents (n, D) on the CPU: a component by its weight, then its mean plus
        `temperature` times its spread (below 1: nearer each component's centre)."""
        g = torch.zeros(n, dtype=torch.long) if groups is None else groups.long().cpu()
        weights = self.log_weights.float().cpu().exp()[g]                        # (n, K)
        k = torch.multinomial(weights, 1, generator=generator)[:, 0]              # (n,)
        eps = torch.randn(n, self.means.shape[2], 1, generator=generator)         # (n, D, 1)
        mean = self.means.float().cpu()[g, k]                                     # (n, D)
        tril = self.scale_tril.float().cpu()[g, k]                                # (n, D, D)
        return mean + temperature * (tril @ eps)[..., 0]
