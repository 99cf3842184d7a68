"""BigGAN's networks in miniature (Brock, Donahue & Simonyan 2019); the pipeline that trains and
samples them is biggan.py.

Reading order:
    orthogonal_penalty      BigGAN's modified orthogonal regularisation of G's weights
    ConditionalBatchNorm    batch norm whose gain and bias come from (class embedding, z chunk)
    SelfAttention           SAGAN's attention block (Zhang et al. 2019), one in G and one in D
    GeneratorBlock, Generator, DiscriminatorBlock, Discriminator: the residual nets
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import StudioError
from .networks import ProjectionHead  # linear + <embed(y), features> (Miyato 2018)
from .networks import append_minibatch_std, embed_labels, maybe_sn, resolution_steps


def orthogonal_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """BigGAN's orthogonal regularisation (section 3.1): sum over weights of
    ||W W^T * (1 - I)||_F^2 with W flattened to (out, in). Only the off-diagonal terms: filters
    are pushed apart, their norms are left free (the original form, ||W W^T - I||, also pinned
    the norms and hurt, the paper found)."""
    total = weights[0].new_zeros(())
    for w in weights:
        flat = w.flatten(1)                                         # (out, in)
        gram = flat @ flat.t()                                      # (out, out)
        total = total + (gram * (1 - torch.eye(len(gram), device=gram.device))).pow(2).sum()
    return total


def conv(cin: int, cout: int, k: int, sn: bool) -> nn.Module:
    return maybe_sn(nn.Conv2d(cin, cout, k, 1, k // 2), sn)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine; gain 1 + g(cond) and bias b(cond) per sample, with
    g, b linear in cond = [shared class embedding, this block's z chunk] (BigGAN section 3)."""

    def __init__(self, channels: int, cond_dim: int, sn: bool):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = maybe_sn(nn.Linear(cond_dim, channels, bias=False), sn)
        self.bias = maybe_sn(nn.Linear(cond_dim, channels, bias=False), sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(cond)[:, :, None, None]                # (B, C, 1, 1)
        return self.norm(x) * gain + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019), as BigGAN uses it: every position attends to
    every other (keys and values max-pooled to a quarter); the output enters through a gain
    gamma that starts at 0, so the block begins as the identity. (B, C, H, W) -> same."""

    def __init__(self, channels: int, sn: bool):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = conv(channels, inner, 1, sn)
        self.key = conv(channels, inner, 1, sn)
        self.value = conv(channels, max(1, channels // 2), 1, sn)
        self.out = conv(max(1, channels // 2), channels, 1, sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)                                # (B, c', HW)
        k = F.max_pool2d(self.key(x), 2).flatten(2)                 # (B, c', HW/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)               # (B, c/2, HW/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)         # (B, HW, HW/4)
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)            # (B, c/2, H, W)
        return x + self.gamma * self.out(o)


# --- the generator ---------------------------------------------------------------------------
class GeneratorBlock(nn.Module):
    """BigGAN's up-block: CBN, ReLU, x2 nearest upsampling, conv3, CBN, ReLU, conv3; a 1x1 conv
    on the upsampled input is the shortcut. (B, cin, H, W) -> (B, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, sn: bool):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_dim, sn)
        self.bn2 = ConditionalBatchNorm(cout, cond_dim, sn)
        self.conv1, self.conv2 = conv(cin, cout, 3, sn), conv(cout, cout, 3, sn)
        self.shortcut = conv(cin, cout, 1, sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


def generator_plan(size: int) -> tuple[int, int]:
    """(start size, up-blocks): from 4x4 (2x2 for 8 px images, so that there are always two
    blocks for z to be split across and a middle resolution for attention) up to `size`."""
    resolution_steps(size)                                          # 8..128, a power of two
    start = 4 if size >= 16 else 2
    return start, int(math.log2(size // start))


class Generator(nn.Module):
    """z (B, z_dim), labels (B,) [or (B, K) class weights] -> images (B, C, S, S) in [-1, 1].
    Hierarchical z: z is cut into 1 + blocks chunks; the first makes the start map, each other
    one joins the shared class embedding as that block's batch-norm condition."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, num_classes: int,
                 shared_dim: int, hierarchical: bool, attention_size: int, sn: bool):
        super().__init__()
        self.start, blocks = generator_plan(size)
        chunk = z_dim // (blocks + 1) if hierarchical else 0
        if hierarchical and chunk < 1:
            raise StudioError(f"hierarchical z splits z into {blocks + 1} chunks; set z_dim to "
                              f"at least {blocks + 1}")
        self.chunks = [z_dim - chunk * blocks] + [chunk] * blocks   # the first takes the rest
        self.shared = nn.Embedding(num_classes, shared_dim)
        ch = width * 2 ** blocks                                    # channels at the start
        self.project = maybe_sn(nn.Linear(self.chunks[0], ch * self.start ** 2), sn)
        self.blocks, self.attention = nn.ModuleList(), nn.ModuleDict()
        for i in range(blocks):                                     # start -> ... -> S
            self.blocks.append(GeneratorBlock(ch, ch // 2, shared_dim + chunk, sn))
            ch //= 2
            if self.start * 2 ** (i + 1) == attention_size:
                self.attention[str(i)] = SelfAttention(ch, sn)
        self.to_image = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), conv(ch, channels, 3, sn),
                                      nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        zs = z.split(self.chunks, dim=1)                            # (B, chunk) each
        y = embed_labels(self.shared, labels)                       # (B, shared_dim)
        h = self.project(zs[0]).view(len(z), -1, self.start, self.start)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([y, zs[i + 1]], dim=1))          # (B, ch/2, 2H, 2W)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self.to_image(h)


# --- the discriminator -----------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    """BigGAN's down-block: ReLU, conv3, ReLU, conv3, 2x2 average pooling; a 1x1 conv shortcut.
    The first block takes the image itself, so it has no ReLU in front and pools before its
    shortcut conv. (B, cin, H, W) -> (B, cout, H/2, W/2) (H, W when `down` is off)."""

    def __init__(self, cin: int, cout: int, sn: bool, first: bool, down: bool = True):
        super().__init__()
        self.conv1, self.conv2 = conv(cin, cout, 3, sn), conv(cout, cout, 3, sn)
        self.shortcut = conv(cin, cout, 1, sn) if cin != cout or down else nn.Identity()
        self.first, self.down = first, down

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv2(F.relu(self.conv1(x if self.first else F.relu(x)))))
        skip = self.shortcut(self.pool(x)) if self.first else self.pool(self.shortcut(x))
        return h + skip


class Discriminator(nn.Module):
    """images (B, C, S, S), labels (B,) -> (logit (B,), features (B, F)): down-blocks to 4x4,
    one more block there, ReLU and a sum over positions, then a linear and a projection term."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int,
                 attention_size: int, sn: bool, minibatch_std: bool):
        super().__init__()
        blocks, ch = [], width
        for i in range(resolution_steps(size)):                     # S -> ... -> 4
            blocks.append(DiscriminatorBlock(channels if i == 0 else ch, ch * 2 if i else ch,
                                             sn, first=i == 0))
            ch = ch * 2 if i else ch
            if size // 2 ** (i + 1) == attention_size:
                blocks.append(SelfAttention(ch, sn))
        blocks.append(DiscriminatorBlock(ch, ch, sn, first=False, down=False))
        self.body = nn.Sequential(*blocks)                          # (B, ch, 4, 4)
        self.minibatch_std = minibatch_std
        self.features = ch + int(minibatch_std)
        self.head = ProjectionHead(self.features, num_classes, projection=True, sn=sn)

    def forward(self, x: torch.Tensor, labels: torch.Tensor):
        h = F.relu(self.body(x))
        if self.minibatch_std:
            h = append_minibatch_std(h)
        h = h.sum(dim=(2, 3))                                       # (B, F)
        return self.head(h, labels), h
