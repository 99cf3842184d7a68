"""What every family implements. The trainer drives it; the CLI and UI sample from it.

A pipeline is one class with a config dataclass and five methods:

    build()            -> {"generator": nn.Module, ...}    the networks, freshly initialised
    make_optimizers()  -> {"g": Optimizer, ...}             over self.modules' parameters
    train_step(batch, ctx) -> {"loss_g": float, ...}       one optimisation step, via ctx.step
    sample(n, seed, ...)  -> Samples                       deterministic for a seed
    evaluate(data)     -> {"metric": float, ...}           on the validation split

The trainer owns everything else: devices, precision, the loop, seeding, logging, sampling
grids, checkpoints, resume, stop and the NaN guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .data import ImageData, TextData


@dataclass
class Samples:
    """What `sample` returns: images (N, C, H, W) in [0, 1], or texts."""
    images: np.ndarray | None = None
    labels: np.ndarray | None = None      # (N,) class per image, for conditional models
    texts: list[str] | None = None


def data_info(data: ImageData | TextData) -> dict[str, Any]:
    """The facts about a data set that a model's shape depends on (stored with its weights)."""
    if isinstance(data, ImageData):
        return {"name": data.name, "kind": "image", "channels": data.channels,
                "image_size": data.image_size, "num_classes": data.num_classes,
                "class_names": list(data.class_names)}
    return {"name": data.name, "kind": "text"}


class Pipeline:
    name: ClassVar[str]
    Config: ClassVar[type]
    data_kind: ClassVar[str] = "image"
    # Changes to TrainerConfig's defaults that suit this family, e.g. {"steps": 3000}.
    train_defaults: ClassVar[dict[str, Any]] = {}
    # Modules whose exponential moving average is kept and used for sampling.
    ema_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, info: dict[str, Any]):
        self.config = config
        self.info = info
        self.modules: dict[str, torch.nn.Module] = self.build()

    # --- what a family writes --------------------------------------------------------------
    def build(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_tensors(self, data: ImageData | TextData) -> dict[str, torch.Tensor]:
        """The training split as equal-length tensors; the trainer shuffles and batches them."""
        return {"images": torch.from_numpy(data.train_images),
                "labels": torch.from_numpy(data.train_labels)}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int, seed: int, **controls: Any) -> Samples:
        raise NotImplementedError

    def evaluate(self, data: ImageData | TextData) -> dict[str, float]:
        return {}

    def ema_decay(self) -> float:
        return float(getattr(self.config, "ema_decay", 0.0))

    @property
    def device(self) -> torch.device:
        return next(iter(self.modules.values())).parameters().__next__().device
