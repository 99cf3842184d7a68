"""CycleGAN (Zhu et al. 2017, "Unpaired image-to-image translation using cycle-consistent
adversarial networks"): two generators, G: A -> B and F: B -> A, learnt from two sets of
pictures with no pairs between them.

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda (|F(G(a)) - a| + |G(F(b)) - b|)
        + 0.5 lambda (|G(b) - b| + |F(a) - a|)                     (the paper's eq. 3 and 5.2)

L_GAN is least squares (the paper's 4: D pushes real patches to 1 and translated ones to 0, G
pushes its patches to 1); the PatchGAN discriminators (networks.py, pix2pix's, here judging a
picture alone) see a translation drawn from a pool of 50 past ones half the time (the paper's
4, after Shrivastava et al.); lambda = 10. The learning rate is constant, then decays linearly
to 0 (`HeldLinear`, a core Schedule held until its start).

The pools are two small modules of buffers (the 50 pictures and how many are filled): the
trainer checkpoints them with the weights, and their coin flips come from torch's generator,
which it checkpoints too, so a resumed run repeats an uninterrupted one exactly.

Read top to bottom: the pool and the schedule, then the pipeline: networks, the training step
(G and F together, then D_A and D_B, each through ctx), translating, validation (the cycle's
L1 both ways), sampling (a | G(a) | F(G(a)) | b | F(b) | G(F(b)) rows), the translate tool and
evaluation (a domain classifier, the judge's shape class, the cycle, Fréchet distances).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..core.optim import adam
from ..core.schedules import Schedule
from ..data.unpaired import UnpairedImageData
from ..services.imaging import check_input_files
from . import spec as S
from .networks import PatchDiscriminator, ResnetGenerator, init_weights
from .pix2pix import BATCH, as_channels, grouped

DIRECTIONS = {"a_to_b": ("g_ab", "g_ba", "A", "B"), "b_to_a": ("g_ba", "g_ab", "B", "A")}
CLASSIFIER_SIZE = 16     # the domain classifier reads pictures average-pooled to 16 x 16


class ImagePool(nn.Module):
    """The last `size` translations seen (buffers: checkpointed with the weights). Each new
    picture fills the pool while it has room and is shown as is; once full, half the time
    (a coin of torch's generator) it takes the place of a random stored one, which is shown
    instead."""

    def __init__(self, size: int, channels: int, image_size: int):
        super().__init__()
        self.register_buffer("images", torch.zeros(size, channels, image_size, image_size))
        self.register_buffer("filled", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        size = len(self.images)
        if size == 0:
            return fakes.detach()
        out = []
        for fake in fakes.detach():
            filled = int(self.filled)
            if filled < size:
                self.images[filled] = fake.to(self.images.dtype)
                self.filled += 1
                out.append(fake)
            elif float(torch.rand(())) < 0.5:
                k = int(torch.randint(size, ()))
                out.append(self.images[k].clone().to(fake.dtype))
                self.images[k] = fake.to(self.images.dtype)
            else:
                out.append(fake)
        return torch.stack(out)


@dataclass(frozen=True)
class HeldLinear(Schedule):
    """A core Schedule of `decay="linear"` from `start`, held at the peak before it (the core
    Schedule is 0 before its start: there it means a later phase)."""

    def factor(self, step: int) -> float:
        return 1.0 if step < self.start else super().factor(step)


def lsgan(logits: torch.Tensor, target: float) -> torch.Tensor:
    return ((logits.float() - target) ** 2).mean()


class CycleGAN(Pipeline):
    """G: A -> B and F: B -> A (ResNet generators), D_A and D_B (PatchGANs), two image pools."""
    spec = S.CYCLEGAN
    data: UnpairedImageData | None = None

    # --- networks ----------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        c, info = self.config, self.info
        ca, size = info["channels"], info["image_size"]
        cb = info.get("target_channels", ca)
        modules: dict[str, nn.Module] = {
            "g_ab": ResnetGenerator(ca, cb, size, c.width, c.blocks, c.downsamplings),
            "g_ba": ResnetGenerator(cb, ca, size, c.width, c.blocks, c.downsamplings),
            "d_a": PatchDiscriminator(ca, size, c.d_width, c.d_layers),
            "d_b": PatchDiscriminator(cb, size, c.d_width, c.d_layers)}
        for module in modules.values():
            module.apply(init_weights)
        modules["pool_a"] = ImagePool(c.pool_size, ca, size)   # past F(b), shown to D_A
        modules["pool_b"] = ImagePool(c.pool_size, cb, size)   # past G(a), shown to D_B
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, m, betas = self.config, self.modules, (self.config.beta1, 0.999)
        return {"g": adam([*m["g_ab"].parameters(), *m["g_ba"].parameters()], lr=c.lr,
                          betas=betas),
                "d": adam([*m["d_a"].parameters(), *m["d_b"].parameters()], lr=c.lr,
                          betas=betas)}

    def schedules(self) -> dict[str, Schedule]:
        c = self.config
        if c.decay_steps <= 0:
            return {}
        held = HeldLinear(decay="linear", decay_steps=c.decay_steps, start=c.constant_steps)
        return {"g": held, "d": held}

    def train_tensors(self, data: UnpairedImageData) -> dict[str, torch.Tensor]:
        """Equal-length tensors, as the trainer shuffles them: the larger domain is cut to the
        smaller's count (a fresh pairing every epoch: the trainer's permutation)."""
        self.data = data
        n = min(len(data.train_a), len(data.train_b))
        return {"a": torch.from_numpy(data.train_a[:n]), "b": torch.from_numpy(data.train_b[:n])}

    # --- training ----------------------------------------------------------------------------
    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        m, c = self.modules, self.config
        G, Fn, D_A, D_B = m["g_ab"], m["g_ba"], m["d_a"], m["d_b"]
        a, b = batch["a"] * 2 - 1, batch["b"] * 2 - 1          # [-1, 1]
        fake_b, fake_a = G(a), Fn(b)
        cycle = (Fn(fake_b).float() - a).abs().mean() + (G(fake_a).float() - b).abs().mean()
        gan = lsgan(D_B.net(fake_b), 1.0) + lsgan(D_A.net(fake_a), 1.0)
        identity = torch.zeros((), device=a.device)
        if c.identity_weight > 0:
            identity = (G(b).float() - b).abs().mean() + (Fn(a).float() - a).abs().mean()
        loss_g = gan + c.cycle_weight * (cycle + c.identity_weight * identity)
        logs = {"grad_norm_g": ctx.backward_step(loss_g, "g", ("g_ab", "g_ba"))}
        # The discriminators: real pictures to 1, pooled translations (detached) to 0, halved.
        pooled_b, pooled_a = m["pool_b"].query(fake_b), m["pool_a"].query(fake_a)
        real_b, faked_b = D_B.net(b).float(), D_B.net(pooled_b).float()
        real_a, faked_a = D_A.net(a).float(), D_A.net(pooled_a).float()
        loss_d_b = 0.5 * (lsgan(real_b, 1.0) + lsgan(faked_b, 0.0))
        loss_d_a = 0.5 * (lsgan(real_a, 1.0) + lsgan(faked_a, 0.0))
        logs["grad_norm_d"] = ctx.backward_step(loss_d_a + loss_d_b, "d", ("d_a", "d_b"))
        logs.update(loss_g=gan.detach(), cycle_l1=(cycle / 4).detach(),   # pixel L1 a way
                    identity_l1=(identity / 4).detach(), loss_d_a=loss_d_a.detach(),
                    loss_d_b=loss_d_b.detach(),
                    # The GAN diagnostics: the discriminators' mean output (least squares:
                    # 1 = real, 0 = translated) on real pictures and on the pooled translations.
                    d_real=((real_a.mean() + real_b.mean()) / 2).detach(),
                    d_fake=((faked_a.mean() + faked_b.mean()) / 2).detach())
        return logs

    def log_warnings(self, means: dict[str, float], step: int) -> list[str]:
        if means.get("d_real", 0) > 0.9 and means.get("d_fake", 1) < 0.1 and step >= 200:
            return ["the discriminators win outright (D(real) ~ 1, D(translation) ~ 0): the "
                    "translations are far from the target domains; the cycle still trains "
                    "the generators"]
        return []

    # --- translating, validation and sampling ----------------------------------------------
    def check_inputs(self, images: np.ndarray, domain: str) -> np.ndarray:
        """Pictures of `domain` as its generator takes them, or one line saying what is wrong."""
        images = np.asarray(images, dtype=np.float32)
        c = self.info["channels"] if domain == "A" else self.info.get("target_channels",
                                                                        self.info["channels"])
        s = int(self.info["image_size"])
        if images.ndim != 4 or images.shape[1:] != (c, s, s):
            raise StudioError(f"{self.name} translates domain {domain} pictures of {c} "
                              f"channel(s) at {s}x{s} pixels (what it was trained on), not an "
                              f"array of shape {tuple(images.shape)}")
        return images

    @torch.no_grad()
    def translate(self, images: np.ndarray, direction: str = "a_to_b") -> np.ndarray:
        """(N, C, S, S) pictures in [0, 1] of the source domain -> the target domain's."""
        name, _, source, _ = DIRECTIONS[direction]
        net = self.modules[name]
        was_training, device = net.training, next(net.parameters()).device
        net.eval()
        try:
            x = torch.from_numpy(self.check_inputs(images, source))
            out = [net(x[i:i + BATCH].to(device) * 2 - 1).float()
                   for i in range(0, len(x), BATCH)]
        finally:
            net.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1).cpu().numpy()

    def round_trip(self, images: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """(translations, translations translated back)."""
        back = "b_to_a" if direction == "a_to_b" else "a_to_b"
        out = self.translate(images, direction)
        return out, self.translate(out, back)

    def validate(self, data: UnpairedImageData) -> dict[str, float]:
        """The cycle's pixel L1 on the validation pictures, each way."""
        self.data = data
        return {f"cycle_l1_{d}": float(np.abs(self.round_trip(x, d)[1] - x).mean())
                for d, x in (("a_to_b", data.val_a), ("b_to_a", data.val_b))}

    def unpaired_data(self) -> UnpairedImageData:
        if self.data is None:
            from ..data import load_data
            data = load_data(self.info["name"])
            if not isinstance(data, UnpairedImageData):
                raise StudioError(f"{self.name} needs unpaired data; {self.info['name']!r} is "
                                  f"{data.kind} data")
            self.data = data
        return self.data

    def validation_pictures(self, n: int, seed: int, domain: str) -> np.ndarray:
        """Validation pictures seed, seed + 1, ... (mod their count) of a domain."""
        data = self.unpaired_data()
        pictures = data.val_a if domain == "A" else data.val_b
        return pictures[(seed + np.arange(n)) % len(pictures)]

    def sample(self, n: int, seed: int, labels: Any = None) -> Samples:
        """n rows of a | G(a) | F(G(a)) | b | F(b) | G(F(b)): validation pictures of each
        domain, translated and translated back (6n pictures, 6 columns)."""
        if labels is not None:
            raise StudioError(f"{self.name} translates its validation pictures; it takes no "
                              f"class")
        a, b = (self.validation_pictures(n, seed, d) for d in "AB")
        return Samples(images=grouped(a, *self.round_trip(a, "a_to_b"),
                                      b, *self.round_trip(b, "b_to_a")), columns=6)

    # --- the tool ----------------------------------------------------------------------------
    def tool_translate(self, ctx, direction: str, count: int, seed: int) -> ToolResult:
        """The given pictures (else `count` validation pictures of the source domain) as
        input | output | back rows, with the cycle's L1."""
        source = DIRECTIONS[direction][2]
        if ctx.images is not None:
            self.check_files(getattr(ctx, "paths", ()), source)
            inputs = self.check_inputs(ctx.images, source)
            text = f"input | output | back, {direction}, one picture a row"
        else:
            data = ctx.load_data()
            if isinstance(data, UnpairedImageData):
                self.data = data
            inputs = self.validation_pictures(count, seed, source)
            text = f"input | output | back, {direction}, validation pictures"
        out, back = self.round_trip(inputs, direction)
        return ToolResult(images=grouped(inputs, out, back), columns=3, text=text,
                          values={"cycle_l1": round(float(np.abs(back - inputs).mean()), 4)})

    def check_files(self, paths, domain: str) -> None:
        """Grey pictures for a colour domain and pictures below the model's size, refused in
        one line (services/imaging.check_input_files)."""
        channels = self.info["channels"] if domain == "A" else self.info.get(
            "target_channels", self.info["channels"])
        check_input_files(paths, channels, int(self.info["image_size"]), self.name,
                          f"of domain {domain}")

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data: UnpairedImageData, cache_dir=None) -> dict[str, float]:
        """Per direction (`a_to_b/...`, `b_to_a/...`), on the validation pictures: the cycle's
        L1; `domain_accuracy`, the share of translations a domain classifier (logistic
        regression on 16 x 16 pooled pixels, trained on the real training pictures of A
        against B; its own accuracy on the real validation pictures is `domain_classifier_
        accuracy`) puts in the target domain. With a cache folder, the judge's numbers of the
        target domain (metrics/image_quality.py): its shape class of each translation against
        the source picture's (`class_kept`), Fréchet distance to the target domain's real
        pictures and its real-vs-real floor."""
        self.data = data
        classifier = domain_classifier(data)
        results = {"domain_classifier_accuracy": float(np.mean(np.concatenate([
            classifier.predict(pooled(data.val_a)) == 0,
            classifier.predict(pooled(data.val_b)) == 1])))}
        from ..metrics.image_quality import MIN_IMAGES
        for direction, source, labels, target, judge_data in (
                ("a_to_b", data.val_a, data.val_a_labels, 1, data),
                ("b_to_a", data.val_b, data.val_labels, 0, data.domain_a())):
            out, back = self.round_trip(source, direction)
            in_domain = classifier.predict(pooled(out)) == target              # (N,) bools
            stays = classifier.predict(pooled(source)) == target               # untranslated
            numbers = {"cycle_l1": float(np.abs(back - source).mean()),
                       "domain_accuracy": float(np.mean(in_domain)),
                       "baseline_domain_accuracy": float(np.mean(stays))}
            if cache_dir is not None and len(out) >= MIN_IMAGES:
                from ..metrics import judge_samples
                from ..metrics.judge import get_judge
                judged = judge_samples(judge_data, out, cache_dir=cache_dir)
                if data.num_classes >= 2:
                    # The trivial answer, the source picture itself, often keeps the class
                    # (it is the same shape) but not the domain: only both together count.
                    judge = get_judge(judge_data, cache_dir)             # cached by now
                    kept = judge.predict(out) == labels
                    judged["class_kept"] = float(np.mean(kept))
                    source_kept = judge.predict(source) == labels
                    judged.update(translated_and_kept=float(np.mean(kept & in_domain)),
                                  baseline_class_kept=float(np.mean(source_kept)),
                                  baseline_translated_and_kept=float(np.mean(source_kept
                                                                             & stays)))
                numbers.update(judged)
            results.update({f"{direction}/{k}": v for k, v in numbers.items()})
        return results


def pooled(images: np.ndarray) -> np.ndarray:
    """(N, C, S, S) -> (N, C * 16 * 16) features: colour pictures average-pooled to 16 px
    (grey ones as R = G = B, so two domains of different channels compare)."""
    x = as_channels(np.asarray(images, np.float32), 3)
    n, c, s, _ = x.shape
    k = max(1, s // CLASSIFIER_SIZE)
    x = x[:, :, :s // k * k, :s // k * k].reshape(n, c, s // k, k, s // k, k).mean((3, 5))
    return x.reshape(n, -1)


def domain_classifier(data: UnpairedImageData, per_domain: int = 1000):
    """Logistic regression on pooled pixels: 0 for domain A, 1 for B, from (at most)
    `per_domain` training pictures of each (the first ones: deterministic)."""
    from sklearn.linear_model import LogisticRegression
    a, b = pooled(data.train_a[:per_domain]), pooled(data.train_b[:per_domain])
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(len(a), np.int64), np.ones(len(b), np.int64)])
    return LogisticRegression(max_iter=500, C=1.0).fit(x, y)
