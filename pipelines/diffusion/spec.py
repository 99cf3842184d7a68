"""The diffusion family's declarations, without torch (pipelines/core/spec.py): the tools, the
training defaults and presets, and the three pipelines: `ddpm` and `ddpm-class` (pixel.py)
and `ddpm-text` (text_to_image.py). The options are in config.py, torch-free too. The page and
the CLI read these; training, sampling and tools import pixel.py or text_to_image.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core.config import variant_config
from ..core.spec import PipelineSpec, Tool
from .config import (DiffusionSampleControls, Img2ImgOptions, InpaintOptions,
                     PixelDiffusionConfig, PreviewOptions, TextToImageConfig)

TOOLS = (
    Tool("img2img", "tool_img2img", Img2ImgOptions,
         "SDEdit: noise each given image to `strength`, then denoise it towards the class or "
         "prompt (columns: input | result).", needs_images=True),
    Tool("inpaint", "tool_inpaint", InpaintOptions,
         "Repaint the white part of a mask: --input picture.png mask.png. The rest is kept "
         "(RePaint-style: replaced by the noised picture at every step). Columns: picture | "
         "mask | fillings.", needs_images=True),
    Tool("denoise-steps", "tool_denoise_steps", PreviewOptions,
         "Intermediate steps: x_t every k steps as a strip, one row per seed, from noise (left) "
         "to the image (right)."),
)

# Sized for 2 CPU cores: a width-16 UNet on 16 px digits takes ~35 ms per step of 32 (it was
# ~0.17 s when issue 26 measured 2,000 steps in 5.7 minutes). Against the studio's copy floor
# (judge / layers / pixels, 898 samples, session 18): ddpm 8,000 steps 3.7x/3.0x/1.6x,
# 12,000 2.1x/1.8x/1.3x, 16,000 2.0x/1.8x/1.2x; an 8 px UNet (image_size 0) 4.0x/3.3x/1.4x
# at 8,000; a cosine learning-rate decay no better (3.7x at 8,000). docs/diffusion.md.
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 12000, "batch_size": 32, "sample_every": 1000,
                                  "checkpoint_every": 1000, "log_every": 50, "sample_count": 40}
# `--preset gpu` (pipelines/core/presets.py). Measured on an H200 (README): 22.0 steps/s in bf16,
# ~45 ms a step, 4,000 steps in ~3 minutes. Planned from: the default DDPM ran at 22.4 steps/s
# in fp32 on an H200, ~45 ms a step of kernel launches for a 2-level width-16 UNet. Launches
# grow with the levels, arithmetic with width^2 and pixels, so at 64 px: 3 levels (64, 32, 16;
# attention at 16) at width 64 (64-128-256 channels) is ~5 GMAC an image, ~2 TFLOP a step at
# batch 64, ~15 ms in bf16, next to ~65 ms of launches: 4,000 steps in about 5 minutes. A
# larger model than the default, so a lower peak learning rate. 64 px: shapes are drawn at that
# size, folder: images read at it; digits (8x8) are only upscaled.
GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"image_size": 64, "width": 64, "levels": 3, "lr": 5e-4},
    "trainer": {"steps": 4000, "batch_size": 64, "mixed_precision": "auto",
                "log_every": 100, "sample_every": 1000, "checkpoint_every": 1000}}
DDPM = PipelineSpec(
    name="ddpm", family="diffusion", kind="image",
    summary="DDPM with diffusers: an unconditional UNet2DModel; every common sampler; "
            "img2img, inpainting; exports a DDPMPipeline folder",
    impl="pipelines.diffusion.pixel:DDPM", Config=PixelDiffusionConfig,
    SampleControls=DiffusionSampleControls, tools=TOOLS, train_defaults=TRAIN_DEFAULTS,
    presets={"gpu": GPU_PRESET}, can_interpolate=True)
CLASS_DDPM = DDPM.variant(
    "ddpm-class", "ClassDDPM", "Class-conditional DDPM with classifier-free guidance; draws the "
    "class you ask for",
    Config=variant_config("ClassDDPMConfig", PixelDiffusionConfig, conditioning="class"),
    # Guidance 1.1, not 3: on digits guidance trades variety for class, and the better the
    # model the more (multiples of the judge's class-matched floor, judge / layers / pixels,
    # and conditional accuracy; 12,000 steps): 1.05 1.7/1.4/1.3 0.979, 1.1 2.6/1.8/1.4 0.984,
    # 1.15 3.9/2.3/1.5 0.988 (at 8,000 steps 1.15 read 3.05x; at 3.0 every model draws only
    # each class's most typical digits, 26x at 8,000). docs/diffusion.md.
    SampleControls=variant_config("ClassDDPMSampleControls", DiffusionSampleControls,
                                  guidance=1.1),
    # Its tools (img2img, inpaint, denoise-steps) guide at the same 1.1 as its samples.
    tools=tuple(replace(tool, Options=variant_config(f"Class{tool.Options.__name__}",
                                                     tool.Options, guidance=1.1))
                for tool in TOOLS))
TEXT_DDPM = PipelineSpec(
    name="ddpm-text", family="diffusion", kind="image",
    summary="Text-to-image latent diffusion on captioned images (shapes, or a folder: with "
            "captions): an AutoencoderKL, then a CLIP text encoder and a cross-attention UNet "
            "on its latents; guidance, held-out colour/shape prompts; exports a "
            "StableDiffusionPipeline",
    impl="pipelines.diffusion.text_to_image:TextDDPM", example_data="shapes",
    Config=variant_config("TextDDPMConfig", TextToImageConfig, image_size=0,
                          autoencoder_steps=2500, width=32, levels=2,
                          prediction_type="v_prediction", beta_schedule="cosine",
                          min_snr_gamma=0.0),
    SampleControls=DiffusionSampleControls, tools=TOOLS,
    train_defaults={**TRAIN_DEFAULTS, "steps": 7000, "grad_clip": 1.0},
    can_interpolate=True,
    # `--preset gpu`, not yet measured on a GPU (bench/gpu.py will). The defaults ran at 20.5
    # steps/s in fp32 on an H200 (~50 ms a step, launch-bound), so the same two-level latent
    # UNet at twice the width, on 64 px shapes (16x16x4 latents, attention and cross-attention
    # at both levels), a wider text encoder and 4x the autoencoder's batch add arithmetic, not
    # launches: ~55 ms a step, 6,000 steps (2,000 of them the autoencoder's, each on 64
    # images, 3x the images of the default's 2,500 on 16) in about 5.5 minutes.
    presets={"gpu": {
        "config": {"image_size": 64, "width": 64, "attention_size": 16, "text_width": 128,
                   "autoencoder_width": 32, "autoencoder_batch": 64, "autoencoder_steps": 2000},
        "trainer": {"steps": 6000, "batch_size": 64, "mixed_precision": "auto",
                    "log_every": 100, "sample_every": 1000, "checkpoint_every": 1000}}})

SPECS = (DDPM, CLASS_DDPM, TEXT_DDPM)
