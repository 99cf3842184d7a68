"""Pix2Pix (Isola et al. 2017, "Image-to-image translation with conditional adversarial
networks"): a conditional GAN whose generator is a U-Net that turns an input picture (an
outline drawing) into its target (the coloured shape), trained on pairs.

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L1(G)                      (the paper's eq. 4)

L_cGAN: a PatchGAN discriminator sees the (input, picture) pair and says, for each patch,
whether the picture is the real target or G's; its binary cross-entropy (halved for D, as in
the paper), non-saturating for G. L1: the mean absolute distance to the target, lambda = 100.
L1 alone gives blurry averages; the discriminator pushes for sharp, plausible detail.

Read top to bottom: helpers (pixels, PSNR, grids), then the pipeline: networks, the training
step (D, then G, each through ctx), validation, translating and sampling (input | output |
target triples of validation pairs), the translate tool, evaluation (L1 and PSNR next to the
trivial baseline of answering with the input itself; the judge's shape class of the outputs;
Fréchet distance next to its real-vs-real floor).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..core.optim import adam
from ..data.paired import PairedImageData
from ..services.imaging import check_input_files
from . import spec as S
from .networks import PatchDiscriminator, UNet, init_weights

BATCH = 256     # pictures per forward pass when translating


# --- helpers -----------------------------------------------------------------------------
def as_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) grey or colour pictures with `channels` channels: grey repeated as R, G,
    B, colour to grey by ITU-R 601 luma (the way input files are read)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    return (images[:, :1] * 0.299 + images[:, 1:2] * 0.587 + images[:, 2:3] * 0.114)


def l1_and_psnr(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean absolute pixel error (pixels in [0, 1]) and mean PSNR in dB (10 log10(1 / MSE) per
    picture, capped at 100 dB for an exact copy)."""
    diff = outputs.astype(np.float64) - targets
    mse = (diff ** 2).reshape(len(diff), -1).mean(1)
    psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-10))
    return {"l1": float(np.abs(diff).mean()), "psnr": float(psnr.mean())}


def grouped(*columns: np.ndarray) -> np.ndarray:
    """Pictures side by side: (N, C, H, W) arrays -> (N * k, C', H, W), each example's k
    pictures in a row, all with the most channels among them."""
    channels = max(c.shape[1] for c in columns)
    stacked = np.stack([as_channels(c, channels) for c in columns], axis=1)   # (N, k, C', H, W)
    return stacked.reshape(-1, *stacked.shape[2:])


def grid_columns(n: int, group: int) -> int:
    """Columns of a near-square grid of n groups of `group` pictures, whole groups a row:
    27 triples -> 9 (the trainer's square grid of 81 holds the same rows)."""
    return group * max(1, round(math.sqrt(group * n) / group))


class Pix2Pix(Pipeline):
    """The U-Net generator and PatchGAN discriminator, trained on (input, target) pairs."""
    spec = S.PIX2PIX
    data: PairedImageData | None = None     # the run's pairs, once a method is given them

    # --- networks ----------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, info = self.config, self.info
        cin, size = info["channels"], info["image_size"]
        cout = info.get("target_channels", cin)
        modules = {"generator": UNet(cin, cout, size, c.width, c.dropout),
                   "discriminator": PatchDiscriminator(cin + cout, size, c.d_width, c.d_layers)}
        for module in modules.values():
            module.apply(init_weights)
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, betas = self.config, (self.config.beta1, self.config.beta2)
        return {"g": adam(self.modules["generator"].parameters(), lr=c.lr, betas=betas),
                "d": adam(self.modules["discriminator"].parameters(), lr=c.lr, betas=betas)}

    def train_tensors(self, data: PairedImageData) -> dict[str, torch.Tensor]:
        self.data = data
        return {"inputs": torch.from_numpy(data.train_inputs),
                "targets": torch.from_numpy(data.train_targets),
                "labels": torch.from_numpy(data.train_labels)}

    # --- training ----------------------------------------------------------------------------
    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        x = batch["inputs"] * 2 - 1                        # (B, Ci, S, S) in [-1, 1]
        y = batch["targets"] * 2 - 1                       # (B, Co, S, S)
        fake = G(x)
        logs: dict[str, torch.Tensor] = {}
        loss_gan = torch.zeros((), device=x.device)
        if c.gan_weight > 0:
            # D: real and translated pairs in separate passes (its batch norm sees one kind
            # at a time, as in the G step below); the fakes detached, so G does not move.
            d_real = D(x, y).float()
            d_fake = D(x, fake.detach()).float()
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                            + F.binary_cross_entropy_with_logits(d_fake,
                                                                 torch.zeros_like(d_fake)))
            logs["grad_norm_d"] = ctx.backward_step(loss_d, "d", "discriminator")
            d_gen = D(x, fake).float()
            loss_gan = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            logs.update(loss_d=loss_d.detach(), d_real=torch.sigmoid(d_real).mean().detach(),
                        d_fake=torch.sigmoid(d_fake).mean().detach())
        l1 = (fake.float() - y.float()).abs().mean()        # in [-1, 1] units: 2x pixel L1
        loss_g = c.gan_weight * loss_gan + c.l1_weight * l1
        logs["grad_norm_g"] = ctx.backward_step(loss_g, "g", "generator")
        logs.update(loss_g=loss_gan.detach(), l1=(l1 / 2).detach())
        return logs

    def log_warnings(self, means: dict[str, float], step: int) -> list[str]:
        if means.get("d_real", 0) > 0.97 and means.get("d_fake", 1) < 0.03 and step >= 200:
            return ["the discriminator wins outright (D(real) ~ 1, D(output) ~ 0): the "
                    "outputs are far from plausible; L1 still trains the generator"]
        return []

    # --- translating, validation and sampling ----------------------------------------------
    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    def check_inputs(self, images: np.ndarray) -> np.ndarray:
        """Input pictures as the generator takes them, or one line saying what is wrong."""
        images = np.asarray(images, dtype=np.float32)
        c, s = self.info["channels"], self.image_size
        if images.ndim != 4 or images.shape[1:] != (c, s, s):
            raise StudioError(f"{self.name} translates pictures of {c} channel(s) at {s}x{s} "
                              f"pixels (what it was trained on), not an array of shape "
                              f"{tuple(images.shape)}")
        return images

    @torch.no_grad()
    def translate(self, inputs: np.ndarray) -> np.ndarray:
        """Inputs (N, Ci, S, S) in [0, 1] -> outputs (N, Co, S, S) in [0, 1], with dropout off
        and batch norm on its running statistics, so an output is a function of its input."""
        G = self.modules["generator"]
        was_training, device = G.training, next(G.parameters()).device
        G.eval()
        try:
            x = torch.from_numpy(self.check_inputs(inputs))
            out = [G(x[i:i + BATCH].to(device) * 2 - 1).float()
                   for i in range(0, len(x), BATCH)]
        finally:
            G.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1).cpu().numpy()

    def validate(self, data: PairedImageData) -> dict[str, float]:
        """L1 and PSNR of the validation outputs against their targets."""
        self.data = data
        return l1_and_psnr(self.translate(data.val_inputs), data.val_targets)

    def paired_data(self) -> PairedImageData:
        """The run's pairs: those the trainer gave, else the data set reloaded by its spec."""
        if self.data is None:
            from ..data import load_data
            data = load_data(self.info["name"])
            if not isinstance(data, PairedImageData):
                raise StudioError(f"{self.name} needs paired data; {self.info['name']!r} is "
                                  f"{data.kind} data")
            self.data = data
        return self.data

    def validation_pairs(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation pairs seed, seed + 1, ... (mod their count): pair i depends on seed + i
        alone, so one picture repeats whatever the batch."""
        data = self.paired_data()
        index = (seed + np.arange(n)) % len(data.val_inputs)
        return data.val_inputs[index], data.val_targets[index]

    def sample(self, n: int, seed: int, labels: Any = None) -> Samples:
        """n validation inputs translated, as n input | output | target triples (3n pictures,
        `columns` of whole triples)."""
        if labels is not None:
            raise StudioError(f"{self.name} translates its validation inputs; it takes no class")
        inputs, targets = self.validation_pairs(n, seed)
        return Samples(images=grouped(inputs, self.translate(inputs), targets),
                       columns=grid_columns(n, 3))

    # --- the tool ----------------------------------------------------------------------------
    def tool_translate(self, ctx, count: int, seed: int) -> ToolResult:
        """The given pictures as input | output rows; without any, `count` validation pairs as
        input | output | target rows with their L1 and PSNR."""
        if ctx.images is not None:
            self.check_files(getattr(ctx, "paths", ()))
            inputs = self.check_inputs(ctx.images)
            return ToolResult(images=grouped(inputs, self.translate(inputs)), columns=2,
                              text="input | output, one picture a row")
        data = ctx.load_data()
        if isinstance(data, PairedImageData):
            self.data = data
        inputs, targets = self.validation_pairs(count, seed)
        outputs = self.translate(inputs)
        values = {k: round(v, 4) for k, v in l1_and_psnr(outputs, targets).items()}
        return ToolResult(images=grouped(inputs, outputs, targets), columns=3, values=values,
                          text="input | output | target, validation pairs")

    def check_files(self, paths) -> None:
        """Grey pictures for a colour model and pictures below its size, refused in one line
        (services/imaging.check_input_files)."""
        check_input_files(paths, self.info["channels"], self.image_size, self.name,
                          "(it was trained on 3-channel inputs)")

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data: PairedImageData, cache_dir=None) -> dict[str, float]:
        """On the validation pairs: L1 and PSNR of the outputs against the targets, and of the
        trivial answer (the input itself) as `baseline_*`. With a cache folder, the judge's
        numbers too (metrics/image_quality.py): its shape class of each output against the
        pair's class (`class_accuracy`, next to its accuracy on the real targets,
        `judge_val_accuracy`, and on the inputs, `baseline_class_accuracy`); Fréchet distance
        and KID of the outputs to the targets, next to the real-vs-real floor."""
        self.data = data
        outputs = self.translate(data.val_inputs)
        baseline = as_channels(data.val_inputs, data.target_channels)
        results = l1_and_psnr(outputs, data.val_targets)
        results.update({f"baseline_{k}": v
                        for k, v in l1_and_psnr(baseline, data.val_targets).items()})
        from ..metrics import frechet_distance, get_judge, judge_samples, real_halves
        from ..metrics.image_quality import MIN_IMAGES
        if cache_dir is None or len(outputs) < MIN_IMAGES:   # a few pairs: nothing to judge
            return results
        classes = data.num_classes >= 2
        judged = judge_samples(data, outputs, data.val_labels if classes else None,
                               cache_dir=cache_dir)
        judge, n = get_judge(data, cache_dir), int(judged["n"])   # the judge: cached now
        results["baseline_fd"] = frechet_distance(judge.features(baseline[:n]),
                                                  judge.features(real_halves(data)[1][:n]))
        if classes:
            judged["class_accuracy"] = judged.pop("conditional_accuracy")
            results["baseline_class_accuracy"] = float(
                np.mean(judge.predict(baseline) == data.val_labels))
        return {**results, **judged}
