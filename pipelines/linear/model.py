"""Linear latent-variable models: probabilistic PCA (Tipping & Bishop 1999) and factor analysis.

An image x (flattened to D pixels) is mu + W z + e, with z ~ N(0, I_q) and pixel noise
e ~ N(0, Psi): Psi = sigma^2 I for PPCA, diagonal for factor analysis. Integrating z out, x is
Gaussian with the low-rank-plus-diagonal covariance W W^T + Psi, so the exact log-likelihood is
cheap (Woodbury: torch's LowRankMultivariateNormal) and the model is fit by maximising it with
Adam, one batch at a time, on the trainer like every family. PPCA's maximum has a closed form
(W spans the top-q principal components), which scikit-learn's PCA computes: evaluate() reports
that fit's likelihood next to ours, the bound gradient training should reach.

Read top to bottom: the Gaussian (LinearGaussian), then the pipeline: build, the loss,
validation, sampling and interpolation, the components tool, evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import LowRankMultivariateNormal

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..services.latent import slerp
from . import spec as S


class LinearGaussian(nn.Module):
    """x ~ N(mean, loadings loadings^T + diag(noise)), the noise one variance for every pixel
    (PPCA) or one per pixel (factor analysis), never below `min_variance`: a pixel that never
    changes (the blank border of a digit) would otherwise shrink its variance towards 0 and its
    density towards infinity (a "Heywood case")."""

    def __init__(self, dims: int, latent_dim: int, diagonal: bool, min_variance: float):
        super().__init__()
        self.dims, self.min_variance = dims, min_variance
        self.mean = nn.Parameter(torch.zeros(dims))                        # (D,)
        self.loadings = nn.Parameter(torch.randn(dims, latent_dim) * 0.01)  # (D, q)
        self.log_noise = nn.Parameter(torch.full((dims if diagonal else 1,), math.log(0.1)))

    def noise_variance(self) -> torch.Tensor:
        return (self.min_variance + self.log_noise.exp()).expand(self.dims)  # (D,)

    def distribution(self) -> LowRankMultivariateNormal:
        # float32 whatever the autocast: the Cholesky factor of the q x q capacitance matrix
        # is not safe in half precision.
        return LowRankMultivariateNormal(self.mean.float(), self.loadings.float(),
                                         self.noise_variance().float())

    def nll_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of flattened images x (B, D), in nats per pixel."""
        with torch.autocast(x.device.type, enabled=False):
            return -self.distribution().log_prob(x.float()).mean() / self.dims


class PPCA(Pipeline):
    """Tipping & Bishop (1999), "Probabilistic principal component analysis": one noise
    variance for every pixel, so the loadings span the data's principal subspace."""
    spec = S.PPCA
    best_metric = ("nll_per_dim", "min")    # the validation likelihood (best.py)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        size = self.info["image_size"]
        return (self.info["channels"], size, size)

    def build(self) -> dict[str, nn.Module]:
        c, dims = self.config, math.prod(self.image_shape)
        if c.latent_dim >= dims:
            raise StudioError(f"latent_dim must be below the {dims} pixels of an image, not "
                              f"{c.latent_dim}")
        return {"model": LinearGaussian(dims, c.latent_dim, c.noise == "diagonal",
                                        c.min_variance)}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": torch.optim.Adam(self.modules["model"].parameters(), lr=self.config.lr)}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"].flatten(1)                                     # (B, D) in [0, 1]
        loss = self.modules["model"].nll_per_dim(x)
        grad_norm = ctx.backward_step(loss, "opt", "model")
        return {"nll_per_dim": loss.detach(), "grad_norm": grad_norm}

    @torch.no_grad()
    def validate(self, data) -> dict[str, float]:
        """The negative log-likelihood of the validation images, nats per pixel."""
        x = torch.from_numpy(data.val_images).flatten(1).to(self.device)
        return {"nll_per_dim": self.modules["model"].nll_per_dim(x).item()}

    # --- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, add_noise: bool, seed: int) -> np.ndarray:
        """Latents (N, q) -> images (N, C, H, W) in [0, 1]: mu + W z (+ the pixel noise)."""
        model = self.modules["model"]
        x = model.mean + z.to(self.device) @ model.loadings.T                 # (N, D)
        if add_noise:
            e = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
            x = x + e.to(self.device) * model.noise_variance().sqrt()
        return x.float().clamp(0, 1).reshape(-1, *self.image_shape).cpu().numpy()

    def latents(self, seeds: list[int]) -> torch.Tensor:
        """z ~ N(0, I) per seed: an image repeats alone, whatever the batch. (N, q)"""
        q = self.config.latent_dim
        return torch.stack([torch.randn(q, generator=torch.Generator().manual_seed(s))
                            for s in seeds])

    def sample(self, n: int, seed: int, labels: Any = None, add_noise: bool = False,
               temperature: float = 1.0) -> Samples:
        if labels is not None:
            raise StudioError(f"{self.name} is not class-conditional; leave out the class")
        z = self.latents([seed + i for i in range(n)]) * temperature
        return Samples(images=self.decode(z, add_noise, seed))

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels: Any = None,
                    add_noise: bool = False, temperature: float = 1.0) -> Samples:
        """A slerp from seed_a's latent to seed_b's (the first images of their samples)."""
        za, zb = self.latents([seed_a, seed_b])
        if labels is not None:
            raise StudioError(f"{self.name} is not class-conditional; leave out the class")
        z = slerp(za, zb, torch.linspace(0, 1, frames)) * temperature
        return Samples(images=self.decode(z, add_noise, seed_a))

    # --- the tool and evaluation -------------------------------------------------------------
    @torch.no_grad()
    def tool_components(self, ctx, count: int) -> ToolResult:
        """The mean image, then W's columns by norm, each mapped to [0, 1] (grey is 0)."""
        model = self.modules["model"]
        w = model.loadings.float().cpu()                                    # (D, q)
        order = w.norm(dim=0).argsort(descending=True)[:count]
        columns = w[:, order].T                                             # (k, D)
        shown = 0.5 + columns / (2 * columns.abs().amax(1, keepdim=True).clamp_min(1e-12))
        images = torch.cat([model.mean.float().cpu().clamp(0, 1)[None], shown])
        norms = w.norm(dim=0)[order]
        return ToolResult(images=images.reshape(-1, *self.image_shape).numpy(),
                          values={"loading_norms": [round(float(v), 4) for v in norms]},
                          text="the mean, then the loading vectors, largest first")

    def evaluate(self, data, cache_dir=None) -> dict[str, float]:
        """The validation likelihood next to scikit-learn's fit of the same model on the same
        training images (PCA's closed form; FactorAnalysis's EM), its noise held to the same
        floor; and the judge's numbers for its samples against their floors."""
        from ..metrics import JUDGED_DRAWS, draw_judged_samples, judge_samples, judged_sample_count
        x_val = torch.from_numpy(data.val_images).flatten(1)
        results = {"val_nll_per_dim": self.validate(data)["nll_per_dim"],
                   "reference_val_nll_per_dim": self.reference_nll(data.train_images, x_val)}
        if cache_dir is not None:
            images, _ = draw_judged_samples(self.sample, judged_sample_count(data))
            results.update(judge_samples(data, images, cache_dir=cache_dir, draws=JUDGED_DRAWS))
        return results

    def reference_nll(self, train_images: np.ndarray, x_val: torch.Tensor) -> float:
        """scikit-learn's maximum-likelihood fit (on at most 5,000 training images), scored on
        the validation images as this model is: the number gradient training should reach."""
        from sklearn.decomposition import PCA, FactorAnalysis
        c = self.config
        x = train_images.reshape(len(train_images), -1)[:5000].astype(np.float64)
        if c.noise == "isotropic":
            fit = PCA(n_components=c.latent_dim, svd_solver="full").fit(x)
            # PCA's components are unit rows; PPCA's loadings are them x sqrt(lambda - sigma^2)
            scale = np.sqrt(np.maximum(fit.explained_variance_ - fit.noise_variance_, 0))
            loadings = fit.components_.T * scale
            noise = np.full(x.shape[1], fit.noise_variance_)
        else:
            fit = FactorAnalysis(n_components=c.latent_dim, max_iter=200, random_state=0).fit(x)
            loadings, noise = fit.components_.T, fit.noise_variance_
        reference = LowRankMultivariateNormal(
            torch.as_tensor(fit.mean_, dtype=torch.float32),
            torch.as_tensor(loadings, dtype=torch.float32),
            torch.as_tensor(np.maximum(noise, c.min_variance), dtype=torch.float32))
        return float(-reference.log_prob(x_val.float()).mean() / x_val.shape[1])


class FactorAnalysis(PPCA):
    """Factor analysis (Spearman 1904; the Gaussian latent form as in Bishop 2006, 12.2.4):
    each pixel has its own noise variance, so the factors explain what pixels share, not
    what each does alone."""
    spec = S.FACTOR_ANALYSIS
