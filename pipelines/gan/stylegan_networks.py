"""StyleGAN2's generator in miniature (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN"): the networks; the pipeline that trains and samples them is stylegan.py.

Reading order:
    EqualizedLinear, MappingNetwork   z -> w, with the moving average of w for truncation
    ModulatedConv, NoiseInput         a 3x3 conv whose weights a style scales and demodulates
    StyleLayer, ToRGB, Synthesis      constant 4x4 -> ... -> image, toRGB skips summed upwards
    StyleGenerator                    mapping + synthesis, style mixing while training

Styles are indexed as in the official code: the 4x4 conv takes w[0], and each resolution's
toRGB shares its index with the next resolution's first conv, so an S px model has
2 * log2(S / 4) + 2 style layers, coarsest first. Every weight of the generator is stored
N(0, 1) and scaled at run time by He's constant (equalised learning rate, Karras et al. 2018),
so Adam moves every layer at the same relative speed. Self-conditioning's clusters (the
GAN family's option) enter only through the mapping network, so every image, whatever its
cluster, is drawn from the one w space that truncation, mixing and directions work in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .networks import embed_labels, resolution_steps

LEAK_GAIN = math.sqrt(2)   # keeps unit variance through a leaky ReLU (StyleGAN's bias_act gain)


# --- mapping network -------------------------------------------------------------------------
class EqualizedLinear(nn.Module):
    """A linear layer with equalised learning rate. `lr_mult` slows it (the mapping network's
    0.01): the weight is stored divided by it and multiplied back at run time."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mult: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mult))
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.lr_mult, self.activate = lr_mult, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (B, in) -> (B, out)
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mult)
        return F.leaky_relu(x, 0.2) * LEAK_GAIN if self.activate else x


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z (B, z_dim) [+ cluster (B,) or (B, K) weights] -> w (B, w_dim): pixel norm, then an
    MLP. With self-conditioning the cluster's embedding, normalised alike, rides along with
    z as StyleGAN2-ADA's class embedding does. `w_avg` (a buffer, so it is saved with the
    weights) follows the mapped w of training batches: truncation's centre."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mult: float, w_avg_beta: float,
                 clusters: int):
        super().__init__()
        self.embed = nn.Embedding(clusters, z_dim) if clusters else None
        dims = [z_dim * (2 if clusters else 1)] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualizedLinear(a, b, lr_mult=lr_mult, activate=True)
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                track_w_avg: bool = False) -> torch.Tensor:
        z = pixel_norm(z)
        if self.embed is not None:
            z = torch.cat([z, pixel_norm(embed_labels(self.embed, labels))], dim=1)
        w = self.net(z)
        if track_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        return w


# --- synthesis network -----------------------------------------------------------------------
class ModulatedConv(nn.Module):
    """StyleGAN2's convolution (section 2.2): the style s = A(w) scales each input channel of
    the weight, and demodulation divides each output channel by the norm the scaled weight
    would give unit-variance input, which replaces AdaIN's instance norm (the source of the
    droplet artefacts). Computed as scale input, shared conv, scale output: the same numbers
    as per-sample weights (the official code's fused_modconv=False), and one conv per batch.
    x (B, I, H, W), w (B, w_dim) -> (B, O, H, W)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, kernel: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_ch, bias_init=1.0)   # styles start at 1
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)                                       # (B, I)
        weight = self.weight * self.weight_gain                       # (O, I, k, k)
        x = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype),
                     padding=self.padding)
        if self.demodulate:   # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2), per sample and output
            sigma_sq = styles.float().square() @ weight.float().square().sum(dim=(2, 3)).T
            x = x * torch.rsqrt(sigma_sq + 1e-8)[:, :, None, None].to(x.dtype)   # (B, O)
        return x


class NoiseInput(nn.Module):
    """Per-pixel noise (StyleGAN, section 3.2) with a learned strength per channel, starting
    at 0. `noise` (B, 1, H, W) is given when sampling; training draws it fresh."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.size = size

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, self.size, self.size, device=x.device)
        return x + noise.to(x.dtype) * self.strength[None, :, None, None].to(x.dtype)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """x2 upsampling through StyleGAN2's [1, 3, 3, 1] FIR filter (upfirdn2d, up=2): a depthwise
    transposed conv, bilinear in the interior, and on a CPU a third of the time of
    F.interpolate's bilinear backward. (B, C, H, W) -> (B, C, 2H, 2W)."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (taps[:, None] * taps[None]) / 16                 # sums to 4: gain up=2 squared
    kernel = kernel[None, None].expand(x.shape[1], 1, 4, 4)
    return F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=x.shape[1])


class StyleLayer(nn.Module):
    """Modulated conv (after an optional x2 upsampling), noise, bias, leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, size: int, doubles: bool):
        super().__init__()
        self.doubles = doubles                     # upsample x2 first
        self.conv = ModulatedConv(in_ch, out_ch, w_dim, 3)
        self.noise = NoiseInput(out_ch, size)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x, w, noise):                  # (B, I, S/2 or S, ..) -> (B, O, S, S)
        if self.doubles:
            x = upsample(x)
        x = self.noise(self.conv(x, w), noise) + self.bias[None, :, None, None].to(x.dtype)
        return F.leaky_relu(x, 0.2) * LEAK_GAIN


class ToRGB(nn.Module):
    """A modulated 1x1 conv to image channels, not demodulated (section 2.2)."""

    def __init__(self, in_ch: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(in_ch, channels, w_dim, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, w):
        return self.conv(x, w) + self.bias[None, :, None, None].to(x.dtype)


def layer_channels(size: int, highest: int, cap: int = 256) -> list[int]:
    """Channels at 4, 8, ..., size px: `highest` at size, doubled per step down, capped."""
    steps = resolution_steps(size)
    return [min(highest * 2 ** (steps - i), cap) for i in range(steps + 1)]


class Synthesis(nn.Module):
    """Learned constant 4x4 -> image. ws (B, num_ws, w_dim), noises: one (B, 1, r, r) map per
    style layer or None (fresh) -> image (B, C, S, S), unbounded (the output skips sum
    every resolution's toRGB, each earlier one upsampled, StyleGAN2 figure 7)."""

    def __init__(self, channels: int, size: int, w_dim: int, highest: int):
        super().__init__()
        chans = layer_channels(size, highest)
        self.const = nn.Parameter(torch.randn(chans[0], 4, 4))
        self.layers = nn.ModuleList([StyleLayer(chans[0], chans[0], w_dim, 4, False)])
        self.to_rgbs = nn.ModuleList([ToRGB(chans[0], channels, w_dim)])
        for i in range(1, len(chans)):                          # 8, 16, ..., size
            r = 4 * 2 ** i
            self.layers.extend([StyleLayer(chans[i - 1], chans[i], w_dim, r, True),
                                StyleLayer(chans[i], chans[i], w_dim, r, False)])
            self.to_rgbs.append(ToRGB(chans[i], channels, w_dim))
        self.num_ws = len(self.layers) + 1
        # noise="const": one fixed map per layer, stored with the weights (StyleGAN2's
        # noise_const), drawn from its own generator so the training RNG is untouched.
        g = torch.Generator().manual_seed(0)
        for i, layer in enumerate(self.layers):
            self.register_buffer(f"noise_const_{i}", torch.randn(1, 1, layer.noise.size,
                                                                  layer.noise.size, generator=g))

    def noise_sizes(self) -> list[int]:
        return [layer.noise.size for layer in self.layers]

    def forward(self, ws: torch.Tensor, noises: list[torch.Tensor] | None = None):
        x = self.const[None].expand(ws.shape[0], -1, -1, -1).to(ws.dtype)   # (B, C4, 4, 4)
        noises = noises or [None] * len(self.layers)
        x = self.layers[0](x, ws[:, 0], noises[0])
        image = self.to_rgbs[0](x, ws[:, 1])
        for i in range(1, len(self.to_rgbs)):                   # style index 2i-1, 2i, 2i+1
            x = self.layers[2 * i - 1](x, ws[:, 2 * i - 1], noises[2 * i - 1])
            x = self.layers[2 * i](x, ws[:, 2 * i], noises[2 * i])
            image = upsample(image)
            image = image + self.to_rgbs[i](x, ws[:, 2 * i + 1])
        return image


class StyleGenerator(nn.Module):
    """Mapping + synthesis. forward (training, through any DDP wrapper): z (B, z_dim) [+
    cluster (B,)] -> image (B, C, S, S), linear as StyleGAN2's (sampling clamps it to the
    data's [-1, 1]). With `mixing_prob`, that share of the batch takes the styles from a
    crossover layer on (drawn uniformly) from a second z (style mixing regularisation,
    StyleGAN section 3.1). Sampling calls `mapping` and `synthesis` itself."""

    def __init__(self, z_dim: int, w_dim: int, channels: int, size: int, highest: int,
                 mapping_layers: int, mapping_lr_mult: float, w_avg_beta: float, clusters: int):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mult, w_avg_beta,
                                      clusters)
        self.synthesis = Synthesis(channels, size, w_dim, highest)
        self.num_ws = self.synthesis.num_ws

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                mixing_prob: float = 0.0) -> torch.Tensor:
        w = self.mapping(z, labels, track_w_avg=self.training)                # (B, w_dim)
        ws = w[:, None].expand(-1, self.num_ws, -1)                           # (B, L, w_dim)
        if mixing_prob > 0:
            b = z.shape[0]
            w2 = self.mapping(torch.randn_like(z), labels)    # the same cluster
            cutoff = torch.randint(1, self.num_ws, (b,), device=z.device)
            cutoff = torch.where(torch.rand(b, device=z.device) < mixing_prob, cutoff,
                                 torch.full_like(cutoff, self.num_ws))
            second = torch.arange(self.num_ws, device=z.device)[None] >= cutoff[:, None]
            ws = torch.where(second[:, :, None], w2[:, None], ws)
        return self.synthesis(ws)
