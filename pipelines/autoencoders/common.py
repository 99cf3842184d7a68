"""What every autoencoder pipeline shares: the one module ("model") and its Adam, the
reconstruction loss, measurements on a set of images (validation, anomaly scores), and the
periodic grid of a model that does not sample: validation images next to their reconstructions.

A model plugs in by overriding `make_net`, `train_step`, `measure_batch` and, if it samples,
`sample`. The tools (tools.py) only use `encode`, `decode_images`, `reconstruct`, `measure`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..core.base import Pipeline, Samples
from ..data import ImageData
from ..core.errors import StudioError
from ..core.optim import adam
from .losses import recon_nll
from .networks import AENet
from .spec import AE_SPEC
from .tools import AutoencoderTools

CHUNK = 500   # images per forward pass when measuring a whole split


class AutoencoderPipeline(AutoencoderTools, Pipeline):
    """A plain autoencoder: x -> z -> x_hat, trained on -log p(x | z)."""
    spec = AE_SPEC     # name, Config, tools, train_defaults, presets (spec.py)
    # True when sample() decodes new latents (a prior); False: it shows reconstructions.
    draws_samples: ClassVar[bool] = False
    best_metric = ("mse", "min")              # validation reconstruction error (best.py)
    code: ClassVar[str] = "linear"           # the code units' activation (see AENet)

    # --- networks ---------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        return {"model": self.make_net()}

    def make_net(self) -> nn.Module:
        return AENet(self.config, self.info, code=self.code)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": adam(self.modules["model"].parameters(), lr=self.config.lr,
                             weight_decay=self.config.weight_decay)}

    @property
    def net(self) -> nn.Module:
        # Outside training (sampling, tools, validation) this is the unwrapped module.
        return self.modules["model"]

    @property
    def num_classes(self) -> int:
        return 0

    # --- training ---------------------------------------------------------------------------
    def recon(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image, (B,), in nats."""
        return recon_nll(logits, x, self.config.likelihood, self.config.gaussian_sigma)

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        x = batch["images"]                                   # (B, C, H, W) in [0, 1]
        out = self.net(x)
        loss = self.recon(out["logits"], x).mean()
        grad = ctx.backward_step(loss, "adam", "model")
        return {"loss": loss.detach(), "grad_norm": grad}

    # --- what the tools use -----------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """A deterministic latent per image, flattened to (B, D): the code, or a VAE's
        posterior mean."""
        return self.net.encode(x, y).flatten(1)

    def decode_images(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, D) -> images (B, C, H, W) in [0, 1] (the likelihood's mean)."""
        return torch.sigmoid(self.net.decode(z, y).float())

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode_images(self.encode(x, y), y)

    def latent_range(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(centre, scale) per latent unit for traversals: the validation codes' mean and
        standard deviation (a VAE uses its prior's 0 and 1 instead)."""
        return latents.mean(0), latents.std(0).clamp_min(1e-6)

    def measure_batch(self, x: torch.Tensor, y: torch.Tensor | None,
                      generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-image numbers (B,) and the latents (B, D) of one batch, without gradients."""
        z = self.encode(x, y)
        logits = self.net.decode(z)
        mean = torch.sigmoid(logits.float())
        return {"recon": self.recon(logits, x), "mse": (mean - x).pow(2).flatten(1).mean(1),
                "latent": z}

    @torch.no_grad()
    def measure(self, images: np.ndarray, labels: np.ndarray | None = None,
                seed: int = 0) -> dict[str, torch.Tensor]:
        """`measure_batch` over a whole set of images (N, C, H, W), returned on the CPU. Any
        noise a model needs comes from a local generator seeded `seed`, so the numbers repeat
        and the training RNG never moves."""
        generator = torch.Generator().manual_seed(seed)
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        for i in range(0, len(images), CHUNK):
            x = torch.as_tensor(images[i:i + CHUNK], dtype=torch.float32, device=self.device)
            y = None if labels is None else torch.as_tensor(labels[i:i + CHUNK], device=self.device)
            for key, value in self.measure_batch(x, y, generator).items():
                parts[key].append(value.detach().float().cpu())
        return {key: torch.cat(values) for key, values in parts.items()}

    # --- validation and evaluation ----------------------------------------------------------
    def data(self) -> ImageData:
        """The run's data set: the one validate() saw, or loaded the way the trainer loads it."""
        if getattr(self, "_data", None) is None:
            from ..core.run_setup import load_data_for
            try:
                self._data = load_data_for(type(self), self.config, self.info["name"])
            except StudioError as e:
                raise StudioError(f"{self.name} needs its data set's validation images here "
                                  f"(reconstructions, maps): {e}") from None
        return self._data

    def summarise(self, measured: dict[str, torch.Tensor]) -> dict[str, float]:
        """Validation numbers from `measure`: the mean of each per-image number."""
        return {k: float(v.mean()) for k, v in measured.items() if v.dim() == 1}

    def validate(self, data: ImageData) -> dict[str, float]:
        self._data = data
        return self.summarise(self.measure(data.val_images, data.val_labels))

    def evaluate(self, data: ImageData, cache_dir: Path | None = None) -> dict[str, float]:
        """At the end: the validation numbers, and for a model that samples, the Fréchet
        distance (and KID, precision, recall) of its samples on the studio judge's features
        next to its floor."""
        self._data = data
        results = {f"val_{k}": v for k, v in self.summarise(
            self.measure(data.val_images, data.val_labels)).items()}
        if self.draws_samples and cache_dir is not None:
            from ..metrics import (JUDGED_DRAWS, draw_judged_samples, judge_samples,
                                   judged_sample_count)
            images, labels = draw_judged_samples(
                self.sample, judged_sample_count(data, self.num_classes or 1))
            results.update(judge_samples(data, images, labels, cache_dir=cache_dir, seed=0,
                                         draws=JUDGED_DRAWS))
        return results

    # --- the periodic grid ------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        """A model without a prior cannot draw new images, so this shows what it does
        instead: validation images (picked by `seed`, of class `labels` if given) each
        followed by its reconstruction, (input, reconstruction) pairs in reading order."""
        data = self.data()
        images, classes = data.val_images, data.val_labels
        if labels is not None:
            wanted = np.asarray(labels).reshape(-1)
            keep = np.isin(classes, wanted)
            if not keep.any():
                raise StudioError(f"no validation images of class {wanted.tolist()}")
            images, classes = images[keep], classes[keep]
        generator = torch.Generator().manual_seed(seed)
        pairs = (n + 1) // 2
        order = torch.randperm(len(images), generator=generator)
        pick = order.repeat(-(-pairs // len(images)))[:pairs].numpy()   # repeats only if few
        x = torch.as_tensor(images[pick], device=self.device)
        y = torch.as_tensor(classes[pick], device=self.device)
        both = torch.stack([x, self.reconstruct(x, y if self.num_classes else None)], dim=1)
        grid = both.reshape(-1, *x.shape[1:])[:n]             # (n, C, H, W): x0 r0 x1 r1 ...
        return Samples(images=grid.float().clamp(0, 1).cpu().numpy())
