"""The classifiers' tools (`studio tool RUN NAME`, and the UI):

    filters        the learned first-layer filters as a picture (conv kernels; an MLP's first
                   layer weights as images)
    feature-maps   every conv layer's output for one image: rows are layers, columns the input
                   and the first `channels` maps (each scaled to [0, 1], enlarged to the input)
    confusion      the confusion matrix on the validation split, as a figure

A mixin of ClassifierPipeline; it uses `self.modules["net"]`, `logits` and `info`. The tools'
options and declarations (FILTERS, FEATURE_MAPS, CONFUSION) are in spec.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import ToolResult
from ..core.errors import StudioError


def _unit_scale(w: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> each item scaled symmetrically so 0 is mid grey, the largest |w| is 0 or 1."""
    peak = w.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *([1] * (w.dim() - 1)))
    return 0.5 + 0.5 * w / peak


def _min_max(x: torch.Tensor) -> torch.Tensor:
    lo = x.flatten(1).amin(1).view(-1, 1, 1)
    hi = x.flatten(1).amax(1).view(-1, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(1e-12)


class ClassifierTools:
    @torch.no_grad()
    def tool_filters(self, ctx, count: int) -> ToolResult:
        net = self.modules["net"]
        first = next((m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
        if first is None:
            raise StudioError(f"{self.name} has no conv or linear first layer to draw")
        w = first.weight.detach().float().cpu()[:count]
        if isinstance(first, nn.Linear):                    # (units, C*H*W) -> (units, C, H, W)
            c, s = self.info["channels"], self.info["image_size"]
            if w.shape[1] != c * s * s:
                raise StudioError(f"{self.name}'s first layer does not read whole images")
            w = w.view(-1, c, s, s)
        elif w.shape[1] not in (1, 3):                      # show the mean over input channels
            w = w.mean(1, keepdim=True)
        images = _unit_scale(w).numpy()
        return ToolResult(images=images, columns=int(np.ceil(np.sqrt(len(images)))),
                          values={"filters": len(images), "shape": list(w.shape[1:])},
                          text=f"{len(images)} first-layer filters of {self.name}, "
                               f"{w.shape[-2]}x{w.shape[-1]} each (mid grey = 0)")

    @torch.no_grad()
    def tool_feature_maps(self, ctx, image: int, channels: int, layers: int) -> ToolResult:
        if ctx.images is not None:
            x = ctx.images[:1]
        else:
            data = ctx.load_data()
            if image >= len(data.val_images):
                raise StudioError(f"image must be a validation image index below "
                                  f"{len(data.val_images)}")
            x = data.val_images[image:image + 1]
        net = self.modules["net"]
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)][:layers]
        if not convs:
            raise StudioError(f"{self.name} has no conv layers; feature maps need a CNN")
        outputs: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda mod, inp, out: outputs.append(out.detach()))
                 for m in convs]
        try:
            proba = torch.softmax(self.logits(x), 1)[0]
        finally:
            for h in hooks:
                h.remove()
        size = self.info["image_size"]
        picture = torch.from_numpy(np.asarray(x[0], dtype=np.float32)).mean(0, keepdim=True)
        rows = []
        for out in outputs:                                 # (1, O, h, w) per layer
            maps = _min_max(out[0, :channels].float().cpu())             # (O', h, w)
            maps = F.interpolate(maps[None], size=(size, size), mode="nearest")[0]
            blank = torch.zeros(channels - len(maps), size, size)
            rows += [picture[0], *maps, *blank]
        images = torch.stack(rows)[:, None].numpy()          # (layers * (1 + channels), 1, S, S)
        best = int(proba.argmax())
        return ToolResult(images=images, columns=channels + 1,
                          values={"predicted": self.info["class_names"][best],
                                  "probability": float(proba[best])},
                          text=f"rows: {len(outputs)} conv layers; columns: input | "
                               f"{channels} maps")

    def tool_confusion(self, ctx, split: str) -> ToolResult:
        from ..classic.plots import confusion_png
        data = ctx.load_data()
        images, labels = ((data.val_images, data.val_labels) if split == "val"
                          else (data.train_images, data.train_labels))
        pred = self.logits(images).argmax(1).numpy()
        accuracy = float(np.mean(pred == labels))
        png = confusion_png(labels, pred, list(self.info["class_names"]),
                            title=f"{self.name} confusion ({split})")
        return ToolResult(figure_png=png, values={"accuracy": accuracy, "n": int(len(labels))})
