"""The GAN pipeline: one config, one `train_step`, every classic variant.

Read top to bottom: the config (each variant in variants.py only changes its defaults), the
latent space (seeds, truncation, InfoGAN codes, slerp), then the pipeline: networks, the
training step with its diagnostics, sampling, warnings and evaluation.

One trainer step is one discriminator (critic) update; the generator is updated every
`n_critic`-th step, so `--steps` counts critic updates.

With `self_conditioning` (clusters.py) an unconditional model's G and D read a cluster of the
training images where a cGAN reads a class, and sampling draws the clusters by their share of
the data. Everything below that says "classes" means the user's labels; what the networks are
conditioned on is `condition_count`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples
from ..data import ImageData
from ..core.errors import StudioError
from ..services.latent import requested_labels, slerp
from ..core.optim import adam
from . import clusters as self_conditioning
from . import losses as L
from .spec import GAN_SPEC
from .networks import (ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator, QHead,
                       dcgan_init)


STANDING_SEED = 2 ** 40  # the standing statistics' first seed: far from any seed a user picks


# --- the latent space ------------------------------------------------------------------------
def truncated_normal(shape: tuple[int, ...], generator: torch.Generator,
                     threshold: float) -> torch.Tensor:
    """N(0, 1) draws, with entries beyond +-threshold redrawn until none is (threshold 0: off)."""
    z = torch.randn(shape, generator=generator)
    if threshold > 0:
        outside = z.abs() > threshold
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = z.abs() > threshold
    return z


class GAN(Pipeline):
    """Every GAN variant; variants.py names them, spec.py declares their defaults."""
    spec = GAN_SPEC
    ema_modules = ("generator",)

    # --- networks ------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Classes the model is conditioned on; 0 means unconditional."""
        n = self.info.get("num_classes", 1)
        return n if self.config.conditioning != "none" and n >= 2 else 0

    @property
    def clusters(self) -> dict | None:
        """Self-conditioning's clusters of the training images (clusters.py), or None."""
        return self.info.get("clusters")

    @property
    def condition_count(self) -> int:
        """What G and D are conditioned on: classes, else self-conditioning's clusters."""
        return self.num_classes or len((self.clusters or {}).get("frequency", ()))

    @classmethod
    def describe_data(cls, data: ImageData, config) -> dict:
        """The data facts, plus self-conditioning's clusters, fitted once before the run. Class
        conditioning and InfoGAN's codes take their place: those models group the images by
        the labels, or by codes of their own."""
        info = super().describe_data(data, config)
        codes = config.info_categories + config.info_continuous
        if config.self_conditioning and config.conditioning == "none" and not codes:
            info["clusters"] = self_conditioning.fit_clusters(data.train_images,
                                                              config.self_conditioning)
        return info

    @property
    def info_dims(self) -> int:
        return self.config.info_categories + self.config.info_continuous

    def check_config(self) -> None:
        c = self.config
        if c.gradient_penalty > 0 and c.d_norm != "none":
            raise StudioError("a gradient penalty is defined per sample, and batch norm mixes the "
                              "samples of a batch; set d_norm=none")
        if c.label_smoothing > 0 and c.loss in ("wasserstein", "hinge"):
            raise StudioError(f"label smoothing has no meaning for the {c.loss} loss (it has no "
                              f"targets); set label_smoothing=0")
        if self.info_dims and c.conditioning != "none":
            raise StudioError("InfoGAN learns its own categories from unlabelled data; set "
                              "conditioning=none (or info_categories=0 and info_continuous=0)")

    def build(self) -> dict[str, nn.Module]:
        self.check_config()
        c, info = self.config, self.info
        ch, s, k = info["channels"], info["image_size"], self.condition_count
        z_in = c.z_dim + self.info_dims                     # InfoGAN's codes ride along with z
        d_cond = c.conditioning if self.num_classes else "projection" if k else "none"
        if c.architecture == "conv":
            # Each conv layer costs ~width^2 * 16 * size^2 / 4 MACs per image, the same at every
            # resolution, so a 32 px model at width 32 is ~16x the work of an 8 px one.
            w = c.width or (32 if s <= 16 else 16)
            G = ConvGenerator(z_in, ch, s, w, k)
            D = ConvDiscriminator(ch, s, w, k, d_cond, batch_norm=c.d_norm == "batch",
                                  spectral_norm=c.spectral_norm, minibatch_std=c.minibatch_std)
        else:
            G = MLPGenerator(z_in, ch, s, c.hidden, k)
            D = MLPDiscriminator(ch, s, c.hidden, k, d_cond, spectral_norm=c.spectral_norm,
                                 minibatch_std=c.minibatch_std)
        modules = {"generator": G, "discriminator": D}
        if self.info_dims:
            modules["q_head"] = QHead(D.features, c.info_categories, c.info_continuous)
        for module in modules.values():
            module.apply(dcgan_init)
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        g_params = list(self.modules["generator"].parameters())
        if "q_head" in self.modules:  # Q is trained with G on the information term
            g_params += list(self.modules["q_head"].parameters())
        d_params = self.modules["discriminator"].parameters()
        if c.optimizer == "rmsprop":
            return {"g": torch.optim.RMSprop(g_params, lr=c.lr_g),
                    "d": torch.optim.RMSprop(d_params, lr=c.lr_d)}
        betas = (c.beta1, c.beta2)
        return {"g": adam(g_params, lr=c.lr_g, betas=betas),
                "d": adam(d_params, lr=c.lr_d, betas=betas)}

    # --- training ---------------------------------------------------------------------------
    def random_codes(self, b: int, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """InfoGAN's codes for a training batch: categories (B,) and continuous (B, M)."""
        c = self.config
        cats = (torch.randint(0, c.info_categories, (b,), device=device)
                if c.info_categories else None)
        conts = torch.rand(b, c.info_continuous, device=device) * 2 - 1
        return cats, conts

    def code_vector(self, cats: torch.Tensor | None, conts: torch.Tensor) -> torch.Tensor:
        """(B,) categories and (B, M) continuous codes -> (B, K + M) appended to z."""
        parts = [F.one_hot(cats, self.config.info_categories).to(conts.dtype)] if cats is not None else []
        return torch.cat(parts + [conts], dim=1)

    def train_tensors(self, data: ImageData) -> dict[str, torch.Tensor]:
        """The training images with their labels, or with their clusters when self-conditioned."""
        tensors = super().train_tensors(data)
        if self.clusters:
            tensors["labels"] = torch.from_numpy(
                self_conditioning.assign(data.train_images, self.clusters))
        return tensors

    def noisy(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Instance noise (Sønderby et al., 2016): blurs the line between real and fake early on,
        so the discriminator cannot win outright while the generator is still bad."""
        c = self.config
        std = c.instance_noise * max(0.0, 1 - step / c.instance_noise_steps)
        return x + std * torch.randn_like(x) if std > 0 else x

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        real = batch["images"] * 2 - 1                        # (B, C, S, S) in [-1, 1]
        b, device = real.shape[0], real.device
        labels = batch["labels"] if self.condition_count else None
        z = torch.randn(b, c.z_dim, device=device)
        cats = conts = None
        if self.info_dims:
            cats, conts = self.random_codes(b, device)
            z = torch.cat([z, self.code_vector(cats, conts)], dim=1)
        fake = G(z, labels)

        # Discriminator: real and fake in separate passes, as in the generator step below. With
        # batch norm in D, one pass over both would normalise by mixed statistics here and by
        # fake-only statistics in the generator step: two different functions, and the
        # generator would be trained against one that the discriminator never was (measured:
        # D(G(z)) ~ 0 while the generator's loss said otherwise). Fakes are detached: this
        # step must not move G.
        d_real = D(self.noisy(real, ctx.step), labels)[0].float()
        d_fake = D(self.noisy(fake.detach(), ctx.step), labels)[0].float()
        loss_d = L.discriminator_loss(c.loss, d_real, d_fake, 1 - c.label_smoothing)
        logs = {}
        if c.gradient_penalty > 0:
            gp = L.gradient_penalty(D, real, fake, labels, torch.rand(b, device=device))
            loss_d = loss_d + c.gradient_penalty * gp
            logs["gradient_penalty"] = gp.detach()
        logs["grad_norm_d"] = ctx.backward_step(loss_d, "d", "discriminator")
        if c.weight_clip > 0:
            L.clip_weights(D, c.weight_clip)
        probability = c.loss in L.PROBABILITY_LOSSES
        logs.update(loss_d=loss_d.detach(),
                    d_real=(torch.sigmoid(d_real) if probability else d_real).mean().detach(),
                    d_fake=(torch.sigmoid(d_fake) if probability else d_fake).mean().detach(),
                    diversity=L.diversity_ratio(fake, real))
        if c.loss == "wasserstein":  # E[C(x)] - E[C(G(z))]: the critic's estimate of W1
            logs["wasserstein_estimate"] = (d_real.mean() - d_fake.mean()).detach()

        if (ctx.step + 1) % c.n_critic:
            return logs  # critic-only step
        d_gen, features = D(self.noisy(fake, ctx.step), labels)
        loss_g = L.generator_loss(c.loss, d_gen.float())
        total = loss_g
        if self.info_dims:
            info, info_cat, info_cont = L.info_loss(self.modules["q_head"](features), cats, conts)
            total = loss_g + c.info_weight * (info_cat + c.info_continuous_weight * info_cont)
            logs.update(info_loss=info.detach(), info_categorical=info_cat.detach(),
                        info_continuous=info_cont.detach())
        modules = ("generator", "q_head") if self.info_dims else "generator"
        logs["grad_norm_g"] = ctx.backward_step(total, "g", modules)
        logs["loss_g"] = loss_g.detach()
        return logs

    def log_warnings(self, means: dict[str, float], step: int) -> list[str]:
        """Plain-words alarms at each log step (also in the run's status line). The diversity
        alarm waits 200 generator updates (200 * n_critic steps): a generator fresh from
        initialisation draws near-constant images before it has learned anything to collapse
        from."""
        out = []
        diversity = means.get("diversity")
        if diversity is not None and diversity < 0.4 and step >= 200 * self.config.n_critic:
            out.append(f"possible mode collapse: the fakes of a batch vary only "
                       f"{diversity:.0%} as much as real images")
        if (self.config.loss in L.PROBABILITY_LOSSES and means.get("d_real", 0) > 0.97
                and means.get("d_fake", 1) < 0.03):
            out.append("the discriminator wins outright (D(x) ~ 1, D(G(z)) ~ 0), so the "
                       "generator's gradient vanishes; try label_smoothing, instance_noise, a "
                       "lower lr_d, or the wasserstein/hinge losses")
        return out

    # --- sampling ---------------------------------------------------------------------------
    def latents(self, seeds: list[int], truncation: float = 0.0, codes: str = ""
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """One latent per seed: (N, z_dim) noise, for InfoGAN continuous codes (N, M), for a
        self-conditioned model its clusters (N,). Image i of `sample(n, seed)` comes from
        seed + i alone, so any image can be redrawn by its seed, and the endpoints of an
        interpolation are the two seeds' samples."""
        zs, conts, clusters = [], [], []
        fixed = self.parse_codes(codes)
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))  # never the training RNG
            zs.append(truncated_normal((1, self.config.z_dim), g, truncation))
            conts.append(torch.rand(1, self.config.info_continuous, generator=g) * 2 - 1
                         if fixed is None else fixed[None])
            if self.clusters:
                clusters.append(self_conditioning.draw(g, self.clusters))
        return (torch.cat(zs), torch.cat(conts) if self.info_dims else None,
                torch.cat(clusters) if clusters else None)

    def parse_codes(self, codes: str) -> torch.Tensor | None:
        if not codes.strip():
            return None
        m = self.config.info_continuous
        try:
            values = [float(v) for v in codes.split(",")]
        except ValueError:
            raise StudioError(f"codes must be {m} numbers separated by commas, like "
                              f"{','.join(['0.5'] * max(m, 1))}") from None
        if len(values) != m:
            raise StudioError(f"this model has {m} continuous codes; codes gave {len(values)}")
        return torch.tensor(values, dtype=torch.float32)

    def class_labels(self, n: int, labels=None) -> torch.Tensor | None:
        """The classes (or InfoGAN categories) to draw; see latent.requested_labels."""
        if self.num_classes:
            return requested_labels(n, labels, self.num_classes,
                                    names=self.info.get("class_names", []))
        return requested_labels(n, labels, self.config.info_categories,
                                what="category (an InfoGAN code)")

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None,
                 conts: torch.Tensor | None) -> np.ndarray:
        """Latents -> images (N, C, H, W) in [0, 1], in batches of 256. `labels`: the classes
        (InfoGAN: categories; self-conditioned: clusters) (N,), or (N, K) weights of each
        one's embedding (a walk from one cluster to another)."""
        G = self.modules["generator"]
        device = next(G.parameters()).device
        if self.info_dims:
            z = torch.cat([z, self.code_vector(labels if self.config.info_categories else None,
                                               conts)], dim=1)
            labels = None
        out = []
        for i in range(0, len(z), 256):
            y = None if labels is None else labels[i:i + 256].to(device)
            out.append(G(z[i:i + 256].to(device), y).float())
        return ((torch.cat(out) + 1) / 2).clamp(0, 1).cpu().numpy()

    def sample(self, n: int, seed: int, labels=None, truncation: float = 0.0,
               codes: str = "") -> Samples:
        z, conts, clusters = self.latents([seed + i for i in range(n)], truncation, codes)
        y = self.class_labels(n, labels)
        images = self.generate(z, clusters if clusters is not None else y, conts)
        return Samples(images=images, labels=None if y is None else y.numpy())

    @contextlib.contextmanager
    def sampling_statistics(self):
        """BigGAN's "standing statistics" (Brock et al. 2019, appendix C): G's batch-norm
        running statistics are moving averages of what the *live* weights produced while
        training, not of what the EMA weights that sampling uses produce. With
        `standing_statistics` = n, they are recomputed for the weights in place from n
        samples of G itself (fixed seeds, batches of 256, only the batch norms in train
        mode), and put back after: training, the RNG and so an exact resume are untouched."""
        G = self.modules["generator"]
        norms = [m for m in G.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        n = self.config.standing_statistics
        if n <= 0 or not norms:
            yield
            return
        kept = [(m.training, m.momentum, {k: v.clone() for k, v in m.named_buffers()})
                for m in norms]
        try:
            device = next(G.parameters()).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for m in norms:  # only they train: spectral norm's power iteration stays put
                    m.reset_running_stats()
                    m.momentum = None                          # a plain mean over the batches
                    m.train()
                z, conts, clusters = self.latents(range(STANDING_SEED, STANDING_SEED + n))
                y = clusters if clusters is not None else self.class_labels(n, None)
                self.generate(z, y, conts)
                for m in norms:
                    m.eval()                                   # sampling reads them
            yield
        finally:
            for m, (training, momentum, buffers) in zip(norms, kept):
                m.train(training)
                m.momentum = momentum
                for k, v in m.named_buffers():
                    v.copy_(buffers[k])

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels=None,
                    truncation: float = 0.0, codes: str = "") -> Samples:
        """`frames` images walking from seed_a's sample to seed_b's: z by slerp, InfoGAN's
        continuous codes by a straight line; one class (or category) throughout."""
        z, conts, clusters = self.latents([seed_a, seed_b], truncation, codes)
        t = torch.linspace(0, 1, frames)
        zs = slerp(z[0], z[1], t)
        cs = None if conts is None else conts[:1] + t[:, None] * (conts[1:] - conts[:1])
        if labels is None and (self.num_classes or self.config.info_categories):
            labels = 0                                        # one class throughout the walk
        y = self.class_labels(frames, labels)
        if clusters is not None:  # from seed_a's cluster embedding to seed_b's (exact at the ends)
            ends = F.one_hot(clusters, self.condition_count).float()          # (2, K)
            weights = ends[:1] + t[:, None] * (ends[1:] - ends[:1])           # (frames, K)
            return Samples(images=self.generate(zs, weights, cs), labels=None)
        return Samples(images=self.generate(zs, y, cs), labels=None if y is None else y.numpy())

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self, data: ImageData, cache_dir) -> dict[str, float]:
        """Fréchet distance, KID, precision/recall on the judge's features against the
        floor (metrics/image_quality.py), over JUDGED_DRAWS draws of samples; conditional
        accuracy for class-conditional models."""
        from ..metrics import JUDGED_DRAWS, draw_judged_samples, judge_samples, judged_sample_count
        images, labels = draw_judged_samples(
            self.sample, judged_sample_count(data, self.num_classes or 1))
        return judge_samples(data, images, labels if self.num_classes else None,
                             cache_dir=cache_dir, draws=JUDGED_DRAWS)
