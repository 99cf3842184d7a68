"""LAPGAN's declaration, without torch (pipelines/core/spec.py): its config (the GAN family's
options plus the pyramid's), its `levels` tool and its defaults. The model is in lapgan.py.

Denton, Chintala, Szlam & Fergus (2015), "Deep Generative Image Models using a Laplacian
Pyramid of Adversarial Networks": a small GAN draws the coarsest image of a Laplacian pyramid
and one conditional GAN per finer level draws that level's band-pass detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from ..core.config import option, seed_option, variant_config
from ..core.presets import extend
from ..core.spec import Tool
from .spec import GAN_SPEC, GPU_PRESET, TRAIN_DEFAULTS, GANConfig


@dataclass
class LAPGANOptions(GANConfig):
    architecture: str = option("conv", "The coarsest level's nets: conv (DCGAN's, from an 8x8 "
                               "coarsest image up) or mlp (the paper's fully connected G0 and "
                               "D0, as for CIFAR-10's 8x8 level). A 4x4 coarsest image always "
                               "takes the mlp nets (conv nets start at 8x8).",
                               choices=("conv", "mlp"))
    d_norm: str = option("auto", "Normalisation in the discriminators: none, batch (DCGAN's, "
                         "in every level's) or auto: batch from 32 px images, none below. "
                         "Measured (session 21): on shapes batch norm in every level's "
                         "discriminator read 164x the judge's floor (faint smudges without it "
                         "in the 8x8 coarse image; an 8 px DCGAN on shapes 91x without, 7x "
                         "with), in the coarse one only 235x; on digits' 8 px level it read "
                         "3.6x against 2.6x without. Not with a gradient penalty.",
                         choices=("none", "batch", "auto"))
    width: int = option(0, "Channels of each finer level's discriminator at its own "
                        "resolution (strided convs down to 4x4), and of a conv coarsest "
                        "level's nets. 0 picks 32 at 8 px, halved at each finer level (16 at "
                        "16 px, 8 at 32 px), and 32 for a conv coarsest level.", low=0, high=512)
    base_size: int = option(0, "Side of the coarsest image, drawn by an ordinary GAN; each finer "
                            "level doubles it up to the image size (Denton et al. 2015: 8x8 "
                            "under 16x16 and 32x32 for CIFAR-10). 0 picks: 4 up to 16 px, 8 "
                            "from 32 px. A power of two, 4 or more, below the image size.",
                            low=0, high=64)
    level_width: int = option(0, "Feature maps of each finer level's conditional generator "
                              "(three 3x3 convolutions on the upsampled coarser image and a "
                              "noise plane, as the paper's CIFAR-10 G1 and G2, which used 128). "
                              "0 picks 64 at 8 px, halved at each finer level (32 at 16 px, 16 "
                              "at 32 px), so that every level costs about the same (2-core "
                              "budgets).", low=0, high=512)
    mode_seeking: float = option(0.03, "Weight of the mode-seeking term on each finer level's "
                                 "generator (Mao et al. 2019, \"Mode Seeking GANs\"): 1 / "
                                 "(|G_k(l, z1) - G_k(l, z2)| / |z1 - z2|) for two noises on "
                                 "the same coarser image. Without it a conditional level learns "
                                 "to ignore its noise (measured on digits: residuals vary 0.3% "
                                 "as much with the noise as across images) and every coarse "
                                 "image gets one detail. 0.03: on digits recall 0.49 -> 0.79; "
                                 "the paper's 1 drew noisy strokes (14x the judge's floor "
                                 "against 2.6x). 0 is off.", low=0.0, high=100.0)
    coarse_batch: int = option(0, "Images per step for the coarsest level's GAN, drawn from "
                               "the training set apart from the batch (the levels are "
                               "independent GANs; Denton et al. 2015 trained each apart), so "
                               "that small GAN sees more images than the finer levels' batch. "
                               "0 picks: 64 where the coarsest nets are fully connected (a 4x4 "
                               "coarsest image, as digits', or architecture=mlp; 2%-9% more "
                               "time a step), the batch's own images for conv nets (64 apart cost "
                               "11% more a step on shapes). -1: always the batch's own (runs "
                               "before session 28). Measured on digits (session 28, seeds 0 / "
                               "1): 64 read 2.27x / 2.35x / 2.23x and 2.56x / 2.60x / 2.46x "
                               "the judge's floors (judge / layers / pixels) where the batch's "
                               "own read 2.23x / 2.41x / 2.91x and 2.42x / 2.57x / 2.81x; 128 "
                               "and 256 2.2x and 1.95x in pixels but 3.3x-3.6x on the "
                               "judge's features (each on one draw of samples; on ten, "
                               "session 29, the default reads 3.13x / 3.10x / 2.44x).",
                               low=-1, high=4096)
    reconstruction: float = option(0.0, "Weight of an L1 term on each finer level's "
                                   "generator: its image against the real one, given the real "
                                   "coarser image (Isola et al. 2017, pix2pix: 100 beside the "
                                   "adversarial loss). Measured (session 28, seed 0): on "
                                   "shapes 100 read 75x / 55x / 2.0x the judge's floors where "
                                   "10 read 146x / 101x / 2.2x and none ~164x-206x; on digits "
                                   "100 read 2.44x / 2.87x / 3.85x (recall 0.57: the levels "
                                   "ignore their noise, as pix2pix found) and 1 or 10 as none. "
                                   "0 is off.", low=0.0, high=1000.0)
    # Runs saved before an option existed resume as they trained (core/config.py from_dict).
    introduced: ClassVar[dict[str, Any]] = {"coarse_batch": -1}


# self_conditioning 10: every studio GAN without labels draws fewer blends between digits
# conditioned on clusters of its own images (Liu et al. 2020; docs/gans.md); the paper's
# class-conditional LAPGAN is the same machinery with labels (conditioning=projection).
# standing_statistics 1024: the generators' batch norm recomputed for the EMA weights (as
# BigGAN's); on digits (session 22) 2.79x / 2.84x / 3.22x the judge's floors -> 2.23x / 2.41x /
# 2.91x, on the same weights.
LAPGANConfig = variant_config("LAPGANConfig", LAPGANOptions, self_conditioning=10,
                              standing_statistics=1024)


@dataclass
class LevelsOptions:
    rows: int = option(6, "Rows, one seed each (seed, seed + 1, ...).", low=1, high=64)
    seed: int = seed_option(0, "The first row's seed.")
    residuals: bool = option(True, "After the levels, show each finer level's generated "
                             "band-pass residual, rescaled so that 0 is mid grey and its "
                             "largest value fills the range (Denton et al. 2015, figure 1).")
    truncation: float = option(0.0, "Truncation trick on every level's noise (as when "
                               "sampling); 0 is off.", low=0.0, high=4.0)


LAPGAN = GAN_SPEC.variant(
    "lapgan", "pipelines.gan.lapgan:LAPGAN",
    "LAPGAN (Denton 2015): a Laplacian pyramid of GANs, a small GAN for the coarse image and a "
    "conditional GAN per finer level drawing its detail; a levels tool",
    Config=LAPGANConfig,
    # 5,000 steps of 32 (session 19, bench/gan_quality.py two at a time, one thread each):
    # digits 4.3x / 5.0x / 6.6x the judge's copy floor (judge / layers / pixels), recall
    # 0.45, in 2.57 minutes, where session 17's 2,500 read 8.6x / 9.6x / 10.7x in 1.47 and
    # 2,500 with level_width 128 5.3x / 7.2x / 10.9x in 1.88. Session 17: 1,500 steps
    # 12.3x / 12.6x / 13.3x, 1,500 of 64 8.5x / 8.5x / 9.9x (4.3 minutes); shapes, 1,500
    # steps, 454x / 307x / 8.0x in 6.5 minutes (coloured blobs, few clear outlines). Session
    # 20 (same way): digits train 10,000 steps, 2.7x / 3.3x / 4.7x (recall 0.49) in 4.1
    # minutes; 15,000 read 3.2x / 3.5x / 3.4x (recall 0.63) in 5.5. Session 21: mode_seeking
    # 0.03, 2.6x / 2.8x / 3.5x (recall 0.79); shapes with batch norm in the discriminators
    # 164x / 124x / 2.5x (242x / 174x / 5.1x before). Session 22 (standing statistics, a
    # machine 2x slower a step): digits 20,000 steps 1.76x / 1.88x / 2.12x (seed 1 2.02x /
    # 2.10x / 2.14x), but ~14 minutes alone there: over issue 22's 10, so --preset long.
    # Session 28: the coarse GAN draws 64 coarse images a step of its own (coarse_batch):
    # digits 2.27x / 2.35x / 2.23x (seed 1 2.56x / 2.60x / 2.46x) in 2%-9% more time, each
    # on one draw of samples; on ten draws (session 29) 3.13x / 3.10x / 2.44x.
    train_defaults={**TRAIN_DEFAULTS, "steps": 5000, "batch_size": 32},
    train_defaults_by_data={"digits": {"steps": 10000}, "shapes": {"steps": 5000}},
    # gpu preset (not yet measured on a GPU): 64 px, 8x8 base and three conditional levels
    # (16, 32, 64) of the paper's 128 feature maps, the family's batch and steps.
    presets={"gpu": extend(GPU_PRESET, config={"base_size": 8, "level_width": 128})},
    tools=(Tool("levels", "levels", LevelsOptions,
                "Every level of the pyramid for a few seeds: the coarse image, each finer "
                "level's output (upsampled to the full size), then each level's residual."),))

SPECS = (LAPGAN,)
