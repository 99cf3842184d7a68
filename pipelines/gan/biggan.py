"""BigGAN in miniature (Brock, Donahue & Simonyan 2019): a class-conditional GAN whose generator
reads the class and z at every block, not only at its input.

Reading order (the networks are in biggan_networks.py: orthogonal_penalty, conditional batch
norm, self-attention, the residual generator and discriminator):
    BigGAN                  the pipeline: build, the training step (hinge + orthogonal
                            regularisation + mode seeking), evaluation with the truncation
                            curve, the tool
    curve_png               the truncation-curve figure

Everything else (latents from seeds and the truncation trick, class labels, EMA of G,
interpolation, the judge, warnings) is the GAN base's (pipeline.py). BigGAN's truncation trick
is the base's `truncation`: z entries beyond the threshold are redrawn.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from torch import nn

from ..core.base import ToolResult
from ..core.errors import StudioError
from . import losses as L
from .biggan_spec import BIGGAN
from .biggan_networks import Discriminator, Generator, generator_plan, orthogonal_penalty
from .pipeline import GAN

# The evaluation's truncation thresholds (0: off), BigGAN's figure 2 in miniature.
CURVE_THRESHOLDS = (0.0, 2.0, 1.5, 1.0, 0.5)
CURVE_METRICS = ("fd", "precision", "recall", "conditional_accuracy")


# --- the pipeline ----------------------------------------------------------------------------
class BigGAN(GAN):
    """BigGAN: the GAN base with BigGAN's nets, orthogonal regularisation in G's step, and an
    evaluation that adds the quality-vs-diversity curve over truncation thresholds."""
    spec = BIGGAN

    def check_config(self) -> None:
        super().check_config()
        c = self.config
        if self.info.get("num_classes", 1) < 2:
            name = self.info.get("name", "this data")
            raise StudioError(f"BigGAN is class-conditional and {name!r} has no classes; use "
                              f"labelled data (digits, shapes, or a folder with one subfolder "
                              f"per class)")
        unused = {"architecture": c.architecture != "conv", "d_norm": c.d_norm != "none",
                  "gradient_penalty": c.gradient_penalty > 0, "weight_clip": c.weight_clip > 0,
                  "info codes": self.info_dims > 0}
        if any(unused.values()):
            raise StudioError(f"BigGAN has its own residual nets and losses; leave "
                              f"{', '.join(k for k, v in unused.items() if v)} at the default")

    @classmethod
    def describe_data(cls, data, config) -> dict:
        """The GAN's data facts, plus the nets' width, picked from the image size once when
        width is 0 (48 at 8 px, 32 at 16, 8 from 32) and kept with the run, so that a later
        change of that choice cannot break its weights."""
        info = super().describe_data(data, config)
        s = info["image_size"]
        info["width"] = config.width or (48 if s <= 8 else 32 if s <= 16 else 8)
        return info

    def build(self) -> dict[str, nn.Module]:
        self.check_config()
        c, info = self.config, self.info
        ch, s, k = info["channels"], info["image_size"], self.num_classes
        # chosen when the run began (describe_data); a run begun before session 21 got 32 / 8
        w = c.width or info.get("width") or (32 if s <= 16 else 8)
        start, blocks = generator_plan(s)
        inner = [start * 2 ** (i + 1) for i in range(blocks - 1)]  # between G's blocks
        attention = 0 if not c.attention else c.attention_size or (s // 2 if s <= 16 else s // 4)
        if attention and attention not in inner:
            raise StudioError(f"attention_size must be a resolution between the nets' blocks "
                              f"({s} px images: {', '.join(map(str, inner))}), or 0 to pick "
                              f"one; got {attention}")
        G = Generator(c.z_dim, ch, s, w, k, c.shared_dim, c.hierarchical_z, attention,
                      c.spectral_norm)
        D = Discriminator(ch, s, w, k, attention, c.spectral_norm, c.minibatch_std)
        for module in (G, D):          # BigGAN: orthogonal initialisation of every layer
            for m in module.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    nn.init.orthogonal_(m.parametrizations.weight.original
                                        if hasattr(m, "parametrizations") else m.weight)
        return {"generator": G, "discriminator": D}

    def ortho_weights(self) -> list[torch.Tensor]:
        """G's matrices and filters, not the shared embedding (BigGAN leaves it out), nor
        biases and batch-norm vectors."""
        G = self.modules["generator"]
        shared = {id(p) for p in G.shared.parameters()}
        return [p for p in G.parameters() if p.dim() >= 2 and id(p) not in shared]

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """n_critic discriminator steps (BigGAN: 2) per generator step, every step with a fresh
        fake batch of the real batch's classes (in a generator step with mode seeking, the
        second half of the fakes takes the first half's); the generator's loss adds beta * the
        orthogonal penalty and the mode-seeking term (losses.mode_seeking, Mao et al. 2019).
        Minibatch-std groups of 4 need a batch size divisible by 4 to keep real and fake apart
        (64 is)."""
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        real = batch["images"] * 2 - 1                              # (B, C, S, S) in [-1, 1]
        labels = batch["labels"]                                    # (B,)
        z = torch.randn(len(real), c.z_dim, device=real.device)
        g_step = (ctx.step + 1) % c.n_critic == 0
        half = len(real) // 2
        seeking = g_step and c.mode_seeking > 0 and half > 0
        # mode seeking: fakes i and half + i share a class (the first half's) and differ in z
        fake_labels = labels.clone() if seeking else labels
        if seeking:
            fake_labels[half:2 * half] = labels[:half]
        with torch.set_grad_enabled(g_step):   # critic-only steps need no graph through G
            fake = G(z, fake_labels)
        # One D pass over real and fake together: D has no batch norm, so this is exactly two
        # passes (minibatch-std groups never straddle the halves), at half the layer calls.
        both = torch.cat([real, fake.detach()])                     # (2B, C, S, S)
        d_real, d_fake = D(self.noisy(both, ctx.step),
                           torch.cat([labels, fake_labels]))[0].float().chunk(2)
        loss_d = L.discriminator_loss(c.loss, d_real, d_fake, 1 - c.label_smoothing)
        probability = c.loss in L.PROBABILITY_LOSSES
        logs = {"grad_norm_d": ctx.backward_step(loss_d, "d", "discriminator"),
                "loss_d": loss_d.detach(),
                "d_real": (torch.sigmoid(d_real) if probability else d_real).mean().detach(),
                "d_fake": (torch.sigmoid(d_fake) if probability else d_fake).mean().detach(),
                "diversity": L.diversity_ratio(fake, real)}
        if not g_step:
            return logs
        loss_g = L.generator_loss(c.loss, D(self.noisy(fake, ctx.step), fake_labels)[0].float())
        total = loss_g
        if seeking:
            pair = slice(half, 2 * half)
            loss_ms = L.mode_seeking(fake[:half], fake[pair], z[:half], z[pair])
            total = total + c.mode_seeking * loss_ms
            logs["loss_mode_seeking"] = loss_ms.detach()
        if c.ortho_reg > 0:
            ortho = orthogonal_penalty(self.ortho_weights())
            total = total + c.ortho_reg * ortho
            logs["ortho_reg"] = ortho.detach()
        logs["grad_norm_g"] = ctx.backward_step(total, "g", "generator")
        logs["loss_g"] = loss_g.detach()
        return logs

    # --- evaluation: the quality-vs-diversity curve ------------------------------------------
    def truncation_curve(self, ctx, thresholds: str, columns: int, seed: int,
                         judge: bool) -> ToolResult:
        """One row of samples per threshold (the same seeds and classes in each), and with
        `judge` the judge's numbers per threshold plotted as BigGAN's trade-off curve."""
        values = parse_thresholds(thresholds)
        y = torch.arange(columns) % self.num_classes
        rows = [self.generate(self.latents(list(range(seed, seed + columns)), t)[0], y, None)
                for t in values]
        curve = self.curve(ctx.load_data(), ctx.cache_dir, values) if judge else {}
        return ToolResult(images=np.concatenate(rows), columns=columns, values=curve,
                          figure_png=curve_png(values, rows, curve))

    def curve(self, data, cache_dir, thresholds=CURVE_THRESHOLDS,
              untruncated: dict | None = None) -> dict[str, float]:
        """{trunc_<t>_<metric>: value}: the judge's fd (and its floor), precision, recall and
        conditional accuracy of the judged sample set (seed 0) drawn at each threshold.
        `untruncated`: threshold 0's numbers, already judged (the base evaluation's)."""
        from ..metrics import JUDGED_DRAWS, draw_judged_samples, judge_samples, judged_sample_count
        out = {}
        n = judged_sample_count(data, self.num_classes)
        for t in thresholds:
            if t == 0 and untruncated is not None:
                judged = untruncated
            else:
                images, labels = draw_judged_samples(self.sample, n, truncation=t)
                judged = judge_samples(data, images, labels, cache_dir=cache_dir,
                                       draws=JUDGED_DRAWS)
            for key in CURVE_METRICS + ("fd_floor",):
                out[f"trunc_{t:.1f}_{key}"] = float(judged[key])
        return out

    def evaluate(self, data, cache_dir) -> dict[str, float]:
        """The GAN base's judgement (untruncated, seed 0), plus the truncation curve."""
        results = super().evaluate(data, cache_dir)
        return {**results, **self.curve(data, cache_dir, CURVE_THRESHOLDS, untruncated=results)}


def parse_thresholds(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 <= v <= 4 or not math.isfinite(v) for v in values):
        raise StudioError(f"thresholds must be numbers from 0 to 4 separated by commas, like "
                          f"0,2,1.5,1,0.5; got {text!r}")
    return values


def tile(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of (N, C, H, W) images in [0, 1] -> one (H', W', C) picture, 1 px apart."""
    n, ch, h, w = rows[0].shape
    out = np.ones((len(rows) * (h + 1) - 1, n * (w + 1) - 1, ch), np.float32)
    for r, images in enumerate(rows):
        for i, image in enumerate(images):
            out[r * (h + 1):r * (h + 1) + h, i * (w + 1):i * (w + 1) + w] = image.transpose(1, 2, 0)
    return out


def curve_png(thresholds: list[float], rows: list[np.ndarray], curve: dict[str, float]) -> bytes:
    """The sample rows, one per threshold, and with judged numbers the trade-off: precision
    (quality) against recall (diversity), and fd (as a multiple of its floor) and conditional
    accuracy against the threshold."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [f"{t:g}" if t else "off" for t in thresholds]
    panels = 3 if curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 2, 0.6 * len(rows) + 2.4),
                             dpi=100, squeeze=False,
                             gridspec_kw={"width_ratios": [1] * (panels - 1) + [1.6]})
    picture = tile(rows)
    grid = axes[0, -1]
    grid.imshow(picture[..., 0] if picture.shape[2] == 1 else picture, cmap="gray", vmin=0, vmax=1)
    h = rows[0].shape[2] + 1
    grid.set_yticks([r * h + h / 2 - 1 for r in range(len(rows))], [f"t={n}" for n in names])
    grid.set_xticks([])
    grid.set_title("samples (same seeds and classes per row)", fontsize=9)
    if curve:
        get = lambda t, key: curve[f"trunc_{t:.1f}_{key}"]   # noqa: E731
        ax = axes[0, 0]
        ax.plot([get(t, "recall") for t in thresholds],
                [get(t, "precision") for t in thresholds], "o-")
        for t, n in zip(thresholds, names):
            ax.annotate(n, (get(t, "recall"), get(t, "precision")), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("recall (diversity)")
        ax.set_ylabel("precision (quality)")
        ax.set_title("quality vs diversity by truncation", fontsize=9)
        ax = axes[0, 1]
        x = range(len(thresholds))
        ax.plot(x, [get(t, "fd") / get(t, "fd_floor") for t in thresholds], "o-",
                label="fd / floor")
        ax.set_xticks(list(x), names)
        ax.set_xlabel("truncation threshold")
        ax.set_ylabel("fd as a multiple of its floor")
        twin = ax.twinx()
        twin.plot(x, [get(t, "conditional_accuracy") for t in thresholds], "s--", color="C1",
                  label="conditional accuracy")
        twin.set_ylabel("conditional accuracy")
        ax.set_title("fd and class accuracy by threshold", fontsize=9)
        fig.legend(loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, 0.0))
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0.06 if curve else 0, 1, 1))
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
