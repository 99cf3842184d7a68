"""4x single-image super-resolution: SRResNet and SRGAN (Ledig et al. 2017, "Photo-realistic
single image super-resolution using a generative adversarial network").

Any image set works (photos, digits, shapes, folder:): the pipeline makes its own inputs by
reducing each image 4x (bicubic, anti-aliased) and learns to undo it. SRResNet minimises the
pixels' mean squared error, which is the same as maximising PSNR, and so learns the average of
every sharp image that could have been reduced to the input: a blur, if a better one than
bicubic interpolation. SRGAN starts from that network (pre-training on MSE, its first phase) and
then trains against a discriminator, with a content loss on feature maps instead of pixels, so
that it draws one plausible sharp image instead of the average: a little lower PSNR, outputs
closer to real images in feature space (a lower Fréchet distance). Every number is reported
next to bicubic upsampling of the same images in the same run.

Read top to bottom: the networks and optimisers, the phases and the two training steps (MSE,
then content + adversarial), upscaling and the validation images, validation and evaluation
(PSNR, SSIM, FD against its floor), sampling (input | bicubic | output | original), and
the upscale tool. quality.py holds the reduction, the measures and the content loss's network
(the studio judge, pipelines/metrics/judge.py); networks.py the two networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..core.optim import adam
from ..core.phases import Phase
from . import quality as Q
from . import spec as S
from .networks import Discriminator, SRResNet


def augment(x: torch.Tensor) -> torch.Tensor:
    """Each image of (B, C, S, S) in one of its 8 flips and quarter turns (a left-right flip,
    an up-down flip, a transpose, each with probability 1/2) and its channels in a random
    order; drawn from torch's RNG on x's device, which the trainer seeds and checkpoints."""
    b, c = x.shape[:2]
    flips = torch.rand(3, b, 1, 1, 1, device=x.device) < 0.5
    x = torch.where(flips[0], x.flip(-1), x)
    x = torch.where(flips[1], x.flip(-2), x)
    x = torch.where(flips[2], x.transpose(-1, -2), x)
    order = torch.rand(b, c, device=x.device).argsort(dim=1)              # (B, C)
    return x.gather(1, order[:, :, None, None].expand_as(x))


class SRResNetPipeline(Pipeline):
    """SRResNet: the generator alone, on pixel MSE (or the feature loss with
    --set content=features); the adversarial options make it SRGAN (the variant below)."""
    spec = S.SRRESNET
    best_metric = ("psnr", "max")     # the validation PSNR picks the weights kept (best.py)

    # --- networks ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.info["image_size"])

    @property
    def adversarial(self) -> bool:
        return self.config.adversarial_weight > 0

    def build(self) -> dict[str, nn.Module]:
        c, channels = self.config, int(self.info["channels"])
        if self.size % S.SCALE or self.size < 2 * S.SCALE:
            raise StudioError(f"super-resolution reduces each image {S.SCALE}x to make its "
                              f"input, so the image size must be a multiple of {S.SCALE} and at "
                              f"least {2 * S.SCALE}; {self.info['name']} is {self.size} px: "
                              f"--set image_size=32 (or another multiple of {S.SCALE})")
        self.features: nn.Module | None = None     # the content network, set with the data
        self._val: np.ndarray | None = None        # validation images, once loaded
        modules = {"generator": SRResNet(channels, c.width, c.blocks, c.bicubic_skip)}
        if self.adversarial:
            modules["discriminator"] = Discriminator(channels, self.size, c.disc_width)
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, g = self.config, self.modules["generator"]
        betas = (c.beta1, 0.999)
        optimizers = {"g": adam(g.parameters(), lr=c.lr, betas=betas)}
        if self.adversarial:   # the adversarial phase's own optimisers, as the paper restarts
            optimizers["g_gan"] = adam(g.parameters(), lr=c.lr_gan, betas=betas)
            optimizers["d"] = adam(self.modules["discriminator"].parameters(), lr=c.lr_d,
                                   betas=betas)
        return optimizers

    def train_tensors(self, data) -> dict[str, torch.Tensor]:
        self._val = data.val_images
        if self.config.content == "features":
            self.features = Q.feature_net(data).to(self.device)
        return super().train_tensors(data)

    # --- training ---------------------------------------------------------------------------
    @classmethod
    def phases(cls, config) -> list[Phase]:
        """Pixel-MSE pre-training first when pretrain_steps asks for it (SRGAN), then the
        main loss (train_step) for the rest of the run."""
        if config.pretrain_steps and config.adversarial_weight > 0:
            return [Phase("mse-pretraining", config.pretrain_steps, step="pretrain_step"),
                    Phase("adversarial")]
        return [Phase("training")]

    def pair(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's (input, target) in the networks' [-1, 1]: the images (augmented), reduced
        4x, and the images."""
        hr = batch["images"].float()
        if self.config.augment:
            hr = augment(hr)
        return Q.reduce(hr) * 2 - 1, hr * 2 - 1

    def pretrain_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """SRResNet's step: the pixels' mean squared error (MSE-optimal is PSNR-optimal)."""
        lr, hr = self.pair(batch)
        loss = F.mse_loss(self.modules["generator"](lr).float(), hr)
        grad_norm = ctx.backward_step(loss, "g", "generator")
        return {"mse": loss.detach(), "grad_norm": grad_norm}

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict]:
        c = self.config
        mse = F.mse_loss(sr.float(), hr)
        if c.content == "pixels":
            return mse, {"mse": mse.detach()}
        if self.features is None:
            raise StudioError("the feature content loss needs its network; it is made from "
                              "the data set when training starts")
        feature = Q.feature_loss(self.features, sr, hr)
        return feature + c.pixel_weight * mse, {"mse": mse.detach(),
                                                "feature_loss": feature.detach()}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """The main loss: the content loss, plus for SRGAN the adversarial term. The
        discriminator first (real and fake in separate passes: its batch norm must see in
        training what it sees in the generator's step), on fakes detached from G; then the
        generator on content + adversarial_weight x -log D(G(x))."""
        if not self.adversarial:
            lr, hr = self.pair(batch)
            loss, logs = self.content_loss(self.modules["generator"](lr), hr)
            logs["grad_norm"] = ctx.backward_step(loss, "g", "generator")
            return logs
        G, D = self.modules["generator"], self.modules["discriminator"]
        lr, hr = self.pair(batch)
        sr = G(lr)
        d_real, d_fake = D(hr).float(), D(sr.detach()).float()
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        logs = {"grad_norm_d": ctx.backward_step(loss_d, "d", "discriminator")}
        d_gen = D(sr).float()
        adversarial = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        content, parts = self.content_loss(sr, hr)
        total = content + self.config.adversarial_weight * adversarial
        logs["grad_norm_g"] = ctx.backward_step(total, "g_gan", "generator")
        logs.update(parts, loss_d=loss_d.detach(), loss_g=adversarial.detach(),
                    content_loss=content.detach(), d_real=torch.sigmoid(d_real).mean().detach(),
                    d_fake=torch.sigmoid(d_fake).mean().detach())
        return logs

    def log_warnings(self, means: dict[str, float], step: int) -> list[str]:
        if means.get("d_real", 0) > 0.97 and means.get("d_fake", 1) < 0.03:
            return ["the discriminator wins outright (D(x) ~ 1, D(G(x)) ~ 0): the adversarial "
                    "term has stopped teaching the generator; try a lower lr_d"]
        return []

    # --- upscaling and the validation images ------------------------------------------------
    @torch.no_grad()
    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """(N, C, s, s) in [0, 1] -> (N, C, 4s, 4s) in [0, 1], on the CPU, in batches."""
        G = self.modules["generator"]

        def run(x: torch.Tensor) -> torch.Tensor:
            return ((G(x.to(self.device) * 2 - 1).float() + 1) / 2).clamp(0, 1).cpu()
        return Q.batched(run, lr.float())

    def val_images(self) -> np.ndarray:
        """The run's validation images (N, C, S, S): kept from training, else loaded once."""
        if self._val is None:
            from ..core.run_setup import load_data_for
            images = load_data_for(type(self), self.config, self.info["name"]).val_images
            if images.shape[1:] != (self.info["channels"], self.size, self.size):
                raise StudioError(f"{self.info['name']} no longer holds images of the "
                                  f"model's shape ({self.info['channels']} x {self.size} px)")
            self._val = images
        return self._val

    def by_seed(self, n: int, seed: int) -> torch.Tensor:
        """n validation images, image i picked by seed + i alone (it repeats in any batch)."""
        val = self.val_images()
        picks = [int(np.random.default_rng(seed + i).integers(len(val))) for i in range(n)]
        return torch.from_numpy(val[picks])

    # --- validation and evaluation -----------------------------------------------------------
    @torch.no_grad()
    def validate(self, data) -> dict[str, float]:
        """PSNR (dB) of the model and of bicubic upsampling over all the validation images
        together (quality.set_psnr: the held-out photograph's PSNR, for photos)."""
        self._val = data.val_images
        hr = torch.from_numpy(data.val_images)
        lr = Q.reduce(hr)
        return {"psnr": Q.set_psnr(self.upscale(lr), hr),
                "psnr_bicubic": Q.set_psnr(Q.bicubic(lr), hr)}

    @torch.no_grad()
    def evaluate(self, data, cache_dir=None) -> dict[str, float]:
        """On every validation image: PSNR (over all of them together, and the mean of each
        image's) and SSIM of the model next to bicubic upsampling of the same inputs; with a
        cache folder, the judge's Fréchet distances of outputs and bicubic images vs
        originals, next to the real-vs-real floor (quality.paired_fd)."""
        hr = torch.from_numpy(data.val_images)
        lr = Q.reduce(hr)
        out, bic = self.upscale(lr), Q.bicubic(lr)
        results = {"n": len(hr), "psnr": Q.set_psnr(out, hr),
                   "psnr_bicubic": Q.set_psnr(bic, hr),
                   "psnr_per_image": Q.psnr(out, hr).mean().item(),
                   "psnr_per_image_bicubic": Q.psnr(bic, hr).mean().item(),
                   "ssim": Q.ssim(out, hr).mean().item(),
                   "ssim_bicubic": Q.ssim(bic, hr).mean().item()}
        if cache_dir is not None:
            from ..metrics import get_judge
            results.update(Q.paired_fd(get_judge(data, cache_dir), out.numpy(), bic.numpy(),
                                       hr.numpy()))
        return results

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, seed: int, labels: Any = None) -> Samples:
        """n validation images (picked by seed), each as four pictures in a row: the
        4x-reduced input (shown in 4x4 blocks) | bicubic upsampling | this model's output |
        the original. 4n images, columns=4 (a square grid of them holds whole rows of four
        when n is 4, 16, 36, ...: the trainer's grids are 16, an 8 x 8 grid)."""
        if labels is not None:
            raise StudioError(f"{self.name} draws no class; leave out the class")
        hr = self.by_seed(n, seed)
        lr = Q.reduce(hr)
        quads = torch.stack([Q.nearest(lr), Q.bicubic(lr), self.upscale(lr), hr], dim=1)
        return Samples(images=quads.flatten(0, 1).numpy(), columns=4)

    def upscale_images(self, images: np.ndarray) -> np.ndarray:
        """(N, C, h, w) in [0, 1] -> (N, C', 4h, 4w) for `studio sample RUN --upscale-with
        THIS_RUN`: the network is convolutional, so any size goes; grey images given to a
        colour model are repeated to three channels and colour ones given to a grey model
        become their luma (ITU-R 601), as the tools read files."""
        x = torch.from_numpy(np.asarray(images, dtype=np.float32))
        channels = int(self.info["channels"])
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise StudioError(f"upscaling takes (N, 1 or 3, H, W) images, got {tuple(x.shape)}")
        if x.shape[1] == 1 and channels == 3:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] == 3 and channels == 1:
            x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        return self.upscale(x).numpy()

    # --- the tool ---------------------------------------------------------------------------
    def read_low_res(self, paths: tuple[str, ...]) -> torch.Tensor:
        """Input files as (N, C, s, s) in [0, 1], refused unless each is exactly s x s (a
        quarter of the model's size) with the model's channels: read as they are, not
        resized or converted, since that is what the model was trained to upscale."""
        from PIL import Image
        from ..data.images import bomb_guard, check_image_pixels, normalise_image
        channels, small = int(self.info["channels"]), self.size // S.SCALE
        want = "colour (RGB)" if channels == 3 else "greyscale"
        out = []
        for path in paths:
            try:
                with bomb_guard(path), Image.open(path) as image:
                    check_image_pixels(image, path)
                    shape = image.size
                    pixels, grey = (normalise_image(image, small) if shape == (small, small)
                                    else (None, None))
            except (OSError, ValueError) as e:
                raise StudioError(f"cannot read image {path}: {e}") from None
            if pixels is None:
                raise StudioError(f"{path} is {shape[0]}x{shape[1]} pixels; this model upscales "
                                  f"{small}x{small} {want} images to {self.size}x{self.size} "
                                  f"(a quarter of the size it was trained at)")
            if (1 if grey else 3) != channels:
                raise StudioError(f"{path} is {'greyscale' if grey else 'colour'}; this model "
                                  f"upscales {want} images ({small}x{small})")
            pixels = pixels.astype(np.float32) / 255.0
            out.append(pixels[None] if grey else pixels.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(out))

    def tool_upscale(self, ctx, count: int, seed: int) -> ToolResult:
        """Bicubic | output for each input: files (ctx.paths, read at a quarter of the model's
        size), images handed in (ctx.images, the same size), or validation images reduced 4x
        (with their PSNR, model and bicubic, since their originals are known)."""
        small, values = self.size // S.SCALE, None
        if ctx.paths:
            lr = self.read_low_res(ctx.paths)
        elif ctx.images is not None:
            want = (int(self.info["channels"]), small, small)
            if ctx.images.ndim != 4 or tuple(ctx.images.shape[1:]) != want:
                raise StudioError(f"upscale takes images of shape (N, {', '.join(map(str, want))})"
                                  f", got {tuple(ctx.images.shape)}")
            lr = torch.from_numpy(np.asarray(ctx.images, dtype=np.float32))
        else:
            hr = self.by_seed(count, seed)
            lr = Q.reduce(hr)
        bic, out = Q.bicubic(lr), self.upscale(lr)
        if not ctx.paths and ctx.images is None:
            values = {"psnr": round(Q.set_psnr(out, hr), 3),
                      "psnr_bicubic": round(Q.set_psnr(bic, hr), 3)}
        pairs = torch.stack([bic, out], dim=1).flatten(0, 1)       # bic0, out0, bic1, ...
        return ToolResult(images=pairs.numpy(), columns=2, values=values,
                          text=f"{len(lr)} image(s) {small}x{small} -> {self.size}x{self.size}: "
                               "bicubic | model, one row each")


class SRGAN(SRResNetPipeline):
    """Ledig et al. (2017): SRResNet's weights after MSE pre-training, then a content loss on
    feature maps plus 1e-3 x the adversarial loss. No best weights by PSNR: that would keep
    the pre-trained SRResNet, the very thing the adversarial phase moves away from."""
    spec = S.SRGAN
    best_metric = None
