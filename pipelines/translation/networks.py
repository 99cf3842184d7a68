"""pix2pix's two networks (Isola et al. 2017, appendix 6.1): a U-Net generator and a PatchGAN
discriminator. Images are in [-1, 1] here.

    UNet                 input (B, Ci, S, S) -> output (B, Co, S, S): 4x4 stride-2 convs down
                         to 1x1 (C64-C128-C256-C512-... at width 64), transposed convs back
                         up, each step's encoder features concatenated to the decoder's
                         (the skips carry the input's edges straight across); dropout in the
                         three innermost decoder layers is the only noise
    PatchDiscriminator   (input, output) pair -> (B, 1, P, P) logits, one per overlapping
                         patch: real or translated, judged patch by patch
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import StudioError

MAX_MULTIPLE = 8          # channels stop doubling at 8 x width (the paper's 512 at 64)
DROPOUT_LAYERS = 3        # decoder layers with dropout, innermost first (the paper's 3)


def unet_levels(size: int) -> int:
    """How many x2 steps take a `size` image down to 1x1 (size a power of two, 8 to 256)."""
    levels = math.log2(size) if size > 0 else 0
    if not levels.is_integer() or not 3 <= levels <= 8:
        raise StudioError(f"pix2pix's U-Net needs square images of 8, 16, 32, 64, 128 or 256 "
                          f"pixels, got {size}; read the data at one (paired:PATH?size=32)")
    return int(levels)


class UNet(nn.Module):
    """Encoder: conv(4, stride 2) + batch norm (not on the first and innermost layers) +
    LeakyReLU(0.2); decoder: transposed conv(4, stride 2) + batch norm (+ dropout) + ReLU,
    concatenated with the encoder's features at that size; a last transposed conv to the
    output channels and tanh."""

    def __init__(self, in_channels: int, out_channels: int, size: int, width: int,
                 dropout: float):
        super().__init__()
        levels = unet_levels(size)
        chans = [width * min(2 ** i, MAX_MULTIPLE) for i in range(levels)]   # e1 .. eL
        self.down = nn.ModuleList()
        previous = in_channels
        for i, ch in enumerate(chans):
            normed = 0 < i < levels - 1
            layers: list[nn.Module] = [nn.Conv2d(previous, ch, 4, 2, 1, bias=not normed)]
            if normed:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            self.down.append(nn.Sequential(*layers))
            previous = ch
        self.up = nn.ModuleList()
        for j in range(levels - 1):                        # innermost first: eL -> e(L-1) ...
            i = levels - 1 - j
            c_in = chans[i] if j == 0 else 2 * chans[i]    # after the first, skips are joined
            layers = [nn.ConvTranspose2d(c_in, chans[i - 1], 4, 2, 1, bias=False),
                      nn.BatchNorm2d(chans[i - 1])]
            if j < DROPOUT_LAYERS and dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU())
            self.up.append(nn.Sequential(*layers))
        self.last = nn.Sequential(nn.ConvTranspose2d(2 * chans[0], out_channels, 4, 2, 1),
                                  nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()                                        # the innermost is x itself
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.last(x)


class PatchDiscriminator(nn.Module):
    """conv(4, stride 2) + LeakyReLU, then `layers - 1` more stride-2 convs with batch norm,
    one stride-1 conv with batch norm, and a stride-1 conv to one logit per patch. The
    patch a logit sees (its receptive field) is 16, 34, 70 pixels for 1, 2, 3 stride-2
    layers."""

    def __init__(self, in_channels: int, size: int, width: int, layers: int):
        super().__init__()
        if size // 2 ** layers < 4:
            raise StudioError(f"d_layers={layers} halves {size} px images below 4x4 pixels; "
                              f"use at most {max(1, int(math.log2(size)) - 2)}")
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, layers + 1):
            nxt = width * min(2 ** i, MAX_MULTIPLE)
            stride = 2 if i < layers else 1               # the last of these keeps the size
            seq += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=False), nn.BatchNorm2d(nxt),
                    nn.LeakyReLU(0.2)]
            ch = nxt
        seq.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """(B, Ci, S, S) and (B, Co, S, S) -> (B, 1, P, P) logits."""
        return self.net(torch.cat([inputs, outputs], dim=1))


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: conv weights ~ N(0, 0.02), batch norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# --- CycleGAN's generator (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016) ---------------
class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm (reflection padded), added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
            nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ResnetGenerator(nn.Module):
    """c7s1-w, `downsamplings` stride-2 steps (d2w, d4w: the paper's two), `blocks` residual
    blocks, as many transposed steps back up (u2w, uw), c7s1-out and tanh: the paper's
    generator (w = 64 and 9 blocks at 256 px, 6 at 128). Instance norm throughout, as in the
    paper; the size must be a multiple of 2 ** downsamplings."""

    def __init__(self, in_channels: int, out_channels: int, size: int, width: int, blocks: int,
                 downsamplings: int = 2):
        super().__init__()
        step = 2 ** downsamplings
        if size % step or size < 2 * step:
            raise StudioError(f"CycleGAN's generator halves the pictures {downsamplings} "
                              f"time(s): it needs a size that is a multiple of {step} (at "
                              f"least {2 * step}), got {size}")
        chans = [width * 2 ** i for i in range(downsamplings + 1)]     # w, 2w, 4w, ...
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7),
                                   nn.InstanceNorm2d(width), nn.ReLU()]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.InstanceNorm2d(c_out), nn.ReLU()]
        layers += [ResidualBlock(chans[-1]) for _ in range(blocks)]
        for c_in, c_out in zip(chans[::-1], chans[-2::-1]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(c_out), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
