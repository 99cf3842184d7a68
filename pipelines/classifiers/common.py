"""What every torch classifier shares: the config (declared in spec.py), the training step,
validation, evaluation, predicted probabilities, augmentation, and transfer learning from
another run.

A family file (mlp.py, cnn.py, sequence.py) only defines its network: an nn.Module with a
`body` (image -> feature vector) and a `head` (nn.Linear, features -> class logits), built by
`make_net`. The network reads images scaled to [-1, 1].

Transfer learning (`init_from` another run of the same pipeline and options): its weights are
loaded into the body, the head is a fresh one sized for this data set's classes, and with
`freeze=body` the body's parameters get requires_grad False, stay out of the optimiser, and its
batch-norm statistics stay fixed (the body runs in eval mode), so the body is bit-identical
after training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, data_info
from ..data import ImageData
from ..core.errors import StudioError
from ..core.optim import adam
from ..core.schedules import Schedule
from .spec import CLASSIFIER_SPEC
from .tools import ClassifierTools


def augment(x: torch.Tensor, shift: float, rotate: float, scale: float, flip: bool) -> torch.Tensor:
    """Per-image random affine jitter of (B, C, S, S) images, zeros outside (the background of
    digits), drawn from torch's global RNG (seeded and checkpointed by the trainer)."""
    if not (shift or rotate or scale or flip):
        return x
    b, _, s, _ = x.shape
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(rotate)
    zoom = 1 + (torch.rand(b, device=x.device) * 2 - 1) * scale
    move = (torch.rand(b, 2, device=x.device) * 2 - 1) * (2 * shift / s)   # pixels -> [-1, 1] units
    mirror = torch.where(torch.rand(b, device=x.device) < 0.5, -1.0, 1.0) if flip else \
        torch.ones(b, device=x.device)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * mirror, -sin, move[:, 0]], 1),
                         torch.stack([sin * mirror, cos, move[:, 1]], 1)], 1)    # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def source_weights(ref: str) -> tuple[dict[str, torch.Tensor], dict[str, str], Path]:
    """The sampling weights of the run (or .safetensors file) named by `init_from`."""
    from ..core.checkpoints import load_weights
    from ..services.loading import weights_file
    path = weights_file(ref)
    tensors, meta = load_weights(path)
    return tensors, meta, path


def encoder_tensors(ref: str) -> list[tuple[str, torch.Tensor]]:
    """An autoencoder run's encoder tensors (parameters and buffers) in the order its encoder
    registers them, from the input on, named as in its weights; [] for a run without one."""
    from ..services.loading import load_for_sampling
    source = load_for_sampling(ref, device="cpu")
    out = []
    for module_name, module in source.modules.items():
        encoder = getattr(module, "encoder", None)
        if isinstance(encoder, nn.Module):
            out += [(f"{module_name}.encoder.{k}", v) for k, v in encoder.state_dict().items()]
    return out


class ClassifierPipeline(ClassifierTools, Pipeline):
    """A classifier of images, trained by the trainer like every family; it draws nothing.
    spec.py declares its config, training defaults and gpu preset, and each kind's."""
    spec = CLASSIFIER_SPEC
    draws_samples = False
    ema_modules = ("net",)
    best_metric = ("accuracy", "max")         # validation accuracy (pipelines/core/best.py)

    def make_net(self, channels: int, size: int, classes: int) -> nn.Module:
        raise NotImplementedError

    # --- networks and optimiser --------------------------------------------------------------
    @classmethod
    def describe_data(cls, data, config) -> dict[str, Any]:
        info = data_info(data)
        if info["kind"] != "image" or info["num_classes"] < 2:
            raise StudioError(f"{cls.name} classifies images into classes; {data.name!r} has "
                              f"{info.get('num_classes', 0)} class(es) (a folder needs 2+ "
                              f"subfolders)")
        if config.freeze != "none" and not config.init_from:
            raise StudioError("freeze=body needs init_from (a run to take the body from)")
        if config.init_from:  # refuse a wrong source before a run folder is created
            _, meta, path = source_weights(config.init_from)
            source = meta.get("studio_pipeline")
            if config.init_part == "body" and source != cls.name:
                raise StudioError(f"init_from {config.init_from!r} is a run of {source}; "
                                  f"{cls.name} takes a whole body only from a {cls.name} run "
                                  f"(init_part=encoder starts from an autoencoder's encoder)")
            info["init_from_path"] = str(path)
        return info

    def build(self) -> dict[str, nn.Module]:
        info = self.info
        self.transferred: dict[str, str] = {}        # body tensor -> where it came from
        return {"net": self.make_net(info["channels"], info["image_size"],
                                     info["num_classes"])}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, net = self.config, self.modules["net"]
        if c.init_from:
            self.load_body(self.info.get("init_from_path") or c.init_from)
            if c.freeze == "body":
                for name, param in net.body.named_parameters():
                    if f"body.{name}" in self.transferred:
                        param.requires_grad_(False)
        moved = {id(p) for n, p in net.body.named_parameters()
                 if f"body.{n}" in self.transferred}
        params = [p for p in net.parameters() if p.requires_grad]
        if c.transfer_lr > 0 and moved:       # the transferred layers learn at their own rate
            params = [{"params": [p for p in params if id(p) not in moved]},
                      {"params": [p for p in params if id(p) in moved], "lr": c.transfer_lr}]
            params = [g for g in params if g["params"]]
        if c.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)
        elif c.optimizer == "momentum":
            opt = torch.optim.SGD(params, lr=c.lr, momentum=0.9, nesterov=True,
                                  weight_decay=c.weight_decay)
        elif c.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(params, lr=c.lr, weight_decay=c.weight_decay)
        elif c.optimizer == "adagrad":
            opt = torch.optim.Adagrad(params, lr=c.lr, weight_decay=c.weight_decay)
        else:
            opt = adam(params, lr=c.lr, weight_decay=c.weight_decay)
        return {"opt": opt}

    def load_body(self, ref: str) -> None:
        """Copy the source run's part into the body (called before training starts; a resume
        then overwrites everything from its checkpoint) and note where each tensor came from
        in `self.transferred` (the inspector shows it). init_part=body: every body tensor of
        a run of this pipeline; encoder: an autoencoder run's encoder tensors, in order from
        the input, while the shapes match."""
        tensors, meta, path = source_weights(ref)
        own = {k: v for k, v in self.modules["net"].state_dict().items()
               if not k.startswith("head.")}
        run = Path(path).parent.name
        if self.config.init_part == "body":
            for key, value in own.items():
                src = tensors.get(f"net.{key}")
                if src is None or src.shape != value.shape:
                    raise StudioError(f"init_from {path} has a different network ({key}: "
                                      f"{None if src is None else tuple(src.shape)} vs "
                                      f"{tuple(value.shape)}); train with the same options "
                                      f"and image size as the source run")
                self._copy(value, src, key, f"{run}: net.{key}")
            return
        encoder = encoder_tensors(ref)
        if not encoder:
            raise StudioError(f"init_from {path} is a run of {meta.get('studio_pipeline')}, "
                              f"which has no encoder; init_part=encoder takes an autoencoder "
                              f"run")
        for (key, value), (src_key, src) in zip(own.items(), encoder):
            if src.shape != value.shape:
                break
            self._copy(value, src, key, f"{run}: {src_key}")
        if not self.transferred:
            first_key, first = next(iter(own.items()))
            raise StudioError(f"init_from {path}: its encoder's first layer "
                              f"({encoder[0][0]} {tuple(encoder[0][1].shape)}) does not fit "
                              f"this network's ({first_key} {tuple(first.shape)}); match the "
                              f"width and image size")

    def _copy(self, value: torch.Tensor, src: torch.Tensor, key: str, origin: str) -> None:
        with torch.no_grad():
            value.copy_(src.to(value.device, value.dtype))
        self.transferred[key] = origin

    # --- training ------------------------------------------------------------------------------
    def schedules(self) -> dict[str, Schedule]:
        """cosine: linear warm-up, then a cosine decay to 2% of lr at schedule_steps (held
        there); constant: lr throughout, no warm-up."""
        c = self.config
        if c.lr_schedule == "constant":
            return {}
        return {"opt": Schedule(warmup_steps=c.warmup_steps, decay="cosine",
                                decay_steps=c.schedule_steps, floor=0.02)}

    def l1_penalty(self, net: nn.Module) -> torch.Tensor:
        weights = [p.abs().sum() for n, p in net.named_parameters()
                   if p.requires_grad and p.dim() > 1]
        return torch.stack(weights).sum()

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        net, c = self.modules["net"], self.config
        if c.freeze == "body":
            net.body.eval()                      # frozen batch-norm statistics too
        x = augment(batch["images"], c.augment_shift, c.augment_rotate, c.augment_scale,
                    c.augment_flip)              # (B, C, S, S) in [0, 1]
        y = batch["labels"]
        logits = net(x * 2 - 1).float()          # (B, K)
        loss = F.cross_entropy(logits, y, label_smoothing=c.label_smoothing)
        total = loss + c.l1 * self.l1_penalty(net) if c.l1 > 0 else loss
        logs = {"grad_norm": ctx.backward_step(total, "opt", "net")}
        logs.update(self.gradient_logs(net))
        logs.update(loss=loss.detach(), accuracy=(logits.argmax(1) == y).float().mean().detach(),
                    lr=ctx.optimizers["opt"].param_groups[0]["lr"])
        return logs

    def gradient_logs(self, net: nn.Module) -> dict[str, torch.Tensor]:
        """Per-layer gradient norms (the MLP's, to show vanishing gradients); none by default."""
        return {}

    # --- predictions and numbers ----------------------------------------------------------------
    @torch.no_grad()
    def logits(self, images: np.ndarray) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] at the model's size -> (N, K) logits, in batches."""
        net = self.modules["net"]
        expected = (self.info["channels"], self.info["image_size"], self.info["image_size"])
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise StudioError(f"{self.name} takes images of shape (N, "
                              f"{', '.join(map(str, expected))}), got {images.shape}")
        was_training = net.training
        net.eval()
        out = [net(torch.from_numpy(images[i:i + 512]).to(self.device) * 2 - 1).float().cpu()
               for i in range(0, max(len(images), 1), 512)]
        net.train(was_training)
        return torch.cat(out)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities; rows sum to 1."""
        return torch.softmax(self.logits(images), dim=1).numpy().astype(np.float64)

    def validate(self, data: ImageData) -> dict[str, float]:
        logits = self.logits(data.val_images)
        labels = torch.from_numpy(data.val_labels)
        return {"loss": float(F.cross_entropy(logits, labels)),
                "accuracy": float((logits.argmax(1) == labels).float().mean())}

    def evaluate(self, data: ImageData, cache_dir: Path) -> dict[str, float]:
        """Validation accuracy, loss, macro-F1 and each class's accuracy (recall)."""
        from sklearn.metrics import f1_score
        out = self.validate(data)
        pred = self.logits(data.val_images).argmax(1).numpy()
        out["macro_f1"] = float(f1_score(data.val_labels, pred, average="macro", zero_division=0))
        for k, name in enumerate(self.info["class_names"]):
            mask = data.val_labels == k
            if mask.any():
                out[f"accuracy/{name}"] = float(np.mean(pred[mask] == k))
        out["parameters"] = int(sum(p.numel() for p in self.modules["net"].parameters()))
        return out

    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        raise StudioError(f"{self.name} is a classifier: classifiers do not draw samples; use "
                          f"`studio classify --input image.png` or its tools (`studio tool RUN`)")
