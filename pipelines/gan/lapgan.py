"""LAPGAN: a Laplacian pyramid of GANs (Denton, Chintala, Szlam & Fergus, 2015).

An image I of side S is split into a Laplacian pyramid: its coarse version I_0 (side B, the
`base_size`) and, for each finer level k = 1 .. K (sides 2B, 4B, ..., S), the band-pass detail
h_k = I_k - up(I_{k-1}) that upsampling the coarser image misses (I_{k-1} = down(I_k)). The
model draws that pyramid coarse to fine:

    I_0 = G_0(z_0)                                   an ordinary GAN: DCGAN's nets from 8x8
                                                     up, fully connected ones (the paper's
                                                     CIFAR-10 G_0 and D_0) at 4x4 or on ask
    I_k = up(I_{k-1}) + G_k(z_k, up(I_{k-1}))        a conditional GAN per finer level: its
                                                     generator draws only the residual

and D_k judges I_k (the upsampled coarser image plus a residual) next to the coarser image it
was conditioned on, l_k = up(I_{k-1}), as a second set of channels.

Training: every level at every step, each on the real image's own pyramid, as in the paper:
level k's generator is conditioned on up(real I_{k-1}), never on a coarser generator's output,
so the levels are independent GANs that share a batch. Their losses are summed and each net
sees only its own level's terms, so one Adam step over all levels is the K + 1 separate
steps the paper makes (Adam scales each weight's step by its own gradient's statistics; a
trainer grad_clip, off by default, would couple them through the shared norm). The
alternative, level by level, would spend the early minutes of a CPU run on one level while
the others wait; joint training gives every level the whole run. The coarsest GAN's nets are
small, so it draws its own, bigger batch of coarse training images (`coarse_batch`) apart from
the finer levels' batch: the same independence, more images for the cheap level. An L1 term
(`reconstruction`, pix2pix's) can pull each finer level towards the real image's own detail.
A conditional level learns to ignore its noise (its coarser image says almost everything), so
each finer generator also minimises Mao et al.'s (2019) mode-seeking term, which rewards
residuals that differ when the noise does (`mode_seeking`).

Reading order: the pyramid (down, up, the round trip), the mode-seeking term, the networks
(a level's generator, the pyramid generator, which splits one noise vector per image into
every level's noise and samples coarse to fine, and the pyramid discriminator), then the
pipeline: build, latents, the training step, the `levels` tool. The GAN base class
(pipeline.py) keeps seeds, truncation, walks (slerp of the whole noise vector: every level's
noise moves at once), EMA of the generator (all levels are one module), self-conditioning,
warnings and evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import ToolResult
from ..core.errors import StudioError
from . import clusters as self_conditioning
from . import losses as L
from .lapgan_spec import LAPGAN as LAPGAN_SPEC
from .networks import (ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator,
                       dcgan_init, embed_labels)
from .pipeline import GAN, truncated_normal


# --- the Laplacian pyramid -----------------------------------------------------------------
def down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> (B, C, S/2, S/2): 2x2 averages (the low-pass step)."""
    return F.avg_pool2d(x, 2)


def up(x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> (B, C, 2S, 2S): bilinear, smooth where nearest would draw blocks."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """The image at every level's size, coarse to fine: [I_0, ..., I_K] with I_K = image."""
    out = [image]
    for _ in range(levels - 1):
        out.insert(0, down(out[0]))
    return out


def laplacian_pyramid(image: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """image -> (coarse I_0, residuals [h_1, ..., h_K]) with h_k = I_k - up(I_{k-1})."""
    g = gaussian_pyramid(image, levels)
    return g[0], [fine - up(coarse) for coarse, fine in zip(g, g[1:])]


def reconstruct(coarse: torch.Tensor, residuals: list[torch.Tensor]) -> torch.Tensor:
    """The inverse: I_k = up(I_{k-1}) + h_k, from I_0 up to the finest level."""
    for h in residuals:
        coarse = up(coarse) + h
    return coarse


def mode_seeking_loss(g: nn.Module, cond: torch.Tensor, residual: torch.Tensor,
                      noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The mode-seeking term (losses.mode_seeking) of a finer level, with a second noise drawn
    for the same coarser image: small when the residual follows the noise."""
    other_noise = torch.randn_like(noise)
    return L.mode_seeking(residual, g(cond, other_noise, labels), noise, other_noise)


# --- the networks --------------------------------------------------------------------------
class LevelGenerator(nn.Module):
    """A finer level's G_k: three 3x3 convolutions on the upsampled coarser image, a noise
    plane and, when conditional, a learned label plane (the paper's CIFAR-10 G_1 and G_2 read
    the noise and the class the same way, as extra planes). Fully convolutional, so detail is
    drawn from the neighbourhood it belongs to.
    coarse_up (B, C, S, S), noise (B, 1, S, S) [+ labels] -> residual (B, C, S, S)."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int):
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(num_classes, size * size) if num_classes else None
        in_ch = channels + 1 + (1 if num_classes else 0)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, channels, 3, 1, 1))            # unbounded: residuals span [-2, 2]

    def forward(self, coarse_up: torch.Tensor, noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        planes = [coarse_up, noise]
        if self.embed is not None:
            planes.append(embed_labels(self.embed, labels).view(-1, 1, self.size, self.size))
        return self.net(torch.cat(planes, dim=1))


class PyramidGenerator(nn.Module):
    """G_0 and every G_k as one module (so one EMA and one optimiser cover them).
    z (B, z_dim + sum_k S_k^2): z_0, then each finer level's noise plane, flattened."""

    def __init__(self, base: nn.Module, levels: list[LevelGenerator], z_dim: int):
        super().__init__()
        self.base, self.levels, self.z_dim = base, nn.ModuleList(levels), z_dim

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, D) -> z_0 (B, z_dim) and the planes [(B, 1, S_k, S_k)] coarse to fine."""
        sizes = [g.size ** 2 for g in self.levels]
        z0, *flat = z.split([self.z_dim, *sizes], dim=1)
        return z0, [f.reshape(-1, 1, g.size, g.size) for f, g in zip(flat, self.levels)]

    def pyramid(self, z: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Sampling, coarse to fine: ([I_0, ..., I_K], [h_1, ..., h_K]) in [-1, 1] units. Each
        level's image is clamped to [-1, 1] before the next reads it: every level was trained
        on real coarser images, which never leave that range."""
        z0, planes = self.split(z)
        images, residuals = [self.base(z0, labels).clamp(-1, 1)], []
        for g, noise in zip(self.levels, planes):
            coarse_up = up(images[-1])
            residuals.append(g(coarse_up, noise, labels))
            images.append((coarse_up + residuals[-1]).clamp(-1, 1))
        return images, residuals

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.pyramid(z, labels)[0][-1]               # (B, C, S, S)


class PyramidDiscriminator(nn.Module):
    """D_0 on the coarse image and a D_k per finer level, which reads the image (the
    upsampled coarser one plus a residual) beside the coarser one it was conditioned on:
    image (B, C, S, S), coarse_up (B, C, S, S) [+ labels] -> (logit (B,), features)."""

    def __init__(self, base: nn.Module, levels: list[nn.Module]):
        super().__init__()
        self.base, self.levels = base, nn.ModuleList(levels)

    def judge(self, level: int, image: torch.Tensor, coarse_up: torch.Tensor | None,
              labels: torch.Tensor | None):
        if level == 0:
            return self.base(image, labels)
        return self.levels[level - 1](torch.cat([image, coarse_up], dim=1), labels)


# --- the pipeline --------------------------------------------------------------------------
class LAPGAN(GAN):
    """Denton et al. (2015): a Laplacian pyramid of GANs, sampled coarse to fine."""
    spec = LAPGAN_SPEC

    def level_sizes(self) -> list[int]:
        """The side of every level, coarse to fine: e.g. [4, 8] on digits, [8, 16, 32] at 32 px."""
        s = self.info["image_size"]
        base = self.config.base_size or (4 if s <= 16 else 8)
        if base < 4 or base >= s or not math.log2(s // base).is_integer() or s % base:
            raise StudioError(f"base_size {base} does not fit {s} px images: it must be a power "
                              f"of two, 4 or more, that halves down from {s}; set base_size=0 "
                              f"to let the model pick")
        return [base * 2 ** k for k in range(int(math.log2(s // base)) + 1)]

    def check_config(self) -> None:
        super().check_config()
        if self.info_dims:
            raise StudioError("LAPGAN has no InfoGAN codes; set info_categories=0 and "
                              "info_continuous=0")
        self.level_sizes()                                    # refuses a bad base_size

    def build(self) -> dict[str, nn.Module]:
        self.check_config()
        c, info = self.config, self.info
        ch, k, sizes = info["channels"], self.condition_count, self.level_sizes()
        d_cond = c.conditioning if self.num_classes else "projection" if k else "none"
        batch_norm = c.d_norm == "batch" or (c.d_norm == "auto" and info["image_size"] >= 32)
        d_args = dict(spectral_norm=c.spectral_norm, minibatch_std=c.minibatch_std)
        base = sizes[0]
        # The conv nets start at 8x8; a 4x4 coarsest image (digits) takes the paper's MLP nets.
        if c.architecture == "conv" and base >= 8:
            w = c.width or 32
            g0 = ConvGenerator(c.z_dim, ch, base, w, k)
            d0 = ConvDiscriminator(ch, base, w, k, d_cond, batch_norm=batch_norm, **d_args)
        else:
            g0 = MLPGenerator(c.z_dim, ch, base, c.hidden, k)
            d0 = MLPDiscriminator(ch, base, c.hidden, k, d_cond, **d_args)
        # width^2 * S^2 held constant (64 at 8 px, 32 at 16, 16 at 32): each level costs the same.
        g_levels = [LevelGenerator(ch, s, c.level_width or max(8, 512 // s), k)
                    for s in sizes[1:]]
        # A level's D reads the image and its coarser one: 2C channels; its width halves at
        # each finer level too (32 at 8 px, 16 at 16, 8 at 32).
        d_levels = [ConvDiscriminator(2 * ch, s, c.width or max(8, 256 // s), k, d_cond,
                                      batch_norm=batch_norm, **d_args)
                    for s in sizes[1:]]
        modules = {"generator": PyramidGenerator(g0, g_levels, c.z_dim),
                   "discriminator": PyramidDiscriminator(d0, d_levels)}
        for module in modules.values():
            module.apply(dcgan_init)
        return modules

    @property
    def noise_dims(self) -> int:
        """Numbers of noise per image: z_0 and one plane per finer level."""
        return self.config.z_dim + sum(s * s for s in self.level_sizes()[1:])

    # --- sampling: the base class's sample / interpolate / evaluate run on these latents -----
    def latents(self, seeds: list[int], truncation: float = 0.0, codes: str = ""
                ) -> tuple[torch.Tensor, None, torch.Tensor | None]:
        """One noise vector per seed holding every level's noise, (N, noise_dims), drawn from
        that seed's own generator (then its cluster, when self-conditioned): image i of
        sample(n, seed) is seed + i's alone, and a walk slerps every level's noise together."""
        if codes.strip():
            raise StudioError("LAPGAN has no InfoGAN codes; leave codes empty")
        zs, clusters = [], []
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))      # never the training RNG
            zs.append(truncated_normal((1, self.noise_dims), g, truncation))
            if self.clusters:
                clusters.append(self_conditioning.draw(g, self.clusters))
        return torch.cat(zs), None, torch.cat(clusters) if clusters else None

    # --- training ---------------------------------------------------------------------------
    def coarse_images(self) -> int:
        """Coarsest-level images per step drawn apart from the batch; 0: the batch's own."""
        c = self.config
        if c.coarse_batch:
            return max(0, c.coarse_batch)
        fully_connected = c.architecture == "mlp" or self.level_sizes()[0] < 8
        return 64 if fully_connected else 0

    def train_tensors(self, data) -> dict[str, torch.Tensor]:
        """The trainer's tensors; with `coarse_batch`, also every training image's coarsest
        level and its label, kept here for the coarse GAN's own draws (a few numbers each:
        16 per digit, 192 per 32 px picture)."""
        tensors = super().train_tensors(data)
        if self.coarse_images():
            images = tensors["images"].float() * 2 - 1
            coarse = torch.cat([gaussian_pyramid(chunk, len(self.level_sizes()))[0]
                                for chunk in images.split(1024)])
            self.coarse_pool = (coarse, tensors["labels"])
        return tensors

    def draw_coarse(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n coarsest-level training images, drawn with replacement by the training RNG (so
        a resumed run draws the same), and their labels when conditioned."""
        coarse, labels = self.coarse_pool
        if coarse.device != torch.device(device):
            self.coarse_pool = coarse, labels = coarse.to(device), labels.to(device)
        idx = torch.randint(len(coarse), (n,), device=device)
        return coarse[idx], labels[idx] if self.condition_count else None

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        real = batch["images"] * 2 - 1                        # (B, C, S, S) in [-1, 1]
        b, device = real.shape[0], real.device
        labels = batch["labels"] if self.condition_count else None
        reals = gaussian_pyramid(real, len(G.levels) + 1)    # [I_0 .. I_K], real
        z0, planes = G.split(torch.randn(b, self.noise_dims, device=device))
        # Each level's condition is the real image's own coarser level (the paper's training).
        conds = [None] + [up(r) for r in reals[:-1]]
        level_labels = [labels] * len(reals)
        coarse_count = self.coarse_images()
        if coarse_count:               # the coarsest GAN on its own, bigger batch
            reals[0], level_labels[0] = self.draw_coarse(coarse_count, device)
            z0 = torch.randn(coarse_count, c.z_dim, device=device)
        fakes = [G.base(z0, level_labels[0])] + [cond + g(cond, noise, labels) for g, cond, noise
                                                 in zip(G.levels, conds[1:], planes)]

        logs: dict[str, torch.Tensor] = {}
        probability = c.loss in L.PROBABILITY_LOSSES
        loss_d, d_reals, d_fakes, spreads = 0.0, [], [], []
        for k, (x, fake, cond, y) in enumerate(zip(reals, fakes, conds, level_labels)):
            d_real = D.judge(k, self.noisy(x, ctx.step), cond, y)[0].float()
            d_fake = D.judge(k, self.noisy(fake.detach(), ctx.step), cond, y)[0].float()
            loss_d = loss_d + L.discriminator_loss(c.loss, d_real, d_fake, 1 - c.label_smoothing)
            if c.gradient_penalty > 0:
                critic = lambda image, y, k=k, cond=cond: D.judge(k, image, cond, y)  # noqa: E731
                gp = L.gradient_penalty(critic, x, fake, y, torch.rand(len(x), device=device))
                loss_d = loss_d + c.gradient_penalty * gp
            d_reals.append((torch.sigmoid(d_real) if probability else d_real).mean().detach())
            d_fakes.append((torch.sigmoid(d_fake) if probability else d_fake).mean().detach())
            # A level's variety is its own part's: the coarse image, or the residual (the
            # upsampled real condition would make any residual look varied).
            spreads.append(L.diversity_ratio(fake, x) if k == 0 else
                           L.diversity_ratio(fake - cond, x - cond))
            logs.update({f"d_real_{k}": d_reals[-1], f"d_fake_{k}": d_fakes[-1],
                         f"diversity_{k}": spreads[-1]})
        logs["grad_norm_d"] = ctx.backward_step(loss_d, "d", "discriminator")
        if c.weight_clip > 0:
            L.clip_weights(D, c.weight_clip)
        # The family's alarms read d_real, d_fake and diversity: the levels' means, and the
        # least varied level (one collapsed level is a collapsed model).
        logs.update(loss_d=loss_d.detach(), d_real=torch.stack(d_reals).mean(),
                    d_fake=torch.stack(d_fakes).mean(), diversity=torch.stack(spreads).min())

        if (ctx.step + 1) % c.n_critic:
            return logs                                       # critic-only step
        loss_g = sum(L.generator_loss(c.loss, D.judge(k, self.noisy(fake, ctx.step), cond,
                                                      y)[0].float())
                     for k, (fake, cond, y) in enumerate(zip(fakes, conds, level_labels)))
        if c.mode_seeking > 0:
            loss_ms = sum(mode_seeking_loss(g, cond, fake - cond, noise, labels)
                          for g, cond, fake, noise in zip(G.levels, conds[1:], fakes[1:], planes))
            logs["loss_mode_seeking"] = loss_ms.detach()
            loss_g = loss_g + c.mode_seeking * loss_ms
        if c.reconstruction > 0:
            loss_rec = sum((fake - x).abs().mean() for fake, x in zip(fakes[1:], reals[1:]))
            logs["loss_reconstruction"] = loss_rec.detach()
            loss_g = loss_g + c.reconstruction * loss_rec
        logs["grad_norm_g"] = ctx.backward_step(loss_g, "g", "generator")
        logs["loss_g"] = loss_g.detach()
        return logs

    # --- the levels tool --------------------------------------------------------------------
    @torch.no_grad()
    def pyramid_images(self, seeds: list[int], truncation: float = 0.0
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each seed's sampled pyramid: ([I_0 .. I_K] each (N, C, S_k, S_k) in [0, 1],
        [h_1 .. h_K] each (N, C, S_k, S_k) in [-1, 1] units); I_K is sample()'s image."""
        z, _, clusters = self.latents(seeds, truncation)
        G = self.modules["generator"]
        device = next(G.parameters()).device
        y = self.class_labels(len(seeds), None)
        y = clusters if clusters is not None else y
        images, residuals = G.pyramid(z.to(device), None if y is None else y.to(device))
        return ([((i.float() + 1) / 2).clamp(0, 1).cpu().numpy() for i in images],
                [h.float().cpu().numpy() for h in residuals])

    def levels(self, ctx, rows: int, seed: int, residuals: bool, truncation: float) -> ToolResult:
        """One row per seed: the coarse image, every finer level's image and, with
        `residuals`, every level's residual, each enlarged (nearest) to the image size."""
        images, details = self.pyramid_images(list(range(seed, seed + rows)), truncation)
        size = images[-1].shape[-1]
        columns = list(images)
        if residuals:  # 0 is mid grey; each picture's largest |h| reaches black or white
            peak = [np.abs(h).reshape(rows, -1).max(1)[:, None, None, None] for h in details]
            columns += [0.5 + h / (2 * np.maximum(p, 1e-8)) for h, p in zip(details, peak)]
        enlarged = [np.repeat(np.repeat(x, size // x.shape[-1], 2), size // x.shape[-1], 3)
                    for x in columns]
        grid = np.stack(enlarged, axis=1).reshape(rows * len(columns), *images[-1].shape[1:])
        sizes = " -> ".join(f"{x.shape[-1]}x{x.shape[-1]}" for x in images)
        return ToolResult(images=grid.astype(np.float32), columns=len(columns),
                          text=f"levels {sizes}" + (", then each level's residual"
                                                    if residuals else ""))
