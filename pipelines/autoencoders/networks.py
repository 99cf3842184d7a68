"""Encoders and decoders, MLP or convolutional, and the two nets built from them: `AENet`
(a deterministic code) and `VAENet` (a Gaussian posterior). The VQ-VAE's net is in vqvae.py.

A latent is either flat, (B, D), or a map of vectors, (B, D, s, s) (the VQ-VAE's code map).
Decoders return logits; images are sigmoid(logits) in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import StudioError
from .latent_mixture import LatentMixture

MAX_CHANNELS = 128


def halvings(size: int, smallest: int = 4, most: int | None = None) -> int:
    """How many stride-2 convs take `size` down while it stays even and >= `smallest`."""
    k = 0
    while size % 2 == 0 and size // 2 >= smallest and (most is None or k < most):
        size, k = size // 2, k + 1
    return k


def _channels(width: int, level: int) -> int:
    return min(width * 2 ** level, MAX_CHANNELS)


class Encoder(nn.Module):
    """image (B, C, S, S) [+ one-hot label (B, K)] -> (B, out) for a flat latent, or
    (B, out, s, s) when `map_size` s is given."""

    def __init__(self, arch: str, channels: int, size: int, out: int, *, hidden: int,
                 depth: int, width: int, num_classes: int = 0, map_size: int | None = None):
        super().__init__()
        self.map_size = map_size
        if arch == "mlp":
            layers: list[nn.Module] = [nn.Flatten()]
            features = channels * size * size
            for _ in range(depth):
                layers += [nn.Linear(features, hidden), nn.ReLU()]
                features = hidden
            self.trunk = nn.Sequential(*layers)               # (B, hidden)
            if map_size:
                self.head = nn.Sequential(nn.Linear(hidden, out * map_size ** 2),
                                          nn.Unflatten(1, (out, map_size, map_size)))
            else:
                self.head = nn.Linear(hidden + num_classes, out)
            return
        downs = halvings(size, smallest=map_size or 4, most=None)
        if map_size and size // 2 ** downs != map_size:
            raise StudioError(f"a conv encoder cannot take {size} px down to a {map_size}x"
                              f"{map_size} map by halving; try another downsample")
        layers = [nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU()]
        for i in range(downs):                                # S -> S/2 -> ... -> s
            layers += [nn.Conv2d(_channels(width, i), _channels(width, i + 1), 4, 2, 1), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)                   # (B, ch, s, s)
        ch, s = _channels(width, downs), size // 2 ** downs
        if map_size:
            self.head = nn.Conv2d(ch, out, 1)
        else:
            self.trunk.append(nn.Flatten())                   # (B, ch * s * s)
            self.head = nn.Linear(ch * s * s + num_classes, out)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.trunk(x)
        if y is not None:                                     # the CVAE's label, one-hot
            h = torch.cat([h, y], dim=1)
        return self.head(h)


class Decoder(nn.Module):
    """(B, D) [+ one-hot label (B, K)], or a map (B, D, s, s), -> logits (B, C, S, S)."""

    def __init__(self, arch: str, channels: int, size: int, latent: int, *, hidden: int,
                 depth: int, width: int, num_classes: int = 0, map_size: int | None = None):
        super().__init__()
        if arch == "mlp":
            features = latent * map_size ** 2 if map_size else latent + num_classes
            layers: list[nn.Module] = [nn.Flatten()] if map_size else []
            for _ in range(depth):
                layers += [nn.Linear(features, hidden), nn.ReLU()]
                features = hidden
            layers += [nn.Linear(hidden, channels * size * size),
                       nn.Unflatten(1, (channels, size, size))]
            self.net = nn.Sequential(*layers)
            return
        downs = halvings(size, smallest=map_size or 4)
        ch, s = _channels(width, downs), size // 2 ** downs
        if map_size:
            layers = [nn.Conv2d(latent, ch, 3, 1, 1), nn.ReLU()]
        else:
            layers = [nn.Linear(latent + num_classes, ch * s * s), nn.ReLU(),
                      nn.Unflatten(1, (ch, s, s))]
        for i in reversed(range(downs)):                      # s -> 2s -> ... -> S
            layers += [nn.ConvTranspose2d(_channels(width, i + 1), _channels(width, i), 4, 2, 1),
                       nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            z = torch.cat([z, y], dim=1)
        return self.net(z)


def _nets(config, info: dict, out: int, num_classes: int = 0) -> tuple[Encoder, Decoder]:
    c, s = info["channels"], info["image_size"]
    kw = dict(hidden=config.hidden, depth=config.depth, width=config.width,
              num_classes=num_classes)
    return (Encoder(config.architecture, c, s, out, **kw),
            Decoder(config.architecture, c, s, config.latent_dim, **kw))


class AENet(nn.Module):
    """A deterministic autoencoder: x -> z = act(encoder(x)) -> logits.

    `code` is the code's activation: linear, or sigmoid (the sparse and contractive AEs,
    whose penalties are defined on units in (0, 1))."""

    def __init__(self, config, info: dict, code: str = "linear"):
        super().__init__()
        self.encoder, self.decoder = _nets(config, info, config.latent_dim)
        self.code = code

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(x)                                   # (B, D)
        return torch.sigmoid(h) if self.code == "sigmoid" else h

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)                                # (B, C, S, S) logits

    def forward(self, x: torch.Tensor, jacobian: bool = False) -> dict[str, torch.Tensor]:
        # Training goes through forward() so that a DistributedDataParallel wrapper sees it.
        z = self.encode(x)
        out = {"z": z, "logits": self.decode(z)}
        if jacobian:
            from .losses import jacobian_frobenius2
            out["jacobian_penalty"] = jacobian_frobenius2(self.encode, x)   # (B,)
        return out


class VAENet(nn.Module):
    """A VAE: q(z|x[,y]) = N(mu, diag(exp(logvar))), p(x|z[,y]) from the decoder's logits."""

    # Files written before the VAE fitted a mixture lack it: they load unfitted.
    optional_state = ("prior.",)

    def __init__(self, config, info: dict, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.encoder, self.decoder = _nets(config, info, 2 * config.latent_dim, num_classes)
        # Where samples are drawn from once fitted (latent_mixture.py); the ELBO uses N(0, I).
        self.prior = LatentMixture(max(1, num_classes), config.prior_components,
                                   config.latent_dim)

    def onehot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        if y.is_floating_point():                             # already (B, K): soft labels
            return y
        return F.one_hot(y, self.num_classes).float()         # (B, K)

    def posterior(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x, self.onehot(y)).chunk(2, dim=1)   # (B, D) each
        return mu, logvar.clamp(-20, 10)   # why: exp(logvar) must neither vanish nor overflow

    def encode(self, x: torch.Tensor, y=None) -> torch.Tensor:
        return self.posterior(x, y)[0]                        # the posterior mean, (B, D)

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        return self.decoder(z, self.onehot(y))                # (B, C, S, S) logits

    def forward(self, x: torch.Tensor, y=None, eps: torch.Tensor | None = None):
        """One reparameterised sample z = mu + sigma * eps; eps ~ N(0, I) unless given."""
        mu, logvar = self.posterior(x, y)
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.decode(z, y)}
