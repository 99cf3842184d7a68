"""Pixel diffusion: `ddpm` (Ho et al. 2020, unconditional) and `ddpm-class` (a class embedding
and classifier-free guidance, Ho & Salimans 2022), a diffusers UNet2DModel on the pixels.

Read top to bottom: the checks and the network (optionally on 2x2 patches, "simple
diffusion"), the training step and validation (the shared loss, common.py), what the shared
sampling loop asks of a model (sampling.py; the tools in tools.py use it too), evaluation and
the export as a diffusers folder (a DDPMPipeline, or the components for a class model).
The options are PixelDiffusionConfig (config.py); spec.py declares the two forms.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.schedules import Schedule
from ..data import ImageData
from ..services.latent import requested_labels
from . import common, sampling, tools
from . import export as ex
from . import spec as S


class DDPM(Pipeline):
    """An unconditional UNet2DModel trained to predict the noise (or v, or the image);
    `conditioning=class` adds a class embedding (ClassDDPM below sets it)."""
    spec = S.DDPM
    ema_modules = ("unet",)
    best_metric = ("loss", "min")    # validation MSE at fixed timesteps and noise (best.py)

    # --- checks and the network --------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.info.get("num_classes", 1) if self.config.conditioning == "class" else 0

    def check_config(self) -> None:
        c = self.config
        if c.conditioning == "class" and self.info.get("num_classes", 1) < 2:
            raise StudioError("conditioning=class needs a data set with 2 or more classes; use "
                              "conditioning=none")
        if c.patch_size > 1 and c.conditioning == "none":
            raise StudioError("patch_size 2 needs conditioning class: the unconditional form "
                              "exports a DDPMPipeline, which samples without patching; use "
                              "patch_size=1")
        common.check_size(self.info["image_size"], c.patch_size * 2 ** (c.levels - 1),
                          f"patches of {c.patch_size}, a {c.levels}-level UNet (it halves the "
                          f"image {c.levels - 1} times)")
        common.check_schedule(c)

    def build(self) -> dict[str, nn.Module]:
        from diffusers import UNet2DModel
        self.check_config()
        c, p = self.config, self.config.patch_size
        channels = self.info["channels"] * p * p              # what the UNet sees: p x p
        unet = UNet2DModel(                                   # patches as channels
            in_channels=channels, out_channels=channels,
            attention_head_dim=min(8, c.width * 2 ** (c.levels - 1)),
            # one extra embedding: the "null" class that guidance contrasts with
            num_class_embeds=self.num_classes + 1 if self.num_classes else None,
            **common.unet_layout(c, self.info["image_size"] // p, cross_attention=False))
        self.noise_scheduler = common.noise_scheduler(c)
        return {"unet": unet}

    def predict(self, x: torch.Tensor, t, labels: torch.Tensor | None) -> torch.Tensor:
        """The UNet's raw output for x_t (N, C, H, W) at timestep(s) t, given class ids (or
        None). With patch_size p the UNet reads and writes (N, C p^2, H / p, W / p)."""
        p = self.config.patch_size
        if p > 1:
            x = F.pixel_unshuffle(x, p)
        out = self.modules["unet"](x, t, class_labels=labels).sample
        return F.pixel_shuffle(out, p) if p > 1 else out

    def null_condition(self, n: int, device) -> torch.Tensor | None:
        """The condition that classifier-free guidance contrasts with: the extra "null"
        class."""
        if not self.num_classes:
            return None
        return torch.full((n,), self.num_classes, dtype=torch.long, device=device)

    # --- training ----------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"opt": adamw(self.modules["unet"].parameters(), lr=c.lr,
                             weight_decay=c.weight_decay)}

    def schedules(self) -> dict[str, Schedule]:
        """A linear warm-up over lr_warmup_steps, then constant."""
        return {"opt": Schedule(warmup_steps=self.config.lr_warmup_steps)}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x0 = batch["images"] * 2 - 1                              # (B, C, H, W) in [-1, 1]
        labels = batch["labels"] if self.num_classes else None
        loss = common.denoising_loss(self, x0, labels, self.config)
        grad_norm = ctx.backward_step(loss, "opt", "unet")
        return {"loss": loss.detach(), "grad_norm": grad_norm}

    @torch.no_grad()
    def validate(self, data: ImageData) -> dict[str, float]:
        """The MSE on 128 validation images at fixed timesteps and noise."""
        x0 = torch.from_numpy(data.val_images[:128]).to(self.device) * 2 - 1
        labels = None
        if self.num_classes:
            labels = torch.from_numpy(data.val_labels[:128]).to(self.device)
        return {"loss": common.fixed_noise_loss(self.noise_scheduler, x0,
                                                self.config.prediction_type,
                                                lambda xt, t: self.predict(xt, t, labels))}

    # --- what the shared sampling loop asks (sampling.Denoiser): pixels are the model's space
    @property
    def noise_shape(self) -> tuple[int, int, int]:
        return (self.info["channels"], self.info["image_size"], self.info["image_size"])

    def encode_condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return labels                                         # class ids are what the UNet reads

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        return images

    to_pixels = to_model_space

    def model_mask(self, mask: torch.Tensor, size: int) -> torch.Tensor:
        return mask

    def conditions(self, n: int, labels=None, prompt: str = "", negative_prompt: str = "",
                   seeds: list[int] | None = None):
        """(class ids, null ids, the class per image, None) for n images; all None for an
        unconditional model."""
        if prompt or negative_prompt:
            raise StudioError(f"{self.name} is not text-conditional; leave out the prompt")
        y = requested_labels(n, labels, self.num_classes, names=self.info.get("class_names", []))
        if y is None:
            return None, None, None, None
        return y.to(self.device), self.null_condition(n, self.device), y.numpy(), None

    # Sampling, interpolation and tools: the shared loop over the methods above.
    sample, interpolate = sampling.sample, sampling.interpolate
    noise_for, cfg = sampling.noise_for, sampling.cfg
    tool_img2img, tool_inpaint = tools.img2img, tools.inpaint
    tool_denoise_steps = tools.denoise_steps

    # --- evaluation and export -----------------------------------------------------------------
    def evaluate(self, data, cache_dir, n: int | None = None, **controls) -> dict[str, float]:
        """Fréchet distance and friends against their floors (metrics/image_quality.py) for n
        samples (default: as many as every family is judged on); a class model adds its
        conditional accuracy."""
        from ..metrics import judge_samples, judged_sample_count
        n = n or judged_sample_count(data, self.num_classes or 1)
        samples = self.sample(n, seed=0, **sampling.evaluation_controls(
            controls, self.spec.SampleControls))
        return judge_samples(data, samples.images, samples.labels, cache_dir=cache_dir)

    def export_ecosystem(self, dest: Path) -> str:
        """export/diffusers/: a DDPMPipeline folder (unconditional), else the components,
        unet/ and scheduler/, each loadable with its own from_pretrained."""
        from diffusers import DDPMPipeline, DDPMScheduler
        unet = ex.cpu_copy(self.modules["unet"])
        scheduler = DDPMScheduler.from_config(self.noise_scheduler.config)
        if not self.num_classes:
            ex.write_folder(dest, DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained)
            snippet = ("from diffusers import DDPMPipeline\n"
                       "pipe = DDPMPipeline.from_pretrained('export/diffusers')\n"
                       "images = pipe(batch_size=4, num_inference_steps=1000, output_type='np')"
                       ".images  # (4, H, W, C) in [0, 1]")
            return ex.model_card("a `DDPMPipeline` folder", snippet, self.config)

        def write(folder: Path) -> None:
            unet.save_pretrained(folder / "unet")
            scheduler.save_pretrained(folder / "scheduler")
        ex.write_folder(dest, write)
        # With patches the snippet samples in the UNet's own layout (the same i.i.d. noise,
        # reordered) and unpatches the image at the end.
        p, null = self.config.patch_size, self.num_classes
        side = self.info["image_size"] // p
        load = ("from diffusers import UNet2DModel\n"
                "unet = UNet2DModel.from_pretrained(root + '/unet')\n"
                f"cond = torch.tensor([{null}, 3])  # null class {null}, then class 3\n"
                "run = lambda x, t: unet(torch.cat([x, x]), t, class_labels=cond).sample")
        snippet = ex.components_snippet(
            load, f"1, {self.info['channels'] * p * p}, {side}, {side}",
            f"torch.nn.functional.pixel_shuffle(x, {p})" if p > 1 else "x")
        return ex.model_card("the components, each loadable with its own `from_pretrained`",
                             snippet, self.config)


class ClassDDPM(DDPM):
    """A class embedding in the UNet, dropped 10% of the time so that classifier-free guidance
    (Ho & Salimans 2022) can contrast the class with the null one."""
    spec = S.CLASS_DDPM
