"""The diffusion family's options, torch-free so that the page can read them: what every
diffusion model shares (DiffusionConfig: the UNet, the noise schedule, the loss, the
optimiser), what the pixel models add (PixelDiffusionConfig: class conditioning, patches) and
what the text-to-image model adds (TextToImageConfig: the autoencoder, the text encoder, the
held-out prompts); then the sampling controls and the tools' options. spec.py declares the
pipelines that use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.config import EMA_WARM_UP, option, seed_option

SCHEDULERS = ("ddpm", "ddim", "dpm++", "euler", "euler-ancestral", "heun", "unipc")
# Samplers that draw fresh noise at every step (DDIM only when eta > 0).
STOCHASTIC = ("ddpm", "euler-ancestral")
# The held-out (colour, shape) pairs of the text model: one per shape, each colour once at most,
# so every colour and every shape is still seen in training, just never together in these pairs.
DEFAULT_HELD_OUT = "red triangle, blue cross, yellow circle, purple diamond, green square"


@dataclass
class DiffusionConfig:
    """What every diffusion model here has: a diffusers UNet, a DDPM noise schedule, the
    training target and loss weighting, condition dropout, AdamW and an EMA."""
    image_size: int = option(16, "Resize the data to this size (a power of two, 8 to 64); 0 "
                             "keeps the data set's size. digits are 8 px natively.",
                             low=0, high=64)
    width: int = option(16, "Channels of the UNet's first level; each deeper level doubles "
                        "them (16, 32, 64, ...).", low=4, high=256)
    levels: int = option(2, "UNet resolution levels (each halves the size).", low=2, high=4)
    attention_size: int = option(8, "Attention (self-attention, and cross-attention to the "
                                 "text) at the UNet levels whose feature maps are at most this "
                                 "wide; the deepest level always has it. Attention at 16x16 "
                                 "costs about as much as the rest of a small UNet on a CPU.",
                                 low=1, high=64)
    layers_per_block: int = option(1, "ResNet blocks per UNet level.", low=1, high=4)
    num_train_timesteps: int = option(1000, "Diffusion steps T of the training process.",
                                      low=10, high=4000)
    beta_schedule: str = option("linear", "Noise schedule: linear (DDPM, Ho et al. 2020) or "
                                "cosine (Nichol & Dhariwal 2021). Cosine reaches zero signal at "
                                "t = T, where the noise alone cannot say what the image is, so "
                                "it needs prediction_type v_prediction or sample.",
                                choices=("linear", "cosine"))
    snr_shift: float = option(1.0, "Multiply the noise schedule's signal-to-noise ratio at "
                              "every timestep by this (Hoogeboom et al. 2023). Below 1 spends "
                              "more of training on heavy noise, where only the condition says "
                              "what the image is: (16 / image size)^2 makes a 32 px image as "
                              "hard to read at each t as a 16 px one.", low=1e-4, high=100.0)
    prediction_type: str = option("epsilon", "What the UNet predicts: epsilon (the noise), "
                                  "v_prediction (Salimans & Ho 2022), or sample (the clean "
                                  "image).", choices=("epsilon", "v_prediction", "sample"))
    min_snr_gamma: float = option(5.0, "Min-SNR loss weighting (Hang et al. 2023): caps each "
                                  "timestep's weight at gamma / SNR; 0 is the plain MSE.",
                                  low=0.0, high=100.0)
    cond_dropout: float = option(0.1, "Classifier-free guidance training: the probability of "
                                 "replacing a class or caption by the null one.",
                                 low=0.0, high=1.0)
    lr: float = option(1e-3, "AdamW learning rate.", low=0.0, high=1.0)
    lr_warmup_steps: int = option(100, "Linear learning-rate warm-up from 0.", low=0)
    weight_decay: float = option(0.0, "AdamW weight decay.", low=0.0, high=1.0)
    ema_decay: float = option(0.999, "EMA of the weights used for sampling; 0 turns it off. "
                              + EMA_WARM_UP, low=0.0, high=1.0)


@dataclass
class PixelDiffusionConfig(DiffusionConfig):
    """ddpm and ddpm-class (pixel.py): a UNet2DModel on the pixels."""
    # Runs saved before the pixel and text-to-image pipelines were split (one config for
    # every form) hold the text model's options too: loading drops them, where they held the
    # value a pixel model implies (None: any value, they did nothing here). core/config.py.
    retired: ClassVar[dict[str, Any]] = {
        "latent_channels": 0, **dict.fromkeys((
            "autoencoder_steps", "autoencoder_batch", "autoencoder_width", "foreground_weight",
            "autoencoder_lr", "kl_weight", "text_width", "text_layers", "pooled_text",
            "held_out"))}
    conditioning: str = option("none", "none: unconditional; class: a class embedding in the "
                               "UNet (needs 2+ classes), dropped cond_dropout of the time for "
                               "classifier-free guidance. (Text conditioning is ddpm-text.)",
                               choices=("none", "class"))
    patch_size: int = option(1, "Space-to-depth before the UNet (Hoogeboom et al. 2023, 'simple "
                             "diffusion'): each p x p patch becomes p*p*C channels, so the UNet "
                             "works on 1/p^2 of the positions; noise and images stay in pixel "
                             "space (the same diffusion, its coordinates reordered). 1 or 2; 2 "
                             "needs conditioning class (a DDPMPipeline has no patching).",
                             low=1, high=2)


@dataclass
class TextToImageConfig(DiffusionConfig):
    """ddpm-text (text_to_image.py): an AutoencoderKL, a CLIP text encoder and a
    UNet2DConditionModel on the autoencoder's latents."""
    retired: ClassVar[dict[str, Any]] = {"conditioning": "text", "patch_size": 1}  # as above
    latent_channels: int = option(4, "Latent diffusion (Rombach et al. 2022, as in Stable "
                                  "Diffusion): the run first trains an AutoencoderKL (images 4x "
                                  "smaller per side, this many channels) for "
                                  "autoencoder_steps, then diffuses its latents; 0 diffuses the "
                                  "pixels (no autoencoder phase).", low=0, high=16)
    autoencoder_steps: int = option(1500, "The run's first this-many steps "
                                    "train the autoencoder alone; it is then frozen and the "
                                    "rest of the steps train the UNet.", low=1)
    autoencoder_batch: int = option(16, "The autoencoder trains on the first "
                                    "this-many images of each batch (at 32 px it costs ~3x a "
                                    "latent UNet step per image).", low=1)
    autoencoder_width: int = option(16, "Channels of the autoencoder's first "
                                    "level (then 2x, 2x).", low=4, high=128)
    foreground_weight: float = option(10.0, "In the autoencoder's squared "
                                      "error a pixel weighs 1 + this x (its distance from the "
                                      "image's background, the median border colour, + 2 x the "
                                      "image's local gradient; both 0 to 1), so that small "
                                      "objects keep their colour and corners; 0 is the plain "
                                      "MSE.", low=0.0, high=1000.0)
    autoencoder_lr: float = option(2e-3, "The autoencoder's AdamW learning "
                                   "rate (warm-up, then a cosine decay to 1/10 over its "
                                   "phase).", low=0.0, high=1.0)
    kl_weight: float = option(1e-4, "Weight of the autoencoder's KL term "
                              "(per image value) next to its reconstruction loss.",
                              low=0.0, high=1.0)
    text_width: int = option(64, "Hidden size of the CLIP text encoder (and the UNet's "
                             "cross-attention width).", low=8, high=512)
    text_layers: int = option(2, "Transformer layers of the text encoder.", low=1, high=12)
    pooled_text: bool = option(True, "Also add an attention-pooled summary of the prompt "
                               "to the timestep embedding (as Imagen and DeepFloyd IF do), so "
                               "every ResNet block sees the prompt, not only the cross-attention "
                               "layers.")
    held_out: str = option(DEFAULT_HELD_OUT, "shapes captions: 'colour shape' pairs, comma "
                           "separated, whose images are left out of training and whose prompts "
                           "are evaluated (attributes combined as never seen); empty keeps every "
                           "image. Other captioned data keeps every image.")



@dataclass
class DiffusionSampleControls:
    scheduler: str = option("dpm++", "Sampler: ddpm, ddim, dpm++ (DPM-Solver++ multistep), "
                            "euler, euler-ancestral, heun, unipc.", choices=SCHEDULERS)
    steps: int = option(25, "Denoising steps (heun evaluates the UNet about twice per step).",
                        low=1, high=1000)
    guidance: float = option(3.0, "Classifier-free guidance scale for conditional models: 1 is "
                             "the plain conditional model, higher follows the class or prompt "
                             "more closely (less variety); 0 is unconditional.",
                             low=0.0, high=30.0)
    eta: float = option(0.0, "DDIM only: 0 is deterministic, 1 adds DDPM's noise.",
                        low=0.0, high=1.0)
    prompt: str = option("", "Text models: the prompt, e.g. 'a large red circle at the top left "
                         "on a white background'; empty draws a varied set of prompts.")
    negative_prompt: str = option("", "Text models: what guidance steers away from (replaces "
                                  "the empty prompt of classifier-free guidance).")


@dataclass
class Img2ImgOptions(DiffusionSampleControls):
    strength: float = option(0.6, "SDEdit: how far to noise the input before denoising it "
                             "(0 keeps it, 1 ignores it).", low=0.0, high=1.0)
    label: int = option(-1, "Class models: the class to steer towards; -1 cycles through "
                        "the classes.", low=-1)
    seed: int = seed_option(0, "Seed of the noise (image i uses seed + i).")


@dataclass
class InpaintOptions(DiffusionSampleControls):
    label: int = option(-1, "Class models: the class to fill in with; -1 cycles.", low=-1)
    seed: int = seed_option(0, "Seed of the noise.")
    count: int = option(4, "Fillings to draw (seeds seed, seed + 1, ...).", low=1, high=64)


@dataclass
class PreviewOptions(DiffusionSampleControls):
    every: int = option(5, "Show x_t (and the predicted clean image) every k steps.",
                        low=1, high=1000)
    label: int = option(-1, "Class models: the class to draw; -1 cycles.", low=-1)
    seed: int = seed_option(0, "Seed (row i uses seed + i).")
    count: int = option(4, "Rows, one image each.", low=1, high=16)
