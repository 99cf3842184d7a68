"""SRResNet and the SRGAN discriminator (Ledig et al. 2017, "Photo-realistic single image
super-resolution using a generative adversarial network", figure 4), at a width and depth
that train on a CPU: the paper's are 64 channels and 16 residual blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """conv 3x3 - BN - PReLU - conv 3x3 - BN, plus the input (figure 4's B blocks)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Low-resolution (B, C, s, s) in [-1, 1] -> (B, C, 4s, 4s): a 9x9 conv and PReLU, the
    residual blocks, a conv + BN with a skip over all the blocks, then two sub-pixel
    upsamplings (conv to 4x the channels, PixelShuffle(2), PReLU: 2x each, 4x in all) and a 9x9
    conv to the image's channels. The output is left linear (the paper's is tanh); sampling
    clamps it. With `bicubic_skip` the network's output is added to bicubic upsampling of its
    input (global residual learning, as in VDSR, Kim et al. 2016), its last conv starting
    at zero, so a fresh network is exactly bicubic and learns only what bicubic misses."""

    def __init__(self, channels: int, width: int, blocks: int, bicubic_skip: bool = False):
        super().__init__()
        self.bicubic_skip = bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.join = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                          nn.PReLU(width)) for _ in range(2)])
        self.tail = nn.Conv2d(width, channels, 9, padding=4)
        if bicubic_skip:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)                            # (B, W, s, s)
        h = h + self.join(self.blocks(h))           # the long skip
        out = self.tail(self.upsample(h))           # (B, C, 4s, 4s)
        if self.bicubic_skip:
            out = out + F.interpolate(x.float(), scale_factor=4, mode="bicubic",
                                      align_corners=False).to(out.dtype)
        return out


class Discriminator(nn.Module):
    """Figure 4's discriminator: pairs of 3x3 convs (stride 1, then 2) with BN (not on the
    first) and LeakyReLU(0.2), the width doubling per pair (the paper: 64 to 512, four pairs);
    then a dense layer of 1,024 (here 16 x width) units, LeakyReLU and one logit. Down to
    4x4 at most (so 8 px images get one strided pair), averaged over positions before the
    dense layers so that any input size fits."""

    def __init__(self, channels: int, image_size: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        size, w_in, w = image_size, width, width
        for pair in range(4):
            stride = 2 if size > 4 else 1
            w = width * 2 ** pair
            if pair:   # the first pair's stride-1 conv is the input conv above
                layers += [nn.Conv2d(w_in, w, 3, padding=1), nn.BatchNorm2d(w),
                           nn.LeakyReLU(0.2)]
                w_in = w
            layers += [nn.Conv2d(w_in, w, 3, stride=stride, padding=1), nn.BatchNorm2d(w),
                       nn.LeakyReLU(0.2)]
            w_in, size = w, (size + stride - 1) // stride
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(w, 16 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(16 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3))).squeeze(1)     # (B,) logits
