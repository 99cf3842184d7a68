"""Latent diffusion's autoencoder (Rombach et al. 2022, the idea behind Stable Diffusion).

diffusers' AutoencoderKL maps an image to a 4x smaller grid of latents (32 px -> 8 x 8 x 4) and
back. It is trained in the first `autoencoder_steps` of the same run (a squared error weighted
towards the foreground plus a small KL term), then frozen; the UNet then diffuses its latents, scaled to unit variance, where
a small shape is a few latent cells instead of a few dozen pixels, and every UNet step costs
1/16 of a pixel one. Why: at 32 px the pixel UNets drew the asked background but not the asked
colour or shape in 3,000 steps (docs/diffusion.md, "ddpm-text on shapes").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Each of the three encoder levels but the last halves the image: latents are 1/4 per side.
DOWNSCALE = 4


class LatentAutoencoder(nn.Module):
    """An AutoencoderKL plus the scale that brings its latents to unit variance. `scale` is 0
    while the autoencoder trains; the first diffusion step measures it (and it is saved with
    the weights, so a resumed run goes on with the same value)."""

    def __init__(self, channels: int, latent_channels: int, width: int, image_size: int):
        super().__init__()
        from diffusers import AutoencoderKL
        widths = (width, 2 * width, 2 * width)                          # e.g. (16, 32, 32)
        self.vae = AutoencoderKL(
            in_channels=channels, out_channels=channels, latent_channels=latent_channels,
            block_out_channels=widths, layers_per_block=1, sample_size=image_size,
            down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
            norm_num_groups=math.gcd(width, 16))
        self.register_buffer("scale", torch.zeros(()))

    @property
    def ready(self) -> bool:
        """True once the autoencoder phase is over (the latent scale is measured)."""
        return bool(self.scale > 0)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: images (N, C, H, W) in [-1, 1] -> (reconstruction (N, C, H, W), KL per
        image (N,)). Through forward, so that a multi-process wrapper syncs the gradients."""
        posterior = self.vae.encode(images).latent_dist
        return self.vae.decode(posterior.sample()).sample, posterior.kl()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> scaled latents (N, L, H / 4, W / 4) (the posterior mean)."""
        return self.vae.encode(images).latent_dist.mean * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (N, L, h, w) -> images (N, C, 4h, 4w) in about [-1, 1]."""
        return self.vae.decode(latents / self.scale).sample

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> decoded posterior means: what the autoencoder keeps.
        Works before the scale is measured (it cancels out)."""
        return self.vae.decode(self.vae.encode(images).latent_dist.mean).sample

    def measure_scale(self, images: torch.Tensor, accelerator=None) -> None:
        """Set `scale` to 1 / std of the unscaled latents of `images` (a training batch; with
        several processes, the mean over all of theirs, so that every process agrees)."""
        z = self.vae.encode(images).latent_dist.mean.float()
        moments = torch.stack([z.mean(), (z * z).mean()])
        if accelerator is not None and accelerator.num_processes > 1:
            moments = accelerator.reduce(moments, reduction="mean")
        self.scale.fill_(float(1 / (moments[1] - moments[0] ** 2).clamp_min(1e-8).sqrt()))

    def export(self):
        """A standalone AutoencoderKL whose config carries the scale (`scaling_factor`), as
        Stable Diffusion's pipelines expect: latents = vae.encode(x).latent_dist.mean * it."""
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_config(self.vae.config, scaling_factor=float(self.scale))
        vae.load_state_dict(self.vae.state_dict())
        return vae.float().cpu()


def autoencoder_loss(autoencoder: nn.Module, images: torch.Tensor, kl_weight: float,
                     foreground_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Squared error weighted towards the foreground, plus kl_weight times the KL to N(0, 1)
    per image value (it keeps the latents small and smooth for the diffusion model).
    images (N, C, H, W) in [-1, 1].

    Why the weights: a small shape is 2-7% of a 32 px image, so under a plain MSE (or L1) the
    autoencoder first learns the background and draws every shape in one brownish average
    colour, and then as a round blob (after 1,500 steps, 54% (MSE) and 26% (L1) of the
    reconstructed shapes kept their colour, 27% and 25% their shape). Each pixel weighs
    1 + foreground_weight x (its distance from the image's background, the median of its
    border, + 2 x the image's local gradient there, both in [0, 1]): foreground pixels, and
    twice as much the edges and corners that tell a square from a circle (with 10: colour 96%,
    shape 49%; the background term alone: 91% and 31%)."""
    reconstruction, kl = autoencoder(images)
    border = torch.cat([images[:, :, 0], images[:, :, -1], images[:, :, :, 0],
                        images[:, :, :, -1]], dim=2)                     # (N, C, 4W)
    background = border.median(dim=2).values[:, :, None, None]           # (N, C, 1, 1)
    distance = (images - background).abs().amax(1, keepdim=True) / 2    # (N, 1, H, W)
    dx = F.pad((images[..., :, 1:] - images[..., :, :-1]).abs(), (0, 1, 0, 0))
    dy = F.pad((images[..., 1:, :] - images[..., :-1, :]).abs(), (0, 0, 0, 1))
    edges = ((dx + dy).amax(1, keepdim=True) / 2).clamp(max=1)          # (N, 1, H, W)
    weight = 1 + foreground_weight * (distance + 2 * edges).float()
    squared = (reconstruction.float() - images.float()) ** 2
    reconstruction_loss = (weight * squared).mean() / weight.mean()
    kl = kl.float().mean() / images[0].numel()
    return reconstruction_loss + kl_weight * kl, {
        "autoencoder_loss": reconstruction_loss.detach(), "autoencoder_kl": kl.detach()}


def latent_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A pixel mask (N, 1, H, W), 1 = repaint, -> the latent cells that touch any repainted
    pixel (N, 1, size, size): a latent cell decodes to a 4 x 4 block, so a cell half inside the
    hole must be repainted too. The exact pixel mask is applied again after decoding."""
    return F.adaptive_max_pool2d(mask.float(), size)
