"""The named GAN variants: each is the one GAN pipeline with the defaults of its paper, so that
`studio train wgan-gp --data digits` works as the paper meant and every default can still be
changed with --set. InfoGAN adds a code-sweep tool and maps its categories to classes when it
is judged."""

from __future__ import annotations

import numpy as np
import torch

from ..core.base import ToolResult
from ..core.errors import StudioError
from . import spec as S
from .pipeline import GAN


class VanillaGAN(GAN):
    """Goodfellow et al. (2014): MLP generator and discriminator."""
    spec = S.VANILLA


class DCGAN(GAN):
    """Radford et al. (2015): transposed convs, strided convs, batch norm in both nets."""
    spec = S.DCGAN


class ConditionalGAN(GAN):
    """A class-conditional DCGAN: label embedding in G, projection discriminator (concat via
    --set conditioning=concat); minibatch-std lets D see when all fakes of a class agree."""
    spec = S.CGAN


class WGAN(GAN):
    """Arjovsky et al. (2017): a critic instead of a classifier, weight clipping, RMSProp
    (momentum destabilises it, the paper found). The paper's n_critic = 5 and learning rate
    5e-5 are too slow for a few-minute run: n_critic 2 and 2e-4 (spec.py, docs/gans.md)."""
    spec = S.WGAN


class WGANGP(GAN):
    """Gulrajani et al. (2017): the Lipschitz constraint as a gradient penalty (weight 10),
    Adam(1e-4, 0, 0.9), no batch norm in the critic; n_critic 2 rather than the paper's 5,
    so that a few-minute run gives the generator enough updates (spec.py, docs/gans.md)."""
    spec = S.WGANGP


class LSGAN(GAN):
    """Mao et al. (2017): least-squares losses on a DCGAN."""
    spec = S.LSGAN


class SNGAN(GAN):
    """Miyato et al. (2018): hinge loss, spectral norm on every discriminator layer, and
    TTUR learning rates with Adam(0, 0.9)."""
    spec = S.SNGAN


class InfoGAN(GAN):
    """Chen et al. (2016): a categorical and continuous codes that Q must recover from the
    image, so that they come to mean something (digit identity, slant, width) unsupervised."""
    spec = S.INFOGAN

    def code_sweep(self, ctx, code: int, rows: int, seed: int, columns: int, span: float,
                   category: int) -> ToolResult:
        c = self.config
        z, conts, _ = self.latents(list(range(seed, seed + rows)))
        if code == 0:
            if not c.info_categories:
                raise StudioError("this model has no categorical code; sweep code 1 or more")
            k = c.info_categories
            zs, cs = z.repeat_interleave(k, 0), conts.repeat_interleave(k, 0)
            labels = torch.arange(k).repeat(rows)
            return ToolResult(images=self.generate(zs, labels, cs), columns=k)
        if code > c.info_continuous:
            raise StudioError(f"this model has no continuous code {code} (it has "
                              f"{c.info_continuous})")
        values = torch.linspace(-span, span, columns)
        zs, cs = z.repeat_interleave(columns, 0), conts.repeat_interleave(columns, 0).clone()
        cs[:, code - 1] = values.repeat(rows)
        labels = (self.class_labels(len(zs), min(category, c.info_categories - 1))
                  if c.info_categories else None)
        return ToolResult(images=self.generate(zs, labels, cs), columns=columns)

    def evaluate(self, data, cache_dir) -> dict[str, float]:
        """InfoGAN never saw a label, so its categories are matched to classes after training:
        the judge labels the judged samples (890 on digits, cycling through the categories),
        and the one-to-one assignment that agrees most (Hungarian) maps categories to
        classes. Conditional accuracy is under that map. The distances judge the samples as
        an unconditional model's (an unconditional floor): the categories were never asked
        to be classes, so real sets with the mapped class counts would be a floor that only
        a model whose categories are the classes can reach."""
        from scipy.optimize import linear_sum_assignment
        from ..metrics import (JUDGED_DRAWS, draw_judged_samples, get_judge, judge_samples,
                               judged_sample_count)
        k = self.config.info_categories
        if not k or data.num_classes < 2:
            return super().evaluate(data, cache_dir)
        images, categories = draw_judged_samples(self.sample, judged_sample_count(data, k))
        predicted = get_judge(data, cache_dir).predict(images)
        agree = np.zeros((k, data.num_classes))
        np.add.at(agree, (categories, predicted), 1)
        cats, classes = linear_sum_assignment(-agree)
        mapping = dict(zip(cats.tolist(), classes.tolist()))
        keep = np.array([lab in mapping for lab in categories])  # k may exceed the classes
        mapped = np.array([mapping.get(lab, -1) for lab in categories])
        results = judge_samples(data, images, cache_dir=cache_dir, draws=JUDGED_DRAWS)
        results["conditional_accuracy"] = float(np.mean(predicted[keep] == mapped[keep]))
        results["category_to_class"] = " ".join(f"{c}->{data.class_names[m]}"
                                                for c, m in sorted(mapping.items()))
        return results


VARIANTS = (VanillaGAN, DCGAN, ConditionalGAN, WGAN, WGANGP, LSGAN, SNGAN, InfoGAN)
