"""The family's tools (`studio tool RUN NAME`, and the UI): reconstruct, interpolate, traverse,
latent-map, denoise, anomaly. They are methods of every autoencoder pipeline (a mixin) and use
only its `encode`, `decode_images`, `reconstruct`, `measure` and `latent_range`.

Images in and out are (N, C, H, W) in [0, 1]; validation data comes from `ctx.load_data()`.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from ..core.base import ToolResult
from ..core.errors import StudioError
from .losses import corrupt, pca_2d


class AutoencoderTools:
    """The tool methods; mixed into AutoencoderPipeline."""

    def _val(self, ctx, split: str = "val"):
        data = ctx.load_data()
        self._data = data                                     # sample() may reuse it
        if split == "train":
            return data.train_images, data.train_labels
        return data.val_images, data.val_labels

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)

    @torch.no_grad()
    def tool_reconstruct(self, ctx) -> ToolResult:
        x = self._tensor(ctx.images)
        recon = self.reconstruct(x)
        mse = (recon - x).pow(2).flatten(1).mean(1)
        pairs = torch.stack([x, recon], 1).reshape(-1, *x.shape[1:])
        return ToolResult(images=pairs.float().cpu().numpy(), columns=2,
                          values={f"image_{i}.mse": float(v) for i, v in enumerate(mse)},
                          text="columns: input | reconstruction")

    @torch.no_grad()
    def tool_interpolate(self, ctx, a: int, b: int, frames: int) -> ToolResult:
        if ctx.images is not None and len(ctx.images) >= 2:  # two given images
            x, y = self._tensor(ctx.images[:2]), None
        else:
            images, labels = self._val(ctx)
            if max(a, b) >= len(images):
                raise StudioError(f"a and b must be validation image indices below {len(images)}")
            x, y = self._tensor(images[[a, b]]), torch.as_tensor(labels[[a, b]], device=self.device)
        if self.num_classes and y is None:
            y = self.labels_for(x)
        z = self.encode(x, y if self.num_classes else None)  # (2, D)
        t = torch.linspace(0, 1, frames, device=self.device)[:, None]
        zs = (1 - t) * z[0] + t * z[1]                        # (frames, D)
        ys = None
        if self.num_classes:                                  # the class blends too
            onehot = F.one_hot(y, self.num_classes).float()
            ys = (1 - t) * onehot[0] + t * onehot[1]
        walk = torch.cat([x[:1], self.decode_images(zs, ys), x[1:2]])
        return ToolResult(images=walk.float().cpu().numpy(), columns=frames + 2,
                          text="columns: image a | decoded frames | image b")

    @torch.no_grad()
    def tool_traverse(self, ctx, image: int, dims: int, steps: int, span: float) -> ToolResult:
        images, labels = self._val(ctx)
        if image >= len(images):
            raise StudioError(f"image must be a validation image index below {len(images)}")
        y_all = torch.as_tensor(labels, device=self.device) if self.num_classes else None
        latents = self.encode(self._tensor(images), y_all).float().cpu()     # (N, D)
        centre, scale = self.latent_range(latents)
        base = latents[image] if image >= 0 else centre
        order = latents.var(0).argsort(descending=True)[:dims]             # most varied first
        values = torch.linspace(-span, span, steps)
        rows = []
        for d in order:
            z = base.repeat(steps, 1)                         # (steps, D)
            z[:, d] = centre[d] + values * scale[d]
            rows.append(z)
        z = torch.cat(rows).to(self.device)                   # (dims * steps, D)
        y = None
        if self.num_classes:
            y = torch.full((len(z),), int(labels[max(image, 0)]), device=self.device)
        grid = self.decode_images(z, y)
        return ToolResult(images=grid.float().cpu().numpy(), columns=steps,
                          values={"rows": " ".join(str(int(d)) for d in order),
                                  "values": " ".join(f"{v:.2g}" for v in values.tolist())},
                          text=f"rows: latent units {', '.join(str(int(d)) for d in order)}; "
                               f"columns: -{span:g} to +{span:g} standard deviations")

    @torch.no_grad()
    def tool_latent_map(self, ctx, split: str) -> ToolResult:
        images, labels = self._val(ctx, split)
        y = torch.as_tensor(labels, device=self.device) if self.num_classes else None
        latents = self.encode(self._tensor(images), y).float().cpu()        # (N, D)
        points, explained = pca_2d(latents)
        png = _scatter_png(points.numpy(), labels, ctx.load_data().class_names,
                           title=f"{self.name}: {split} latents, {latents.shape[1]} dims"
                                 + (", PCA" if latents.shape[1] > 2 else ""),
                           axes=[f"PC{i + 1} ({100 * e:.0f}% of variance)" if latents.shape[1] > 2
                                 else f"z{i + 1}" for i, e in enumerate(explained)])
        return ToolResult(figure_png=png, values={"points": len(points),
                                                  "latent_dims": int(latents.shape[1]),
                                                  "explained_variance_2d": float(sum(explained))})

    @torch.no_grad()
    def tool_denoise(self, ctx, corruption: str, noise_level: float, seed: int) -> ToolResult:
        x = self._tensor(ctx.images)
        if corruption == "none":
            den = self.reconstruct(x)
            grid = torch.stack([x, den], 1)
            return ToolResult(images=grid.reshape(-1, *x.shape[1:]).float().cpu().numpy(),
                              columns=2, text="columns: noisy input | denoised")
        noisy = corrupt(x, corruption, noise_level, torch.Generator().manual_seed(seed))
        den = self.reconstruct(noisy)
        grid = torch.stack([x, noisy, den], 1).reshape(-1, *x.shape[1:])
        mse = lambda a: float((a - x).pow(2).mean())         # noqa: E731
        return ToolResult(images=grid.float().cpu().numpy(), columns=3,
                          values={"mse_noisy": mse(noisy), "mse_denoised": mse(den)},
                          text="columns: clean | corrupted | denoised")

    @torch.no_grad()
    def tool_anomaly(self, ctx) -> ToolResult:
        val_images, _ = self._val(ctx)
        # Both measured without labels: a CVAE scores every image by its likeliest class.
        mine, val = self.measure(ctx.images), self.measure(val_images)
        keys = [k for k in ("mse", "neg_elbo") if k in mine]
        values, lines = {}, []
        for key in keys:
            ref = val[key]
            values.update({f"val.{key}.mean": float(ref.mean()), f"val.{key}.std": float(ref.std()),
                           f"val.{key}.p99": float(ref.quantile(0.99))})
        for i in range(len(ctx.images)):
            parts = []
            for key in keys:
                score, ref = float(mine[key][i]), val[key]
                pct = float((ref < score).float().mean() * 100)
                values[f"image_{i}.{key}"] = score
                values[f"image_{i}.{key}_percentile"] = pct
                z = (score - ref.mean()) / ref.std().clamp_min(1e-12)
                values[f"image_{i}.{key}_z"] = float(z)
                parts.append(f"{key} {score:.4g} (above {pct:.1f}% of validation images; "
                             f"their mean {float(ref.mean()):.4g})")
            lines.append(f"image {i}: " + "; ".join(parts))
        x = self._tensor(ctx.images)
        pairs = torch.stack([x, self.reconstruct(x)], 1).reshape(-1, *x.shape[1:])
        return ToolResult(images=pairs.float().cpu().numpy(), columns=2, values=values,
                          text="\n".join(lines))


def _scatter_png(points: np.ndarray, labels: np.ndarray, class_names: list[str], *, title: str,
                 axes: list[str]) -> bytes:
    """A scatter plot of points (N, 2) coloured by label, as PNG bytes (Agg, no display)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure   # a bare Figure draws with Agg; no pyplot state
    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    classes = sorted(set(int(c) for c in labels))
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, c in enumerate(classes):
        mask = labels == c
        name = class_names[c] if c < len(class_names) else str(c)
        ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.8, color=cmap(i % cmap.N),
                   label=name, linewidths=0)
    ax.set_title(title)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.legend(title="class", fontsize=8, markerscale=1.5, loc="center left",
              bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
