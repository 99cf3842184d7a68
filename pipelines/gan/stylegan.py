"""StyleGAN2 in miniature (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), on the GAN family's pipeline (pipeline.py) and its conv discriminator; the
generator's networks are in stylegan_networks.py (read it first).

Reading order: StyleGAN: build, train_step (logistic loss, lazy R1), sampling (psi, noise),
interpolation in w, and the tools style_mixing and style_direction.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.base import Samples, ToolResult
from ..core.errors import StudioError
from . import losses as L
from . import clusters as self_conditioning
from .networks import ConvDiscriminator, dcgan_init
from .pipeline import GAN
from .stylegan_networks import StyleGenerator
from .stylegan_spec import STYLEGAN


# --- the pipeline ----------------------------------------------------------------------------
class StyleGAN(GAN):
    """StyleGAN2's generator against the studio's conv discriminator, the non-saturating
    logistic loss with lazy R1 on real images, an EMA of the generator for sampling."""
    spec = STYLEGAN

    def check_config(self) -> None:
        c = self.config
        refused = [(c.conditioning != "none", "is unconditional here; set conditioning=none"),
                   (self.info_dims > 0, "has no InfoGAN codes; set info_categories=0 and "
                    "info_continuous=0"),
                   (c.architecture != "conv", "draws with convolutions; set architecture=conv"),
                   (c.gradient_penalty > 0 or c.weight_clip > 0,
                    "regularises its discriminator with R1 (r1_gamma); set gradient_penalty=0 "
                    "and weight_clip=0"),
                   (c.r1_gamma > 0 and c.d_norm == "batch",
                    "computes R1 per real image, which batch norm mixes; set d_norm=none")]
        for bad, message in refused:
            if bad:
                raise StudioError(f"stylegan {message}")

    @classmethod
    def describe_data(cls, data, config) -> dict:
        """The GAN's data facts, plus G's channels at the highest resolution, picked from the
        image size once when style_channels is 0 (64 at 8 px, 16 at 16, 8 from 32) and kept
        with the run, so that a later change of that choice cannot break its weights."""
        info = super().describe_data(data, config)
        info["style_channels"] = config.style_channels or max(8, 4096 // info["image_size"] ** 2)
        return info

    def build(self) -> dict[str, nn.Module]:
        self.check_config()
        c, info = self.config, self.info
        ch, s = info["channels"], info["image_size"]
        # chosen when the run began (describe_data); a run begun before session 20 got 256 / s
        highest = c.style_channels or info.get("style_channels") or max(8, 256 // s)
        k = self.condition_count                  # self-conditioning's clusters, or 0
        G = StyleGenerator(c.z_dim, c.w_dim, ch, s, highest, c.mapping_layers,
                           c.mapping_lr_mult, c.w_avg_beta, k)
        D = ConvDiscriminator(ch, s, c.width or (32 if s <= 16 else 16), k,
                              "projection" if k else "none", batch_norm=c.d_norm == "batch",
                              spectral_norm=c.spectral_norm, minibatch_std=c.minibatch_std)
        D.apply(dcgan_init)   # G keeps its N(0, 1) equalised-learning-rate weights
        return {"generator": G, "discriminator": D}

    # --- training ---------------------------------------------------------------------------
    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        G, D, c = self.modules["generator"], self.modules["discriminator"], self.config
        real = batch["images"] * 2 - 1                        # (B, C, S, S) in [-1, 1]
        labels = batch["labels"] if self.condition_count else None   # clusters
        z = torch.randn(real.shape[0], c.z_dim, device=real.device)
        fake = G(z, labels, c.mixing_prob)                    # one G pass serves both steps

        # Discriminator, with R1 = E|grad_x D(x)|^2 on real images (Mescheder et al. 2018)
        # every r1_every-th step, scaled by r1_every so its average weight is gamma / 2. It
        # joins that step's loss rather than taking an optimiser step of its own, so the
        # paper's correction of Adam's rate and betas (k + 1 steps in k) does not apply.
        r1_step = c.r1_gamma > 0 and ctx.step % c.r1_every == 0
        real_in = self.noisy(real, ctx.step).detach().requires_grad_(r1_step)
        d_real = D(real_in, labels)[0].float()
        d_fake = D(self.noisy(fake.detach(), ctx.step), labels)[0].float()
        loss_d = L.discriminator_loss(c.loss, d_real, d_fake, 1 - c.label_smoothing)
        logs = {}
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
            r1 = grad.float().square().flatten(1).sum(1).mean()
            loss_d = loss_d + c.r1_gamma / 2 * c.r1_every * r1
            logs["r1_penalty"] = r1.detach()
        logs["grad_norm_d"] = ctx.backward_step(loss_d, "d", "discriminator")
        probability = c.loss in L.PROBABILITY_LOSSES
        logs.update(loss_d=loss_d.detach(),
                    d_real=(torch.sigmoid(d_real) if probability else d_real).mean().detach(),
                    d_fake=(torch.sigmoid(d_fake) if probability else d_fake).mean().detach(),
                    diversity=L.diversity_ratio(fake, real))
        if (ctx.step + 1) % c.n_critic:
            return logs                                        # critic-only step
        loss_g = L.generator_loss(c.loss, D(self.noisy(fake, ctx.step), labels)[0].float())
        logs["grad_norm_g"] = ctx.backward_step(loss_g, "g", "generator")
        logs["loss_g"] = loss_g.detach()
        return logs

    # --- sampling ---------------------------------------------------------------------------
    @property
    def generator(self) -> StyleGenerator:
        return self.modules["generator"]

    def seed_latents(self, seeds: list[int]):
        """Each seed's z (N, z_dim), its cluster (N,) when self-conditioned (else None) and
        its noise maps, one (N, 1, r, r) per style layer, all from the seed's own generator
        (never the training RNG): image i of sample(n, seed) is seed + i's image alone."""
        sizes = self.generator.synthesis.noise_sizes()
        zs, clusters, maps = [], [], []
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            zs.append(torch.randn(1, self.config.z_dim, generator=g))
            if self.clusters:
                clusters.append(self_conditioning.draw(g, self.clusters))
            maps.append([torch.randn(1, 1, r, r, generator=g) for r in sizes])
        return (torch.cat(zs), torch.cat(clusters) if clusters else None,
                [torch.cat(layer) for layer in zip(*maps)])

    def noise_for(self, mode: str, seed_noise: list[torch.Tensor]) -> list[torch.Tensor]:
        """The noise maps sampling feeds in: the seeds' own, the stored constant ones, or 0."""
        if mode not in ("random", "const", "off"):
            raise StudioError(f"noise must be random, const or off, not {mode!r}")
        n, synthesis = len(seed_noise[0]), self.generator.synthesis
        if mode == "random":
            return seed_noise
        return [getattr(synthesis, f"noise_const_{i}").expand(n, -1, -1, -1).cpu()
                * (mode == "const") for i in range(len(seed_noise))]

    @torch.no_grad()
    def draw(self, ws: torch.Tensor, noises: list[torch.Tensor]) -> np.ndarray:
        """Styles (N, L, w_dim) and noise maps -> images (N, C, S, S) in [0, 1], 256 at a time."""
        out = []
        for i in range(0, len(ws), 256):
            chunk = [m[i:i + 256].to(self.device) for m in noises]
            out.append(self.generator.synthesis(ws[i:i + 256].to(self.device), chunk).float())
        return ((torch.cat(out) + 1) / 2).clamp(0, 1).cpu().numpy()

    @torch.no_grad()
    def seeds_drawn(self, seeds: list[int], psi: float, noise: str):
        """(styles (N, L, w_dim), noise maps) for the seeds, every layer on one w, truncated
        towards the tracked mean: w_avg + psi (w - w_avg) (StyleGAN, section 3.2)."""
        z, clusters, seed_noise = self.seed_latents(seeds)
        mapping, device = self.generator.mapping, self.device
        w = torch.cat([mapping(z[i:i + 256].to(device),
                               None if clusters is None else clusters[i:i + 256].to(device))
                       for i in range(0, len(z), 256)])
        w = mapping.w_avg.lerp(w, psi) if psi != 1 else w
        return w[:, None].repeat(1, self.generator.num_ws, 1), self.noise_for(noise, seed_noise)

    def sample(self, n: int, seed: int, labels=None, psi: float = 1.0,
               noise: str = "random") -> Samples:
        self.class_labels(n, labels)                           # refuses a class: unconditional
        ws, noises = self.seeds_drawn([seed + i for i in range(n)], psi, noise)
        return Samples(images=self.draw(ws, noises))

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels=None, psi: float = 1.0,
                    noise: str = "random") -> Samples:
        """A straight line in w (the paper's perceptual path length walks lerp in W); noise
        maps blend as (1 - t) a + t b over sqrt((1 - t)^2 + t^2), still N(0, 1) per pixel.
        The ends are the two seeds' samples."""
        self.class_labels(frames, labels)
        ws, noises = self.seeds_drawn([seed_a, seed_b], psi, noise)
        t = torch.linspace(0, 1, frames)
        walk = ws[:1] + t.to(ws.device)[:, None, None] * (ws[1:] - ws[:1])
        norm = torch.sqrt((1 - t) ** 2 + t ** 2)[:, None, None, None]
        blended = [((1 - t)[:, None, None, None] * m[:1] + t[:, None, None, None] * m[1:]) / norm
                   for m in noises]
        return Samples(images=self.draw(walk, blended))

    # --- tools ------------------------------------------------------------------------------
    def style_mixing(self, ctx, row_seed: int, rows: int, column_seed: int, columns: int,
                     crossover: int, psi: float) -> ToolResult:
        """(rows + 1) x (columns + 1) grid: the first row holds the column seeds' images, the
        first column the row seeds'; cell (r, c) takes styles 0..crossover-1 from row r's w
        and the rest from column c's, with row r's noise. A blank (white) corner."""
        layers = self.generator.num_ws
        if crossover > layers:
            raise StudioError(f"this model has {layers} style layers; crossover must be 1 to "
                              f"{layers}")
        row_ws, row_noise = self.seeds_drawn(list(range(row_seed, row_seed + rows)), psi, "random")
        col_ws, col_noise = self.seeds_drawn(list(range(column_seed, column_seed + columns)),
                                             psi, "random")
        coarse = (torch.arange(layers) < crossover)[None, None, :, None].to(row_ws.device)
        mixed = torch.where(coarse, row_ws[:, None], col_ws[None])        # (R, C, L, w_dim)
        mixed_noise = [m.repeat_interleave(columns, 0) for m in row_noise]
        pure = self.draw(row_ws, row_noise)                               # (R, C, S, S)
        cells = self.draw(mixed.flatten(0, 1), mixed_noise).reshape(rows, columns, *pure.shape[1:])
        top = np.concatenate([np.ones_like(pure[:1]), self.draw(col_ws, col_noise)])
        grid = np.concatenate([top[None], np.concatenate([pure[:, None], cells], axis=1)])
        return ToolResult(images=grid.reshape(-1, *pure.shape[1:]), columns=columns + 1,
                          values={"style_layers": layers, "from_row": crossover})

    def style_direction(self, ctx, class_a: str, class_b: str, seed: int, rows: int,
                        columns: int, span: float, samples: int) -> ToolResult:
        """Radford et al.'s attribute vectors, in w: draw `samples` w, let the studio's judge
        (a classifier of the run's data) label their images, and take mean w of those judged
        class B minus mean w of those judged A. Each row walks its seed's w along it from
        -span to +span (with an odd number of columns, the middle one is the seed's image)."""
        from ..metrics import get_judge
        data = ctx.load_data()
        if data.num_classes < 2:
            raise StudioError(f"the run's data set {data.name!r} has no classes, so there is no "
                              f"class direction to find; train on labelled data (digits, "
                              f"shapes, or a folder with one subfolder per class)")
        a, b = (class_index(name, data.class_names) for name in (class_a, class_b))
        if a == b:
            raise StudioError("class_a and class_b are the same class; pick two different ones")
        # The probe w come from seeds far from the rows' (a fixed range, so the tool repeats).
        ws, noises = self.seeds_drawn(list(range(2**31, 2**31 + samples)), 1.0, "random")
        judged = torch.from_numpy(get_judge(data, ctx.cache_dir).predict(self.draw(ws, noises)))
        counts = {name: int((judged == k).sum()) for name, k in ((class_a, a), (class_b, b))}
        for name, count in counts.items():
            if count < 5:
                raise StudioError(f"only {count} of {samples} samples were judged class {name}; "
                                  f"raise samples or train the model longer")
        w = ws[:, 0].cpu()
        direction = w[judged == b].mean(0) - w[judged == a].mean(0)               # (w_dim,)
        row_ws, row_noise = self.seeds_drawn(list(range(seed, seed + rows)), 1.0, "random")
        steps = torch.linspace(-span, span, columns)
        walk = row_ws.cpu()[:, None] + steps[None, :, None, None] * direction       # (R, C, L, w)
        walk_noise = [m.repeat_interleave(columns, 0) for m in row_noise]
        return ToolResult(images=self.draw(walk.flatten(0, 1), walk_noise), columns=columns,
                          values={**{f"judged_{k}": v for k, v in counts.items()},
                                  "direction_norm": float(direction.norm())})


def class_index(name: str, class_names: list[str]) -> int:
    """A class by its name, else by its index; a StudioError naming the choices."""
    names = [str(n) for n in class_names]
    if name in names:
        return names.index(name)
    if name.strip().isdigit() and int(name) < len(names):
        return int(name)
    raise StudioError(f"no class {name!r} in the run's data; pick one of {', '.join(names)} "
                      f"(or its index 0 to {len(names) - 1})")
