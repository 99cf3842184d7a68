"""Variational autoencoders (Kingma & Welling, 2014): VAE, beta-VAE (Higgins et al., 2017) and
the conditional VAE (Sohn et al., 2015), one class with three sets of defaults.

Training maximises the ELBO, log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || N(0, I)), with the KL
weight warmed up from 0 to beta; validation reports it in nats per image with the number of
active latent units, and a run whose posterior collapses (the decoder ignores z) says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..core.base import Samples
from ..core.errors import StudioError
from ..services.latent import requested_labels
from . import spec as S
from .common import AutoencoderPipeline
from .losses import active_units, gaussian_kl, log_normal, slerp
from .latent_mixture import MAX_FIT_POINTS
from .networks import VAENet

COLLAPSE_KL = 0.01     # nats: a unit whose mean KL is below this carries (almost) nothing


class VAE(AutoencoderPipeline):
    """A VAE with a Gaussian posterior and a Bernoulli (or Gaussian) decoder."""
    spec = S.VAE
    draws_samples = True
    best_metric = ("elbo", "max")             # validation ELBO in nats (pipelines/core/best.py)

    def make_net(self):
        return VAENet(self.config, self.info, self.num_classes)

    @property
    def num_classes(self) -> int:
        n = self.info.get("num_classes", 0)
        return n if self.config.conditional and n >= 2 else 0

    def kl_weight(self, step: int) -> float:
        """beta, reached linearly over the first kl_warmup_steps steps."""
        warmup = self.config.kl_warmup_steps
        return self.config.beta * (min(1.0, (step + 1) / warmup) if warmup else 1.0)

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]                                   # (B, C, H, W)
        y = batch["labels"] if self.num_classes else None
        out = self.net(x, y)
        recon = self.recon(out["logits"], x).mean()
        kl = gaussian_kl(out["mu"], out["logvar"]).sum(1).mean()
        weight = self.kl_weight(ctx.step)
        loss = recon + weight * kl
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(),
                "elbo": -(recon + kl).detach(), "kl_weight": weight, "grad_norm": grad}

    # --- measuring ---------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
             samples: int = 4) -> dict[str, torch.Tensor]:
        """The ELBO's terms per image (B,), the expectation over q estimated with `samples`
        draws."""
        mu, logvar = self.net.posterior(x, y)                 # (B, D) each
        recon = 0
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)
            recon = recon + self.recon(self.net.decode(mu + (0.5 * logvar).exp() * eps, y), x)
        kl_units = gaussian_kl(mu, logvar)                    # (B, D)
        recon = recon / samples
        return {"recon": recon, "kl": kl_units.sum(1), "elbo": -(recon + kl_units.sum(1)),
                "kl_units": kl_units, "latent": mu}

    def measure_batch(self, x, y, generator) -> dict[str, torch.Tensor]:
        if self.num_classes and y is None:
            return self._measure_unlabelled(x, generator)
        out = self.elbo(x, y if self.num_classes else None, generator)
        mean = torch.sigmoid(self.net.decode(out["latent"], y if self.num_classes else None))
        out["mse"] = (mean.float() - x).pow(2).flatten(1).mean(1)
        out["neg_elbo"] = -out["elbo"]
        return out

    def _measure_unlabelled(self, x, generator) -> dict[str, torch.Tensor]:
        """A CVAE given no labels: log p(x) >= log sum_y p(y) exp(ELBO(x, y)) with a uniform
        p(y); everything else is reported for the likeliest class."""
        k = self.num_classes
        per_class = [self.elbo(x, torch.full((len(x),), c, device=x.device), generator)
                     for c in range(k)]
        elbos = torch.stack([p["elbo"] for p in per_class], 1)        # (B, K)
        best = elbos.argmax(1)
        out = {key: torch.stack([p[key] for p in per_class], 1)[torch.arange(len(x)), best]
               for key in ("recon", "kl", "latent", "kl_units")}
        out["elbo"] = torch.logsumexp(elbos, 1) - math.log(k)
        out["neg_elbo"] = -out["elbo"]
        mean = torch.sigmoid(self.net.decode(out["latent"], best).float())
        out["mse"] = (mean - x).pow(2).flatten(1).mean(1)
        out["label"] = best.float()
        return out

    def labels_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """A CVAE's labels for unlabelled images: the class with the highest ELBO."""
        if not self.num_classes:
            return None
        return self.measure_batch(x, None, torch.Generator().manual_seed(0))["label"].long()

    def encode(self, x, y=None):
        if self.num_classes and y is None:
            y = self.labels_for(x)
        return self.net.encode(x, y if self.num_classes else None)

    def reconstruct(self, x, y=None):
        if self.num_classes and y is None:
            y = self.labels_for(x)
        return self.decode_images(self.encode(x, y), y)

    def decode_images(self, z, y=None):
        if self.num_classes and y is None:
            raise StudioError("a conditional VAE decodes with a class; give labels")
        return torch.sigmoid(self.net.decode(z, y if self.num_classes else None).float())

    def latent_range(self, latents):
        return torch.zeros(latents.shape[1]), torch.ones(latents.shape[1])   # the prior

    def summarise(self, measured) -> dict[str, float]:
        kl_units = measured["kl_units"].mean(0)               # (D,) mean KL of each unit
        out = {k: float(measured[k].mean()) for k in ("elbo", "recon", "kl", "mse")}
        out["active_units"] = active_units(measured["latent"])
        out["collapsed_units"] = int((kl_units < COLLAPSE_KL).sum())
        out["kl_per_unit_min"] = float(kl_units.min())
        return out

    def log_warnings(self, means: dict[str, float], step: int = 0) -> list[str]:
        """Posterior collapse: few units active, or the KL per unit near zero, on validation."""
        d = self.config.latent_dim
        active, kl = means.get("val/active_units"), means.get("val/kl")
        if active is None or kl is None:
            return []
        if active <= d // 4 or kl / d < COLLAPSE_KL:
            return [f"posterior collapse: {int(active)} of {d} latent units are active and the "
                    f"KL is {kl:.2f} nats ({kl / d:.3f} per unit); the decoder is ignoring z. "
                    f"Try a smaller beta, a longer kl_warmup_steps, or a weaker decoder"]
        return []

    def on_new_best(self, data) -> None:
        """Refit the mixture that samples are drawn from (latent_mixture.py) to the posterior
        means of the training images under these, the best weights so far."""
        if not self.config.prior_components:
            return
        rng = np.random.default_rng(0)
        pick = np.arange(len(data.train_images))
        if len(pick) > MAX_FIT_POINTS:
            pick = np.sort(rng.choice(len(pick), MAX_FIT_POINTS, replace=False))
        labels = data.train_labels[pick] if self.num_classes else None
        latents = self.measure(data.train_images[pick], labels)["latent"].numpy()   # (N, D)
        self.net.prior.fit(latents, labels)

    @torch.no_grad()
    def log_likelihood(self, images: np.ndarray, labels: np.ndarray | None, k: int = 100,
                       seed: int = 0) -> float:
        """log p(x) in nats per image by importance sampling with k draws from q (the IWAE
        bound, Burda et al., 2016): tighter than the ELBO, equal to it at k = 1."""
        generator = torch.Generator().manual_seed(seed)
        total = 0.0
        for i in range(len(images)):
            x = torch.as_tensor(images[i:i + 1], device=self.device).expand(k, *images.shape[1:])
            y = (torch.as_tensor(labels[i:i + 1], device=self.device).expand(k)
                 if self.num_classes else None)
            mu, logvar = self.net.posterior(x, y)
            z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator).to(mu.device)
            log_w = (-self.recon(self.net.decode(z, y), x) + log_normal(z, 0 * z, 0 * z)
                     - log_normal(z, mu, logvar))             # (k,)
            total += float(torch.logsumexp(log_w, 0) - math.log(k))
        return total / len(images)

    def evaluate(self, data, cache_dir=None) -> dict[str, float]:
        results = super().evaluate(data, cache_dir)
        results["val_log_likelihood_iw100"] = self.log_likelihood(data.val_images, data.val_labels)
        return results

    # --- sampling -------------------------------------------------------------------------------
    def class_labels(self, n: int, labels: Any = None) -> torch.Tensor | None:
        return requested_labels(n, labels, self.num_classes,
                                names=self.info.get("class_names", []))

    def prior_latents(self, n: int, generator: torch.Generator, y: torch.Tensor | None,
                      prior: str, temperature: float) -> torch.Tensor:
        """n latents (n, D) on the CPU: from the fitted mixture (prior "fitted", when the model
        has one) or from N(0, temperature^2 I)."""
        if prior == "fitted" and self.net.prior.is_fitted:
            return self.net.prior.draw(n, generator, y, temperature)
        if prior not in ("fitted", "standard"):
            raise StudioError(f"prior must be fitted or standard, not {prior!r}")
        return torch.randn(n, self.config.latent_dim, generator=generator) * temperature

    @torch.no_grad()
    def sample(self, n: int, seed: int, labels: Any = None, temperature: float = 1.0,
               prior: str = "fitted") -> Samples:
        """Decode n latents drawn from the fitted mixture or the N(0, I) prior (of the given
        class for a CVAE): new images."""
        y = self.class_labels(n, labels)
        z = self.prior_latents(n, torch.Generator().manual_seed(seed), y, prior, temperature)
        images = self.decode_images(z.to(self.device), None if y is None else y.to(self.device))
        return Samples(images=images.float().clamp(0, 1).cpu().numpy(),
                       labels=None if y is None else y.numpy())

    @torch.no_grad()
    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels: Any = None,
                    temperature: float = 1.0, prior: str = "fitted") -> Samples:
        """Decode a path from seed_a's latent to seed_b's (each the latent of sample(1, seed)),
        in one class for a CVAE (the given one, else 0): a slerp between N(0, I) draws, a
        straight line between draws from the fitted mixture (its components are not
        centred on 0, where a slerp's arc assumes they are)."""
        y = None
        if self.num_classes:
            y = self.class_labels(1, labels if labels is not None else 0)
        za, zb = (self.prior_latents(1, torch.Generator().manual_seed(s), y, prior,
                                     temperature)[0] for s in (seed_a, seed_b))
        t = torch.linspace(0, 1, frames)
        if prior == "fitted" and self.net.prior.is_fitted:
            z = za + t[:, None] * (zb - za)                  # (frames, D)
        else:
            z = slerp(za, zb, t)
        y = None if y is None else y.expand(frames)
        images = self.decode_images(z.to(self.device), None if y is None else y.to(self.device))
        return Samples(images=images.float().clamp(0, 1).cpu().numpy(),
                       labels=None if y is None else y.numpy())


class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017): a KL weight above 1 trades reconstruction for a
    more factorised latent space (see the traverse tool).

    Gaussian likelihood by default: with the Bernoulli one, 8x8 grey digits gain only ~7
    nats from their code, and beta = 4 collapsed the posterior completely (0 of 10 units
    active, measured). beta only means something next to the likelihood's scale: beta = 4
    at sigma = 0.1 weighs the KL as beta = 1 does at sigma = 0.2."""
    spec = S.BETA_VAE


class CVAE(VAE):
    """Conditional VAE (Sohn et al., 2015): q(z | x, y) and p(x | z, y), so z holds the style
    and y the class; `studio sample --class 3` draws threes."""
    spec = S.CVAE
