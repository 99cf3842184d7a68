"""The linear family's declarations, without torch (pipelines/core/spec.py): its options, its
sampling controls and tool, its training defaults and presets, and one spec per model. The
page and the CLI read these; training and sampling import model.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import option, variant_config
from ..core.spec import PipelineSpec, Tool


@dataclass
class LinearConfig:
    latent_dim: int = option(16, "q: latent dimensions, the columns of the loading matrix W "
                             "(an image is mu + W z + noise, z ~ N(0, I_q)).", low=1, high=512)
    noise: str = option("isotropic", "The noise's covariance: isotropic (sigma^2 I, "
                        "probabilistic PCA: W spans the principal subspace) or diagonal "
                        "(one variance per pixel, factor analysis: each pixel's own noise is "
                        "not explained by the factors).", choices=("isotropic", "diagonal"))
    min_variance: float = option(1e-3, "Floor of each pixel's noise variance (on [0, 1] "
                                 "pixels; 1e-3 is a noise std of 0.03): a pixel that never "
                                 "changes, like a digit's blank border, would otherwise drive "
                                 "its variance to 0 and the likelihood to infinity.",
                                 low=1e-8, high=1.0)
    lr: float = option(0.01, "Adam learning rate.", low=0.0, high=1.0)
    image_size: int = option(0, "Resize the data to this size; 0 keeps the data set's size.",
                             low=0, high=128)


@dataclass
class LinearSampleControls:
    add_noise: bool = option(False, "Add the model's pixel noise to each sample. Off draws "
                             "E[x | z] = mu + W z, the smooth image textbooks show; on is a "
                             "true sample of the density the model fits (grainy).")
    temperature: float = option(1.0, "Scale of z's standard deviation: below 1 gives more "
                                "typical images, above 1 more varied ones.", low=0.0, high=3.0)


@dataclass
class ComponentsOptions:
    count: int = option(16, "Loading vectors to show, the largest first.", low=1, high=512)


TOOLS = (Tool("components", "tool_components", ComponentsOptions,
              "The mean image, then the columns of W as images (the 'eigendigits' of PCA), "
              "largest first, each scaled to show its sign: grey is 0."),)

# Measured on digits (8x8, a 64 x 16 loading matrix) on 2 CPU cores: ~100 steps/s, and the
# validation likelihood is within 0.002 nats per pixel of scikit-learn's closed-form fit by
# step 800 (ppca; factor analysis, whose 64 noise variances move slower, by ~2,000).
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 2000, "batch_size": 256, "sample_every": 500,
                                  "checkpoint_every": 1000, "log_every": 100}
# `--preset gpu`, planned, not measured: 64 px colour images are 12,288 dimensions; a rank-64
# covariance's log-density (Woodbury, torch's LowRankMultivariateNormal) is ~2 x 12,288 x 64
# x 1,024 ~ 1.6 GFLOP a step at batch 1,024: launch-bound, ~1 ms. 20,000 steps in under a
# minute plus grids.
GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"latent_dim": 64, "image_size": 64},
    "trainer": {"steps": 20000, "batch_size": 1024, "mixed_precision": "auto",
                "log_every": 200, "sample_every": 5000, "checkpoint_every": 5000}}

PPCA = PipelineSpec(
    name="ppca", family="linear", kind="image",
    summary="Probabilistic PCA (Tipping & Bishop 1999): a Gaussian with a rank-q plus "
            "isotropic covariance, fit by maximum likelihood; eigendigits; judged against "
            "scikit-learn's closed-form fit",
    impl="pipelines.linear.model:PPCA", Config=LinearConfig,
    SampleControls=LinearSampleControls, tools=TOOLS, train_defaults=TRAIN_DEFAULTS,
    presets={"gpu": GPU_PRESET}, can_interpolate=True)
FACTOR_ANALYSIS = PPCA.variant(
    "factor-analysis", "FactorAnalysis",
    "Factor analysis: PPCA with one noise variance per pixel; judged against scikit-learn's "
    "FactorAnalysis",
    Config=variant_config("FactorAnalysisConfig", LinearConfig, noise="diagonal"))

SPECS = (PPCA, FACTOR_ANALYSIS)
