"""BigGAN in miniature (Brock, Donahue & Simonyan 2019): a class-conditional GAN whose generator
reads the class and z at every block, not only at its input.

Reading order:
    orthogonal_penalty      BigGAN's modified orthogonal regularisation of G's weights
    ConditionalBatchNorm    batch norm whose gain and bias come from (class embedding, z chunk)
    SelfAttention           SAGAN's attention block (Zhang et al. 2019), one in G and one in D
    GeneratorBlock, Generator, DiscriminatorBlock, Discriminator: the residual nets
    BigGAN                  the pipeline: build, the training step (hinge + orthogonal
                            regularisation), evaluation with the truncation curve, the tool
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
import torch.nn.functional as F
from torch import nn

from ..core.base import ToolResult
from ..core.errors import StudioError
from . import losses as L
from .biggan_spec import BIGGAN
from .networks import ProjectionHead  # linear + <embed(y), features> (Miyato 2018)
from .networks import append_minibatch_std, embed_labels, maybe_sn, resolution_steps
from .pipeline import GAN

# The evaluation's truncation thresholds (0: off), BigGAN's figure 2 in miniature.
CURVE_THRESHOLDS = (0.0, 2.0, 1.5, 1.0, 0.5)
CURVE_METRICS = ("fd", "precision", "recall", "conditional_accuracy")


def orthogonal_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """BigGAN's orthogonal regularisation (section 3.1): sum over weights of
    ||W W^T * (1 - I)||_F^2 with W flattened to (out, in). Only the off-diagonal terms: filters
    are pushed apart, their norms are left free (the original form, ||W W^T - I||, also pinned
    the norms and hurt, the paper found)."""
    total = weights[0].new_zeros(())
    for w in weights:
        flat = w.flatten(1)                                         # (out, in)
        gram = flat @ flat.t()                                      # (out, out)
        total = total + (gram * (1 - torch.eye(len(gram), device=gram.device))).pow(2).sum()
    return total


def conv(cin: int, cout: int, k: int, sn: bool) -> nn.Module:
    return maybe_sn(nn.Conv2d(cin, cout, k, 1, k // 2), sn)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine; gain 1 + g(cond) and bias b(cond) per sample, with
    g, b linear in cond = [shared class embedding, this block's z chunk] (BigGAN section 3)."""

    def __init__(self, channels: int, cond_dim: int, sn: bool):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = maybe_sn(nn.Linear(cond_dim, channels, bias=False), sn)
        self.bias = maybe_sn(nn.Linear(cond_dim, channels, bias=False), sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(cond)[:, :, None, None]                # (B, C, 1, 1)
        return self.norm(x) * gain + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019), as BigGAN uses it: every position attends to
    every other (keys and values max-pooled to a quarter); the output enters through a gain
    gamma that starts at 0, so the block begins as the identity. (B, C, H, W) -> same."""

    def __init__(self, channels: int, sn: bool):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = conv(channels, inner, 1, sn)
        self.key = conv(channels, inner, 1, sn)
        self.value = conv(channels, max(1, channels // 2), 1, sn)
        self.out = conv(max(1, channels // 2), channels, 1, sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)                                # (B, c', HW)
        k = F.max_pool2d(self.key(x), 2).flatten(2)                 # (B, c', HW/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)               # (B, c/2, HW/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)         # (B, HW, HW/4)
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)            # (B, c/2, H, W)
        return x + self.gamma * self.out(o)


# --- the generator ---------------------------------------------------------------------------
class GeneratorBlock(nn.Module):
    """BigGAN's up-block: CBN, ReLU, x2 nearest upsampling, conv3, CBN, ReLU, conv3; a 1x1 conv
    on the upsampled input is the shortcut. (B, cin, H, W) -> (B, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, sn: bool):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_dim, sn)
        self.bn2 = ConditionalBatchNorm(cout, cond_dim, sn)
        self.conv1, self.conv2 = conv(cin, cout, 3, sn), conv(cout, cout, 3, sn)
        self.shortcut = conv(cin, cout, 1, sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


def generator_plan(size: int) -> tuple[int, int]:
    """(start size, up-blocks): from 4x4 (2x2 for 8 px images, so that there are always two
    blocks for z to be split across and a middle resolution for attention) up to `size`."""
    resolution_steps(size)                                          # 8..128, a power of two
    start = 4 if size >= 16 else 2
    return start, int(math.log2(size // start))


class Generator(nn.Module):
    """z (B, z_dim), labels (B,) [or (B, K) class weights] -> images (B, C, S, S) in [-1, 1].
    Hierarchical z: z is cut into 1 + blocks chunks; the first makes the start map, each other
    one joins the shared class embedding as that block's batch-norm condition."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, num_classes: int,
                 shared_dim: int, hierarchical: bool, attention_size: int, sn: bool):
        super().__init__()
        self.start, blocks = generator_plan(size)
        chunk = z_dim // (blocks + 1) if hierarchical else 0
        if hierarchical and chunk < 1:
            raise StudioError(f"hierarchical z splits z into {blocks + 1} chunks; set z_dim to "
                              f"at least {blocks + 1}")
        self.chunks = [z_dim - chunk * blocks] + [chunk] * blocks   # the first takes the rest
        self.shared = nn.Embedding(num_classes, shared_dim)
        ch = width * 2 ** blocks                                    # channels at the start
        self.project = maybe_sn(nn.Linear(self.chunks[0], ch * self.start ** 2), sn)
        self.blocks, self.attention = nn.ModuleList(), nn.ModuleDict()
        for i in range(blocks):                                     # start -> ... -> S
            self.blocks.append(GeneratorBlock(ch, ch // 2, shared_dim + chunk, sn))
            ch //= 2
            if self.start * 2 ** (i + 1) == attention_size:
                self.attention[str(i)] = SelfAttention(ch, sn)
        self.to_image = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), conv(ch, channels, 3, sn),
                                      nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        zs = z.split(self.chunks, dim=1)                            # (B, chunk) each
        y = embed_labels(self.shared, labels)                       # (B, shared_dim)
        h = self.project(zs[0]).view(len(z), -1, self.start, self.start)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([y, zs[i + 1]], dim=1))          # (B, ch/2, 2H, 2W)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self.to_image(h)


# --- the discriminator -----------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    """BigGAN's down-block: ReLU, conv3, ReLU, conv3, 2x2 average pooling; a 1x1 conv shortcut.
    The first block takes the image itself, so it has no ReLU in front and pools before its
    shortcut conv. (B, cin, H, W) -> (B, cout, H/2, W/2) (H, W when `down` is off)."""

    def __init__(self, cin: int, cout: int, sn: bool, first: bool, down: bool = True):
        super().__init__()
        self.conv1, self.conv2 = conv(cin, cout, 3, sn), conv(cout, cout, 3, sn)
        self.shortcut = conv(cin, cout, 1, sn) if cin != cout or down else nn.Identity()
        self.first, self.down = first, down

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv2(F.relu(self.conv1(x if self.first else F.relu(x)))))
        skip = self.shortcut(self.pool(x)) if self.first else self.pool(self.shortcut(x))
        return h + skip


class Discriminator(nn.Module):
    """images (B, C, S, S), labels (B,) -> (logit (B,), features (B, F)): down-blocks to 4x4,
    one more block there, ReLU and a sum over positions, then a linear and a projection term."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int,
                 attention_size: int, sn: bool, minibatch_std: bool):
        super().__init__()
        blocks, ch = [], width
        for i in range(resolution_steps(size)):                     # S -> ... -> 4
            blocks.append(DiscriminatorBlock(channels if i == 0 else ch, ch * 2 if i else ch,
                                             sn, first=i == 0))
            ch = ch * 2 if i else ch
            if size // 2 ** (i + 1) == attention_size:
                blocks.append(SelfAttention(ch, sn))
        blocks.append(DiscriminatorBlock(ch, ch, sn, first=False, down=False))
        self.body = nn.Sequential(*blocks)                          # (B, ch, 4, 4)
        self.minibatch_std = minibatch_std
        self.features = ch + int(minibatch_std)
        self.head = ProjectionHead(self.features, num_classes, projection=True, sn=sn)

    def forward(self, x: torch.Tensor, labels: torch.Tensor):
        h = F.relu(self.body(x))
        if self.minibatch_std:
            h = append_minibatch_std(h)
        h = h.sum(dim=(2, 3))                                       # (B, F)
        return self.head(h, labels), h


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
        fake batch of the real batch's classes; the generator's loss adds beta * the orthogonal
        penalty. Minibatch-std groups of 4 need a batch size divisible by 4 to keep real and
        fake apart (64 is)."""
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        real = batch["images"] * 2 - 1                              # (B, C, S, S) in [-1, 1]
        labels = batch["labels"]                                    # (B,)
        z = torch.randn(len(real), c.z_dim, device=real.device)
        g_step = (ctx.step + 1) % c.n_critic == 0
        with torch.set_grad_enabled(g_step):   # critic-only steps need no graph through G
            fake = G(z, labels)
        # One D pass over real and fake together: D has no batch norm, so this is exactly two
        # passes (minibatch-std groups never straddle the halves), at half the layer calls.
        both = torch.cat([real, fake.detach()])                     # (2B, C, S, S)
        d_real, d_fake = D(self.noisy(both, ctx.step), labels.repeat(2))[0].float().chunk(2)
        loss_d = L.discriminator_loss(c.loss, d_real, d_fake, 1 - c.label_smoothing)
        probability = c.loss in L.PROBABILITY_LOSSES
        logs = {"grad_norm_d": ctx.backward_step(loss_d, "d", "discriminator"),
                "loss_d": loss_d.detach(),
                "d_real": (torch.sigmoid(d_real) if probability else d_real).mean().detach(),
                "d_fake": (torch.sigmoid(d_fake) if probability else d_fake).mean().detach(),
                "diversity": L.diversity_ratio(fake, real)}
        if not g_step:
            return logs
        loss_g = L.generator_loss(c.loss, D(self.noisy(fake, ctx.step), labels)[0].float())
        total = loss_g
        if c.ortho_reg > 0:
            ortho = orthogonal_penalty(self.ortho_weights())
            total = loss_g + c.ortho_reg * ortho
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
        from ..metrics import judge_samples, judged_sample_count
        out = {}
        n = judged_sample_count(data, self.num_classes)
        for t in thresholds:
            if t == 0 and untruncated is not None:
                judged = untruncated
            else:
                samples = self.sample(n, seed=0, truncation=t)
                judged = judge_samples(data, samples.images, samples.labels,
                                       cache_dir=cache_dir)
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
