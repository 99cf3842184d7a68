"""The GAN networks: MLP and convolutional generators and discriminators.

Every variant (vanilla, DCGAN, cGAN, WGAN, WGAN-GP, LSGAN, SNGAN, InfoGAN) is built from these
four classes; what differs is switched by arguments:

    conditioning   none | concat | projection   how the discriminator reads the label (the
                   generator always reads a label embedding next to z when conditional)
    spectral_norm  wrap every discriminator layer in spectral normalisation (SNGAN)
    batch_norm     batch norm in the discriminator (the DCGAN paper's; never with a gradient
                   penalty, which is defined per sample)
    minibatch_std  a feature that lets the discriminator see when every fake looks alike

A discriminator returns (logit (B,), features (B, F)); the features feed InfoGAN's Q head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ..core.errors import StudioError


def resolution_steps(size: int) -> int:
    """How many x2 steps lie between the 4x4 base of the conv nets and `size`."""
    steps = math.log2(size) - 2 if size > 0 else -1
    if steps < 1 or not steps.is_integer() or size > 128:
        raise StudioError(f"the conv GANs need square images of 8, 16, 32, 64 or 128 pixels, "
                          f"got {size}; set image_size to one of those")
    return int(steps)


def maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al., 2018): the weight is divided by an estimate of its
    largest singular value (one power iteration per training forward), so the layer is
    1-Lipschitz and the discriminator cannot grow arbitrarily sharp."""
    return _sn(layer) if on else layer


# --- generators ----------------------------------------------------------------------------
def embed_labels(embed: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
    """Labels (B,) -> their embeddings (B, E); or (B, K) weights -> the weighted sum of the K
    embeddings, so a walk can pass from one class (cluster) to another. One-hot weights give
    exactly the label's embedding."""
    return labels.to(embed.weight.dtype) @ embed.weight if labels.dim() == 2 else embed(labels)


class ConvGenerator(nn.Module):
    """DCGAN generator. z (B, z_dim) [+ label (B,)] -> image (B, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, num_classes: int):
        super().__init__()
        steps = resolution_steps(size)
        ch = width * 2 ** steps                               # channels at 4x4
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.project = nn.Sequential(nn.Linear(in_dim, ch * 16, bias=False),
                                     nn.Unflatten(1, (ch, 4, 4)), nn.BatchNorm2d(ch), nn.ReLU())
        blocks = []
        for _ in range(steps):                                # 4 -> 8 -> ... -> S
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        self.body = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, embed_labels(self.embed, labels)], dim=1)    # (B, 2 * z_dim)
        return self.to_image(self.body(self.project(z)))


class MLPGenerator(nn.Module):
    """The original GAN's generator: fully connected layers. z (B, z_dim) [+ label] ->
    image (B, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, hidden: int, num_classes: int):
        super().__init__()
        self.shape = (channels, size, size)
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden * 2), nn.BatchNorm1d(hidden * 2), nn.ReLU(),
            nn.Linear(hidden * 2, channels * size * size), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, embed_labels(self.embed, labels)], dim=1)
        return self.net(z).view(-1, *self.shape)              # (B, C, S, S)


# --- discriminators --------------------------------------------------------------------------
class GroupVariance(torch.autograd.Function):
    """x.var(dim=1, unbiased=False) for x (G, g, ...) with a small g, bit for bit, forward and
    backward, faster on the CPU. Written by hand because torch's CPU kernel (torch 2.13) runs
    Welford's algorithm in float64 one output at a time: 2.1 ms forward and backward for the
    (16, 4, 32, 4, 4) of a digits discriminator's minibatch-std layer, 0.6 ms here (one
    thread, session 23). This runs the same Welford updates, in the same order and precision,
    across every output at once; its backward is torch's own formula for var's gradient.
    tests/test_gans.py holds it equal to torch.var; 300 steps of dcgan, biggan and lapgan
    log the same losses with it as without."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        mean = m2 = torch.zeros((), dtype=torch.float64, device=x.device)
        for k, value in enumerate(x.double().unbind(1)):   # WelfordOps.reduce, torch's order
            delta = value - mean
            mean = mean + delta / (k + 1)
            m2 = m2 + delta * (value - mean)
        return (m2 / x.shape[1]).to(x.dtype)                  # WelfordOps.project

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, = ctx.saved_tensors                                # torch's var_backward
        return (2.0 / x.shape[1]) * grad.unsqueeze(1) * (x - x.mean(1, keepdim=True))


def group_variance(x: torch.Tensor) -> torch.Tensor:
    """(G, g, ...) -> (G, ...): the population variance over dim 1, as torch.var gives it."""
    if x.device.type != "cpu" or x[:, 0].numel() == 1:      # GPU kernels are fast; one output
        return x.var(dim=1, unbiased=False)                   # takes torch's whole-tensor path
    return GroupVariance.apply(x)


def append_minibatch_std(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(B, C, ...) -> (B, C + 1, ...): one more channel holding how much the features vary
    within each group of `group` consecutive images (Karras et al., 2018); with the real half
    of a batch first and the fake half after it, no group mixes the two."""
    b = h.shape[0]
    g = math.gcd(b, group)                                    # consecutive images per group
    groups = h.float().reshape(b // g, g, *h.shape[1:])       # (B/g, g, C, ...)
    std = (group_variance(groups) + 1e-8).sqrt()             # (B/g, C, ...)
    std = std.flatten(1).mean(dim=1).to(h.dtype)              # (B/g,)
    std = std.repeat_interleave(g).reshape(b, 1, *([1] * (h.dim() - 2)))
    return torch.cat([h, std.expand(b, 1, *h.shape[2:])], dim=1)


class ProjectionHead(nn.Module):
    """features (B, F) [+ label] -> logit (B,): a linear head, plus the projection term
    <embed(y), features> of a projection discriminator (Miyato & Koyama, 2018)."""

    def __init__(self, features: int, num_classes: int, projection: bool, sn: bool):
        super().__init__()
        self.linear = maybe_sn(nn.Linear(features, 1), sn)
        self.embed = maybe_sn(nn.Embedding(num_classes, features), sn) if projection else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        logit = self.linear(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(labels) * h).sum(dim=1)
        return logit


def _one_hot_planes(labels: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """labels (B,) -> (B, K, H, W) one-hot planes: the concat-conditioned D's extra channels."""
    one_hot = F.one_hot(labels, num_classes).to(like.dtype)   # (B, K)
    return one_hot[:, :, None, None].expand(-1, -1, *like.shape[2:])


class ConvDiscriminator(nn.Module):
    """Strided convs. image (B, C, S, S) [+ label (B,)] -> (logit (B,), features (B, F))."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int = 0,
                 conditioning: str = "none", batch_norm: bool = False,
                 spectral_norm: bool = False, minibatch_std: bool = False):
        super().__init__()
        steps = resolution_steps(size)
        self.num_classes = num_classes if conditioning != "none" else 0
        self.concat = conditioning == "concat"
        in_ch = channels + (num_classes if self.concat else 0)
        layers = [maybe_sn(nn.Conv2d(in_ch, width, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)]
        ch = width
        for _ in range(steps):                                # S -> ... -> 4
            layers += [maybe_sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batch_norm), spectral_norm),
                       nn.BatchNorm2d(ch * 2) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2)]
            ch *= 2
        self.body = nn.Sequential(*layers)                     # (B, ch, 4, 4)
        self.minibatch_std = minibatch_std
        self.features = (ch + int(minibatch_std)) * 16
        self.head = ProjectionHead(self.features, num_classes, conditioning == "projection",
                                   spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        if self.concat:
            x = torch.cat([x, _one_hot_planes(labels, self.num_classes, x)], dim=1)
        h = self.body(x)
        if self.minibatch_std:
            h = append_minibatch_std(h)
        h = h.flatten(1)                                      # (B, F)
        return self.head(h, labels), h


class MLPDiscriminator(nn.Module):
    """The original GAN's discriminator: fully connected with leaky ReLUs.
    image (B, C, S, S) [+ label (B,)] -> (logit (B,), features (B, F))."""

    def __init__(self, channels: int, size: int, hidden: int, num_classes: int = 0,
                 conditioning: str = "none", spectral_norm: bool = False,
                 minibatch_std: bool = False):
        super().__init__()
        self.num_classes = num_classes if conditioning != "none" else 0
        self.concat = conditioning == "concat"
        in_dim = channels * size * size + (num_classes if self.concat else 0)
        self.body = nn.Sequential(
            maybe_sn(nn.Linear(in_dim, hidden * 2), spectral_norm), nn.LeakyReLU(0.2),
            maybe_sn(nn.Linear(hidden * 2, hidden), spectral_norm), nn.LeakyReLU(0.2))
        self.minibatch_std = minibatch_std
        self.features = hidden + int(minibatch_std)
        self.head = ProjectionHead(self.features, num_classes, conditioning == "projection",
                                   spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        h = x.flatten(1)                                      # (B, C*S*S)
        if self.concat:
            h = torch.cat([h, F.one_hot(labels, self.num_classes).to(h.dtype)], dim=1)
        h = self.body(h)                                      # (B, hidden)
        if self.minibatch_std:
            h = append_minibatch_std(h)
        return self.head(h, labels), h


class QHead(nn.Module):
    """InfoGAN's Q network on the discriminator's features: the posterior over the latent
    codes. features (B, F) -> (category logits (B, K), continuous means (B, M),
    continuous log-stds (B, M))."""

    def __init__(self, features: int, categories: int, continuous: int, hidden: int = 128):
        super().__init__()
        self.sizes = (categories, continuous, continuous)
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, sum(self.sizes)))

    def forward(self, h: torch.Tensor):
        logits, mean, log_std = self.net(h).split(self.sizes, dim=1)
        return logits, mean, log_std.clamp(-4, 2)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv and linear weights ~ N(0, 0.02), batch-norm scales ~
    N(1, 0.02). Label embeddings start small too, so the projection term does not swamp the
    discriminator's logit at step 0. (With spectral norm the weight is `...original`.)"""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        weight = (module.parametrizations.weight.original
                  if hasattr(module, "parametrizations") else module.weight)
        nn.init.normal_(weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
