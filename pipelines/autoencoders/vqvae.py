"""VQ-VAE (van den Oord et al., 2017): the encoder's map of vectors (B, D, s, s) snaps each vector
to its nearest of K codebook vectors, and the decoder sees only those. An image becomes an s x s
map of integers, the kind of tokens DALL-E's image side is built from.

The codebook follows the encoder by an exponential moving average (the paper's appendix), the
encoder is held to it by a commitment loss, and a code nobody has chosen for `dead_code_steps`
steps is moved onto a random encoder output, so the codebook does not shrink to a few codes.
"""

from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Samples, ToolResult
from . import spec as S
from .common import AutoencoderPipeline
from .losses import perplexity
from .networks import Decoder, Encoder, halvings


class Codebook(nn.Module):
    """K vectors of size D. forward(z_e (B, D, s, s)) -> (z_q (B, D, s, s), codes (B, s, s),
    codes reset this step); in training it also moves the codebook (EMA, dead codes)."""

    def __init__(self, k: int, d: int, ema: bool = True, decay: float = 0.99,
                 dead_code_steps: int = 50):
        super().__init__()
        self.k, self.ema, self.decay, self.dead_code_steps = k, ema, decay, dead_code_steps
        embed = torch.randn(k, d)
        if ema:
            self.register_buffer("embed", embed)                       # (K, D)
            # EMA state: how many vectors each code drew, and their sum (embed = sum / size).
            self.register_buffer("cluster_size", torch.ones(k))        # (K,)
            self.register_buffer("embed_sum", embed.clone())           # (K, D)
        else:
            self.embed = nn.Parameter(embed)
        # Training steps since each code was last chosen. Starting "dead" makes the first step
        # seed every unchosen code from the data, a cheap data-dependent initialisation.
        self.register_buffer("unused", torch.full((k,), dead_code_steps, dtype=torch.long))

    @torch.no_grad()
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> index of the nearest code, (N,)."""
        embed = self.embed.float()
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed.T
                + embed.pow(2).sum(1))                                 # (N, K)
        return dist.argmin(1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, s, s) -> z_q (B, D, s, s)."""
        return self.embed[codes].permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor):
        b, d, h, w = z_e.shape
        flat = z_e.detach().float().permute(0, 2, 3, 1).reshape(-1, d)  # (N, D), N = B*s*s
        codes = self.nearest(flat)
        z_q = self.lookup(codes.view(b, h, w))                # from the codebook before the update
        reset = self.update(flat, codes) if self.training else 0
        return z_q, codes.view(b, h, w), reset

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor) -> int:
        """EMA step of the codebook toward the mean of the vectors each code drew, then the
        dead-code reset. Returns how many codes were reset."""
        onehot = F.one_hot(codes, self.k).float()                      # (N, K)
        counts = onehot.sum(0)                                         # (K,)
        if self.ema:
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
            # Laplace smoothing: a code that drew nothing for long is not divided by ~0.
            n, eps = self.cluster_size.sum(), 1e-5
            size = (self.cluster_size + eps) / (n + self.k * eps) * n
            self.embed.copy_(self.embed_sum / size[:, None])
        self.unused.add_(1).masked_fill_(counts > 0, 0)
        if not self.dead_code_steps:
            return 0
        dead = self.unused >= self.dead_code_steps
        count = int(dead.sum())
        if count:
            # The global RNG: part of training, saved with each checkpoint (exact resume).
            picks = flat[torch.randint(len(flat), (count,), device=flat.device)]
            self.embed[dead] = picks.to(self.embed.dtype)
            if self.ema:
                self.embed_sum[dead] = picks
                self.cluster_size[dead] = 1.0
            self.unused[dead] = 0
        return count


class VQNet(nn.Module):
    """x -> z_e (B, D, s, s) -> nearest codes -> z_q -> logits, with the straight-through
    gradient: the decoder's gradient at z_q is passed to z_e unchanged."""

    def __init__(self, config, info: dict):
        super().__init__()
        c, s = info["channels"], info["image_size"]
        self.map_size = s // 2 ** halvings(s, smallest=1, most=config.downsample)
        kw = dict(hidden=config.hidden, depth=config.depth, width=config.width,
                  map_size=self.map_size)
        self.encoder = Encoder(config.architecture, c, s, config.latent_dim, **kw)
        self.decoder = Decoder(config.architecture, c, s, config.latent_dim, **kw)
        self.codebook = Codebook(config.codebook_size, config.latent_dim, config.codebook_ema,
                                 config.codebook_decay, config.dead_code_steps)

    def encode(self, x, y=None) -> torch.Tensor:
        return self.encoder(x)                                # z_e, (B, D, s, s)

    def decode(self, z, y=None) -> torch.Tensor:
        """A latent map (or its flattening) -> quantised -> logits (B, C, H, W)."""
        z = z.view(len(z), -1, self.map_size, self.map_size)
        return self.decoder(self._quantise_only(z)[0])

    def _quantise_only(self, z):
        """z (B, D, s, s) -> (z_q, codes (B, s, s)), never moving the codebook."""
        b, d, h, w = z.shape
        codes = self.codebook.nearest(z.float().permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)
        return self.codebook.lookup(codes), codes

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        z_e = self.encoder(x)
        z_q, codes, reset = self.codebook(z_e)
        logits = self.decoder(z_e + (z_q - z_e).detach())     # straight-through estimator
        return {"z_e": z_e, "z_q": z_q, "codes": codes, "reset": reset, "logits": logits}


def code_colours(k: int) -> np.ndarray:
    """(K, 3) distinct colours in [0, 1]: hues a golden-ratio step apart."""
    return np.array([colorsys.hsv_to_rgb((i * 0.618034) % 1, 0.7, 0.95) for i in range(k)],
                    dtype=np.float32)


class VQVAE(AutoencoderPipeline):
    """VQ-VAE with an EMA codebook, commitment loss, dead-code resets and a code-map tool."""
    spec = S.VQVAE
    draws_samples = True

    def make_net(self):
        return VQNet(self.config, self.info)

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]                                   # (B, C, H, W)
        out = self.net(x)
        z_e, z_q = out["z_e"], out["z_q"]                     # (B, D, s, s)
        recon = self.recon(out["logits"], x).mean()
        commitment = (z_e - z_q.detach()).float().pow(2).flatten(1).sum(1).mean()
        loss = recon + self.config.commitment_beta * commitment
        if not self.config.codebook_ema:                      # move the codes by gradient
            loss = loss + (z_e.detach() - z_q).float().pow(2).flatten(1).sum(1).mean()
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "recon": recon.detach(), "commitment": commitment.detach(),
                "perplexity": perplexity(out["codes"], self.config.codebook_size),
                "codes_reset": float(out["reset"]), "grad_norm": grad}

    def measure_batch(self, x, y, generator) -> dict[str, torch.Tensor]:
        z_e = self.net.encode(x)
        logits = self.net.decode(z_e)
        codes = self.codes(x)
        return {"recon": self.recon(logits, x),
                "mse": (torch.sigmoid(logits.float()) - x).pow(2).flatten(1).mean(1),
                "latent": z_e.flatten(1), "codes": codes.flatten(1)}

    def summarise(self, measured) -> dict[str, float]:
        k, codes = self.config.codebook_size, measured["codes"].long()
        # q(code | x) is one-hot and the prior uniform, so the KL is log K per position.
        kl = codes.shape[1] * math.log(k)
        recon = float(measured["recon"].mean())
        return {"recon": recon, "mse": float(measured["mse"].mean()), "kl": kl,
                "elbo": -(recon + kl), "perplexity": float(perplexity(codes, k)),
                "usage": float(torch.bincount(codes.flatten(), minlength=k).gt(0).float().mean())}

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> code maps (B, s, s) of indices into the codebook."""
        return self.net._quantise_only(self.net.encode(x))[1]

    @torch.no_grad()
    def sample(self, n: int, seed: int, labels: Any = None, source: str = "codes") -> Samples:
        if source == "reconstructions" or labels is not None:
            return super().sample(n, seed, labels)
        # Each position's code drawn independently from how often the training images use it:
        # a unigram prior. A real image model would learn p(codes) (PixelCNN, a transformer).
        train = torch.as_tensor(self.data().train_images, device=self.device)
        counts = F.one_hot(self.codes(train).flatten(1), self.config.codebook_size).sum(0)
        generator = torch.Generator().manual_seed(seed)
        drawn = torch.multinomial(counts.float().cpu(), n, replacement=True,
                                  generator=generator).T              # (n, s*s)
        s = self.net.map_size
        z_q = self.net.codebook.lookup(drawn.reshape(n, s, s).to(self.device))
        images = torch.sigmoid(self.net.decoder(z_q).float())
        return Samples(images=images.clamp(0, 1).cpu().numpy())

    @torch.no_grad()
    def tool_codes(self, ctx, **options) -> ToolResult:
        x = torch.as_tensor(ctx.images, device=self.device)
        codes = self.codes(x)                                 # (B, s, s)
        recon = self.reconstruct(x)
        size = x.shape[-1]
        colours = torch.as_tensor(code_colours(self.config.codebook_size))[codes.cpu()]
        scale = -(-size // codes.shape[-1])
        picture = colours.permute(0, 3, 1, 2).repeat_interleave(scale, 2).repeat_interleave(
            scale, 3)[..., :size, :size]                      # (B, 3, H, W)
        rgb = lambda t: t.float().cpu().expand(-1, 3, -1, -1)  # noqa: E731 - grey -> colour
        grid = torch.stack([rgb(x), picture, rgb(recon)], 1).reshape(-1, 3, size, size)
        values = {f"image_{i}.codes": " / ".join(" ".join(str(int(c)) for c in row)
                                                 for row in m) for i, m in enumerate(codes)}
        return ToolResult(images=grid.numpy(), columns=3, values=values,
                          text=f"columns: input | code map ({codes.shape[-1]}x{codes.shape[-1]} "
                               f"codes of {self.config.codebook_size}) | reconstruction")
