"""GANs. DCGAN (Radford et al., 2015): a transposed-conv generator with batch norm and a
strided-conv discriminator (batch norm optional, see `d_norm`), trained with the
non-saturating loss. With labels it is class-conditional: the generator reads a label
embedding next to z, and the discriminator adds a projection term (Miyato & Koyama, 2018):
logit = head(h) + <embed(y), h>.

Read top to bottom: the config, the two networks, the pipeline (losses in `train_step`,
`sample`, `evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Pipeline, Samples
from .config import option
from .data import ImageData
from .errors import StudioError
from .metrics import fit_probe_classifier, probe_accuracy


@dataclass
class DCGANConfig:
    z_dim: int = option(64, "Size of the noise vector z.", low=1, high=1024)
    width: int = option(0, "Channels of the highest-resolution feature map, doubled at each "
                        "step down to 4x4 (so every layer costs about the same). 0 picks by "
                        "image size: 32 up to 16 px, 16 from 32 px (2-core CPU budgets).",
                        low=0, high=512)
    conditional: bool = option(True, "Condition on the class label (label embedding in G, "
                               "projection in D) when the data has two or more classes.")
    lr_g: float = option(2e-4, "Generator learning rate (Adam).", low=0.0, high=1.0)
    lr_d: float = option(2e-4, "Discriminator learning rate (Adam).", low=0.0, high=1.0)
    beta1: float = option(0.5, "Adam beta1; DCGAN's 0.5 damps oscillation.", low=0.0, high=1.0)
    beta2: float = option(0.999, "Adam beta2.", low=0.0, high=1.0)
    d_norm: str = option("none", "Normalisation in the discriminator: none, or batch (the "
                         "paper's). With batch norm, D wins outright on `shapes` within 100 "
                         "steps (measured), even with real and fake in one batch.",
                         choices=("none", "batch"))
    minibatch_std: bool = option(True, "Give the discriminator a minibatch standard-deviation "
                                 "feature, so it can see when every fake looks alike (mode "
                                 "collapse).")
    ema_decay: float = option(0.999, "EMA of the generator weights used for sampling; 0 turns "
                              "it off.", low=0.0, high=1.0)
    image_size: int = option(0, "Resize the data to this size (a power of two, 8 to 128); 0 "
                             "keeps the data set's size.", low=0, high=128)


def _resolution_steps(size: int) -> int:
    """How many x2 steps lie between the 4x4 base and `size`."""
    steps = math.log2(size) - 2 if size > 0 else -1
    if steps < 1 or not steps.is_integer() or size > 128:
        raise StudioError(f"DCGAN needs square images of 8, 16, 32, 64 or 128 pixels, got {size}; "
                          f"set image_size to one of those")
    return int(steps)


class Generator(nn.Module):
    """z (B, z_dim) [+ label (B,)] -> image (B, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, num_classes: int):
        super().__init__()
        steps = _resolution_steps(size)
        ch = width * 2 ** steps                               # channels at 4x4
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.project = nn.Sequential(nn.Linear(in_dim, ch * 16, bias=False),
                                     nn.Unflatten(1, (ch, 4, 4)), nn.BatchNorm2d(ch), nn.ReLU())
        blocks = []
        for _ in range(steps):                                # 4 -> 8 -> ... -> S
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        self.body = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)    # (B, 2 * z_dim)
        return self.to_image(self.body(self.project(z)))


def append_minibatch_std(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(B, C, 4, 4) -> (B, C + 1, 4, 4): one more channel holding how much the features vary
    within each group of `group` consecutive images (Karras et al., 2018); with the real half
    of a batch first and the fake half after it, no group mixes the two. A discriminator that
    sees single images cannot tell that every fake looks alike; this one can."""
    b, c, hh, ww = h.shape
    g = math.gcd(b, group)                                    # consecutive images per group
    groups = h.float().reshape(-1, g, c, hh, ww)              # (B/g, g, C, 4, 4)
    std = (groups.var(dim=1, unbiased=False) + 1e-8).sqrt()   # (B/g, C, 4, 4)
    std = std.mean(dim=(1, 2, 3)).to(h.dtype)                 # (B/g,)
    std = std.repeat_interleave(g).reshape(b, 1, 1, 1).expand(b, 1, hh, ww)
    return torch.cat([h, std], dim=1)


class Discriminator(nn.Module):
    """image (B, C, S, S) [+ label (B,)] -> real/fake logit (B,)."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int,
                 batch_norm: bool = False, minibatch_std: bool = True):
        super().__init__()
        steps = _resolution_steps(size)
        layers = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]  # no BN on the input
        ch = width
        for _ in range(steps):                                # S -> ... -> 4
            norm = nn.BatchNorm2d(ch * 2) if batch_norm else nn.Identity()
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batch_norm), norm,
                       nn.LeakyReLU(0.2)]
            ch *= 2
        self.body = nn.Sequential(*layers)                     # (B, ch, 4, 4)
        self.minibatch_std = minibatch_std
        features = (ch + int(minibatch_std)) * 16
        self.head = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        if self.minibatch_std:
            h = append_minibatch_std(h)
        h = h.flatten(1)                                      # (B, features)
        logit = self.head(h).squeeze(1)
        if self.embed is not None:                            # projection term
            logit = logit + (self.embed(labels) * h).sum(dim=1)
        return logit


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv and linear weights ~ N(0, 0.02), batch-norm scales ~
    N(1, 0.02). Label embeddings start small too, so the projection term does not swamp the
    discriminator's logit at step 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(Pipeline):
    name = "dcgan"
    Config = DCGANConfig
    # 2,000 steps: about 1.5 minutes on 2 CPU cores for digits; class accuracy saturates
    # well before (see the README's measurements).
    train_defaults = {"steps": 2000, "batch_size": 64, "sample_every": 250,
                      "checkpoint_every": 500}
    ema_modules = ("generator",)

    @property
    def num_classes(self) -> int:
        """Classes the model is conditioned on; 0 means unconditional."""
        n = self.info.get("num_classes", 1)
        return n if self.config.conditional and n >= 2 else 0

    def build(self) -> dict[str, nn.Module]:
        c, s = self.info["channels"], self.info["image_size"]
        # Each conv layer of DCGAN costs ~width^2 * 16 * size^2 / 4 MACs per image, the same at
        # every resolution, so a 32 px model at width 32 is ~16x the work of an 8 px one.
        w = self.config.width or (32 if s <= 16 else 16)
        modules = {"generator": Generator(self.config.z_dim, c, s, w, self.num_classes),
                   "discriminator": Discriminator(c, s, w, self.num_classes,
                                                  batch_norm=self.config.d_norm == "batch",
                                                  minibatch_std=self.config.minibatch_std)}
        for module in modules.values():
            module.apply(dcgan_init)
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {"g": torch.optim.Adam(self.modules["generator"].parameters(),
                                      lr=self.config.lr_g, betas=betas),
                "d": torch.optim.Adam(self.modules["discriminator"].parameters(),
                                      lr=self.config.lr_d, betas=betas)}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        G, D = self.modules["generator"], self.modules["discriminator"]
        real = batch["images"] * 2 - 1                        # (B, C, S, S) in [-1, 1]
        labels = batch["labels"] if self.num_classes else None
        z = torch.randn(real.shape[0], self.config.z_dim, device=real.device)
        fake = G(z, labels)

        # Discriminator: real -> 1, fake -> 0 (fake detached: this step must not move G). One
        # pass over real and fake together, so batch norm (if on) cannot tell them apart by
        # their batch statistics alone.
        both = D(torch.cat([real, fake.detach()]),
                 None if labels is None else torch.cat([labels, labels]))
        d_real, d_fake = both.chunk(2)
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        grad_d = ctx.backward_step(loss_d, "d", "discriminator")

        # Generator, non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        d_gen = D(fake, labels)
        loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        grad_g = ctx.backward_step(loss_g, "g", "generator")

        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(d_real).mean().detach(),
                "d_fake": torch.sigmoid(d_fake).mean().detach(),
                "grad_norm_d": grad_d, "grad_norm_g": grad_g}

    def class_labels(self, n: int, labels=None) -> torch.Tensor | None:
        """The labels to draw: the ones asked for (one int or one per image), else cycling
        through the classes so a grid shows each."""
        if not self.num_classes:
            if labels is not None:
                raise StudioError("this model is not class-conditional; leave out the class")
            return None
        if labels is None:
            return torch.arange(n) % self.num_classes
        out = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        out = out.expand(n) if out.numel() == 1 else out
        if out.numel() != n or out.min() < 0 or out.max() >= self.num_classes:
            raise StudioError(f"class must be between 0 and {self.num_classes - 1} "
                              f"({', '.join(self.info.get('class_names', []))})")
        return out

    @torch.no_grad()
    def sample(self, n: int, seed: int, labels=None) -> Samples:
        G = self.modules["generator"]
        device = next(G.parameters()).device
        # A generator of its own: sampling never moves the training RNG (exact resume).
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        y = self.class_labels(n, labels)
        images = G(z.to(device), None if y is None else y.to(device))
        images = ((images.float() + 1) / 2).clamp(0, 1).cpu().numpy()
        return Samples(images=images, labels=None if y is None else y.numpy())

    def evaluate(self, data: ImageData, cache_dir=None) -> dict[str, float]:
        """Conditional accuracy of 50 samples per class, judged by a linear probe, with the
        probe's accuracy on real validation images as the reference."""
        if not self.num_classes:
            return {}
        probe = fit_probe_classifier(data)
        n = 50 * self.num_classes
        samples = self.sample(n, seed=0)
        return {"conditional_accuracy": probe_accuracy(probe, samples.images, samples.labels),
                "probe_accuracy_real_val": probe_accuracy(probe, data.val_images,
                                                          data.val_labels)}
