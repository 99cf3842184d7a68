"""The image-to-image family's declarations, without torch (pipelines/core/spec.py): pix2pix's
options, its tool, its training defaults and presets. The page and the CLI read these;
training, sampling and the tool import pix2pix.py (and networks.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import option, seed_option
from ..core.spec import PipelineSpec, Tool

PAPER = "Isola et al. 2017"   # "Image-to-image translation with conditional adversarial networks"


@dataclass
class Pix2PixConfig:
    width: int = option(16, "U-Net generator: channels of its first layer, doubled at each "
                        "x2 step down (at most 8x), down to 1x1 pixel, each step's features "
                        "skipped across to the matching step up. The paper's is 64 "
                        f"(C64-C128-C256-C512-...; {PAPER}, 'Image-to-image translation with "
                        "conditional adversarial networks', 3.2.1 and appendix 6.1); "
                        "16 trains on 32 px shapes-edges in minutes on a 2-core CPU (32 is "
                        "~3x slower a step).", low=4, high=256)
    dropout: float = option(0.5, "Dropout in the three innermost decoder layers, the "
                            "generator's only noise: the paper found a noise vector z ignored "
                            f"and used dropout instead ({PAPER}, 3.1; 0.5 there). The paper "
                            "keeps it on when drawing too; here it is off, so an output is a "
                            "function of its input.",
                            low=0.0, high=0.9)
    l1_weight: float = option(100.0, "lambda: weight of the L1 distance to the target next to "
                              "the adversarial loss (the paper's 100: L1 for the low "
                              "frequencies, the discriminator for the sharp detail; "
                              f"{PAPER}, eq. 4).", low=0.0, high=10000.0)
    gan_weight: float = option(1.0, "Weight of the adversarial loss (the paper's BCE on each "
                               f"patch, non-saturating for the generator; {PAPER}, eq. 1). 0 "
                               "trains on L1 alone, the paper's blurry ablation (its 4.2), and "
                               "the discriminator is never stepped.", low=0.0, high=100.0)
    d_width: int = option(16, "PatchGAN discriminator: channels of its first layer, doubled "
                          "per layer (at most 8x); the paper's is 64.", low=4, high=256)
    d_layers: int = option(1, "PatchGAN: stride-2 layers before its two stride-1 ones. Each "
                           "logit judges one patch of the (input, output) pair: 1 -> 16x16 "
                           "patches, 2 -> 34x34, 3 -> the paper's 70x70 (its best at 256 "
                           f"px; {PAPER}, 3.2.2 and 4.4). A 16 px patch is half a 32 px "
                           "shapes-edges picture, about one shape and its surroundings.",
                           low=1, high=5)
    lr: float = option(2e-4, "Adam learning rate of both networks (the paper's 0.0002).",
                       low=0.0, high=1.0)
    beta1: float = option(0.5, "Adam beta1, in [0, 1) (the paper's 0.5).", low=0.0, high=1.0,
                          high_exclusive=True)
    beta2: float = option(0.999, "Adam beta2, in [0, 1).", low=0.0, high=1.0,
                          high_exclusive=True)


@dataclass
class TranslateOptions:
    count: int = option(8, "Validation pairs to translate when no input images are given.",
                        low=1, high=256)
    seed: int = seed_option(0, "The first validation pair shown (pair seed mod N, then the "
                            "next ones), when no input images are given.")


TOOLS = (Tool("translate", "tool_translate", TranslateOptions,
              "Translate your images (--input a.png ...), shown as input | output, one a row; "
              "without inputs, validation pairs as input | output | target, with their L1 "
              "and PSNR.", accepts_images=True),)

# Measured on shapes-edges (32 px, 4,500 pairs) alone on this 2-core CPU (docs/translation.md):
# ~37 steps/s, 10,000 steps in 4.6 minutes end to end. Shape class of the outputs 0.50 at
# 2,500 steps, 0.70 at 10,000 (width 32 for 4,000 steps, the same time: 0.60), so the steps.
# sample_count 27: the trainer's square grid of 81 images is 9 columns, three whole input |
# output | target triples a row.
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 10000, "batch_size": 32, "log_every": 200,
                                  "sample_every": 2000, "checkpoint_every": 2000,
                                  "sample_count": 27}
# `--preset gpu`, planned, not measured: the paper's widths (64) at the data's 32 px, 16x the
# default's arithmetic: ~1 GFLOP a pair forward and backward (the U-Net's ~90 M multiply-adds
# forward, the PatchGAN's three passes): ~250 GFLOP a step at batch 256, tens of ms in bf16 on
# an H100/H200 class GPU, whose small convolutions are far from its peak. 10,000 steps (~570
# epochs of shapes-edges) in about 5 minutes.
GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"width": 64, "d_width": 64},
    "trainer": {"steps": 10000, "batch_size": 256, "mixed_precision": "auto",
                "log_every": 100, "sample_every": 1000, "checkpoint_every": 2500}}

PIX2PIX = PipelineSpec(
    name="pix2pix", family="translation", kind="image",
    summary="Pix2Pix (Isola et al. 2017): a U-Net turns each input into its target, trained "
            "with L1 and a PatchGAN; paired data (shapes-edges, paired:PATH)",
    impl="pipelines.translation.pix2pix:Pix2Pix", Config=Pix2PixConfig, tools=TOOLS,
    train_defaults=TRAIN_DEFAULTS, presets={"gpu": GPU_PRESET}, data_kind="paired")


# --- CycleGAN ----------------------------------------------------------------------------------
CYCLE_PAPER = "Zhu et al. 2017"   # "Unpaired image-to-image translation using cycle-consistent
#                                   adversarial networks"
CYCLEGAN_STEPS = 6000   # the defaults' run: constant for the first half, then the decay


@dataclass
class CycleGANConfig:
    width: int = option(16, "ResNet generators (both): channels of the first layer, doubled "
                        "at each stride-2 step down (the paper's 64).", low=4, high=256)
    downsamplings: int = option(1, "ResNet generators: stride-2 steps down before the residual "
                                "blocks, and as many back up (the paper's 2, at 128 and 256 px; "
                                "1 here: at 32 px two steps shrink a 6 px shape to 1.5 px and "
                                "the translations came out as blobs, docs/translation.md).",
                                low=0, high=4)
    blocks: int = option(3, "Residual blocks after the steps down, in each generator (the "
                         f"paper's 6 at 128 px, 9 at 256; {CYCLE_PAPER}, appendix 7.2).",
                         low=1, high=12)
    d_width: int = option(16, "PatchGAN discriminators (both): channels of the first layer "
                          "(the paper's 64).", low=4, high=256)
    d_layers: int = option(1, "PatchGAN: stride-2 layers (1 -> 16x16 patches, 3 -> the "
                           "paper's 70x70).", low=1, high=5)
    cycle_weight: float = option(10.0, "lambda: weight of the cycle-consistency L1, "
                                 "F(G(a)) ~ a and G(F(b)) ~ b (the paper's 10; its eq. 3).",
                                 low=0.0, high=1000.0)
    identity_weight: float = option(2.0, "Weight of the identity L1, G(b) ~ b and F(a) ~ a, as "
                                    "a share of lambda (the paper's 0.5 lambda, its 5.2; 2 here "
                                    "kept the shape class better on shapes-seasons, "
                                    "docs/translation.md).", low=0.0, high=10.0)
    pool_size: int = option(50, "The discriminators see a mix of this many past translations "
                            f"(an image pool, the paper's 50; {CYCLE_PAPER}, 4); 0: only "
                            "the newest.", low=0, high=1000)
    lr: float = option(2e-4, "Adam learning rate of all four networks (the paper's 0.0002).",
                       low=0.0, high=1.0)
    beta1: float = option(0.5, "Adam beta1, in [0, 1) (the paper's 0.5).", low=0.0, high=1.0,
                          high_exclusive=True)
    constant_steps: int = option(CYCLEGAN_STEPS // 2, "Steps at the full learning rate before "
                                 "the linear decay (the paper: 100 epochs). The trainer does "
                                 "not tell a family the run's length: with other --steps, set "
                                 "these two to half of it each.", low=0, high=10_000_000)
    decay_steps: int = option(CYCLEGAN_STEPS // 2, "Steps of the linear decay of the learning "
                              "rate to 0 after them (the paper: 100 epochs); 0: no decay.",
                              low=0, high=10_000_000)


@dataclass
class CycleTranslateOptions:
    direction: str = option("a_to_b", "a_to_b: G, domain A -> B; b_to_a: F, B -> A.",
                            choices=("a_to_b", "b_to_a"))
    count: int = option(8, "Validation pictures of the source domain to translate when no "
                        "input images are given.", low=1, high=256)
    seed: int = seed_option(0, "The first validation picture shown (seed mod N, then the next "
                            "ones), when no input images are given.")


CYCLEGAN_TOOLS = (Tool("translate", "tool_translate", CycleTranslateOptions,
                       "Translate your images (--input a.png ...) in one direction, shown as "
                       "input | output | back (the cycle); without inputs, validation pictures "
                       "of the source domain, with the cycle's L1.", accepts_images=True),)

# Measured on shapes-seasons (32 px, 2 x 2,250 training pictures) on this 2-core CPU:
# docs/translation.md, "CycleGAN". sample_count 12: 12 rows of a | G(a) | F(G(a)) |
# b | F(b) | G(F(b)) (CycleGAN.sample), 72 pictures. log_every 200: each validation
# translates the 2 x 250 validation pictures there and back (~3 s).
CYCLEGAN_DEFAULTS: dict[str, Any] = {"steps": CYCLEGAN_STEPS, "batch_size": 8,
                                     "log_every": 200, "sample_every": 500,
                                     "checkpoint_every": 500, "sample_count": 12}

# `--preset gpu`, planned, not measured: the paper's widths (64, 9 blocks) at 32 px and the
# paper's batch of 1 raised to 64 for a GPU; 20,000 steps, held for half, then decayed.
CYCLEGAN_GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"width": 64, "d_width": 64, "blocks": 9, "constant_steps": 10000,
               "decay_steps": 10000},
    "trainer": {"steps": 20000, "batch_size": 64, "mixed_precision": "auto",
                "log_every": 200, "sample_every": 2000, "checkpoint_every": 5000}}

CYCLEGAN = PipelineSpec(
    name="cyclegan", family="translation", kind="image",
    summary="CycleGAN (Zhu et al. 2017): two ResNet generators, A -> B and B -> A, trained "
            "with PatchGANs and cycle consistency; unpaired data (shapes-seasons, "
            "unpaired:PATH)",
    impl="pipelines.translation.cyclegan:CycleGAN", Config=CycleGANConfig,
    tools=CYCLEGAN_TOOLS, train_defaults=CYCLEGAN_DEFAULTS,
    presets={"gpu": CYCLEGAN_GPU_PRESET}, data_kind="unpaired")

SPECS = (PIX2PIX, CYCLEGAN)
