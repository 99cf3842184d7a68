"""The diffusion pipeline: diffusers' UNets and schedulers, and one training step.

Read top to bottom: the networks (an unconditional or class-conditional UNet2DModel, or a
UNet2DConditionModel reading a small CLIPTextModel through cross-attention, optionally on the
latents of an AutoencoderKL trained first in the same run: autoencoder.py), the DDPM training
step (epsilon / v / sample targets, min-SNR weights, condition dropout for classifier-free
guidance) and validation. Sampling is in sampling.py; tools, evaluation and export in tools.py.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, data_info
from ..data import ImageData
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.phases import Phase
from ..core.schedules import Schedule
from ..data import shapes as grammar
from . import text as T
from .autoencoder import DOWNSCALE, LatentAutoencoder, autoencoder_loss
from .sampling import DiffusionSampling, make_scheduler
from .spec import DIFFUSION_SPEC
from .tools import DiffusionTools

__all__ = ["Diffusion", "make_scheduler", "shifted_betas"]   # make_scheduler: a re-export


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """Betas whose signal-to-noise ratio at every t is `shift` times the given schedule's
    (Hoogeboom et al. 2023, "simple diffusion"; Chen 2023). A 32 px image averages its noise
    over 4x the pixels of a 16 px one, so at the same t its background and colours are still
    readable from x_t and the model learns to ignore the prompt; shift 1/4 makes each t as
    hard as at 16 px. (T,) -> (T,)."""
    snr = alphas_cumprod.double() / (1 - alphas_cumprod.double()) * shift
    shifted = snr / (1 + snr)                                          # alpha_bar_t, shifted
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1 - shifted / previous).clamp(max=0.999).float()


class Diffusion(DiffusionSampling, DiffusionTools, Pipeline):
    """DDPM training with every common sampler; variants.py names the three forms, spec.py
    declares their defaults."""
    spec = DIFFUSION_SPEC
    ema_modules = ("unet",)
    best_metric = ("loss", "min")    # validation MSE at fixed timesteps and noise (best.py)

    # --- data and networks -------------------------------------------------------------------
    @classmethod
    def describe_data(cls, data, config) -> dict:
        info = data_info(data)
        if config.conditioning == "text":
            if not isinstance(data, ImageData) or data.train_captions is None:
                raise StudioError(f"conditioning=text needs captioned images; {data.name} has "
                                  f"no captions. {T.CAPTIONED_DATA}")
            tokenizer, length = T.build_tokenizer(data.train_captions + data.val_captions)
            info.update(tokenizer=tokenizer, max_length=length,
                        vocab_size=T.load_tokenizer(tokenizer).get_vocab_size(),
                        caption_grammar=data.caption_grammar)
            if data.caption_grammar is None:   # prompts drawn by seed when none is given
                info["sample_prompts"] = list(data.val_captions[:T.SAMPLE_PROMPTS])
        return info

    @property
    def num_classes(self) -> int:
        return self.info.get("num_classes", 1) if self.config.conditioning == "class" else 0

    def check_config(self) -> None:
        c, s = self.config, self.info["image_size"]
        if c.conditioning == "class" and self.info.get("num_classes", 1) < 2:
            raise StudioError("conditioning=class needs a data set with 2 or more classes; use "
                              "conditioning=none")
        if c.conditioning == "text" and "tokenizer" not in self.info:
            raise StudioError(f"conditioning=text needs captioned images. {T.CAPTIONED_DATA}")
        if c.latent_channels and (c.conditioning == "none" or c.patch_size > 1):
            raise StudioError("latent diffusion (latent_channels > 0) needs conditioning class or "
                              "text (an unconditional model exports a DDPMPipeline, which has no "
                              "autoencoder) and patch_size=1; or set latent_channels=0")
        if c.patch_size > 1 and c.conditioning == "none":
            raise StudioError("patch_size 2 needs conditioning class or text: the unconditional "
                              "form exports a DDPMPipeline, which samples without patching; use "
                              "patch_size=1")
        multiple = c.patch_size * 2 ** (c.levels - 1) * (DOWNSCALE if c.latent_channels else 1)
        if s % multiple:
            raise StudioError(f"patches of {c.patch_size}, a {c.levels}-level UNet (it halves "
                              f"the image {c.levels - 1} times)"
                              f"{' and 4x smaller latents' if c.latent_channels else ''} need "
                              f"image_size to be a multiple of {multiple}, not {s}")
        if c.beta_schedule == "cosine" and c.prediction_type == "epsilon":
            # alpha_bar(T) ~ 1e-9: x0 = (x - sqrt(1 - a) eps) / sqrt(a) blows up by ~3e4 there
            raise StudioError("cosine betas leave no signal at the last timestep, where an "
                              "epsilon model's image estimate blows up; use "
                              "prediction_type=v_prediction (or sample), or linear betas")
        if c.conditioning == "text":
            grammar.parse_pairs(c.held_out)            # a malformed list is refused before training

    @classmethod
    def phases(cls, config) -> list[Phase]:
        """A latent model trains its autoencoder alone for autoencoder_steps, then (frozen)
        the UNet on its latents; a pixel model is one phase."""
        if not config.latent_channels:
            return super().phases(config)
        return [Phase("autoencoder", config.autoencoder_steps, step="autoencoder_step"),
                Phase("diffusion")]

    def build(self) -> dict[str, nn.Module]:
        from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel
        self.check_config()
        c, info = self.config, self.info
        p = c.patch_size
        ch, s = info["channels"] * p * p, info["image_size"] // p       # what the UNet sees
        if c.latent_channels:
            ch, s = c.latent_channels, info["image_size"] // DOWNSCALE
        widths = tuple(c.width * 2 ** i for i in range(c.levels))            # e.g. (16, 32, 64)
        common = dict(sample_size=s, in_channels=ch, out_channels=ch, block_out_channels=widths,
                      layers_per_block=c.layers_per_block, norm_num_groups=math.gcd(c.width, 8))
        # Attention only where the feature maps are small: at 16x16 it costs as much as the
        # rest of the UNet on a CPU. attends[i]: level i (size s / 2^i) has attention.
        attends = [s // 2 ** i <= c.attention_size or i == c.levels - 1 for i in range(c.levels)]
        attn = "CrossAttn" if c.conditioning == "text" else "Attn"
        common.update(
            down_block_types=tuple(f"{attn}DownBlock2D" if a else "DownBlock2D" for a in attends),
            up_block_types=tuple(f"{attn}UpBlock2D" if a else "UpBlock2D"
                                 for a in reversed(attends)))
        if c.conditioning == "text":
            from transformers import CLIPTextConfig, CLIPTextModel
            pooled = {"addition_embed_type": "text",
                      "addition_embed_type_num_heads": math.gcd(c.text_width, 4)}
            unet = UNet2DConditionModel(
                cross_attention_dim=c.text_width, attention_head_dim=math.gcd(c.width, 4),
                **(pooled if c.pooled_text else {}), **common)  # attention_head_dim = heads
            text_encoder = CLIPTextModel(CLIPTextConfig(
                vocab_size=info["vocab_size"], hidden_size=c.text_width,
                intermediate_size=4 * c.text_width, num_hidden_layers=c.text_layers,
                num_attention_heads=math.gcd(c.text_width, 4), projection_dim=c.text_width,
                max_position_embeddings=info["max_length"], hidden_act="gelu",
                pad_token_id=0, bos_token_id=2, eos_token_id=3))
            modules = {"unet": unet, "text_encoder": text_encoder}
            self.ema_modules = ("unet", "text_encoder")  # the autoencoder samples as trained
        else:
            unet = UNet2DModel(
                attention_head_dim=min(8, widths[-1]),
                # one extra embedding: the "null" class that guidance contrasts with
                num_class_embeds=self.num_classes + 1 if self.num_classes else None, **common)
            modules = {"unet": unet}
        settings = dict(num_train_timesteps=c.num_train_timesteps,
                        prediction_type=c.prediction_type, clip_sample=False,
                        beta_schedule="squaredcos_cap_v2" if c.beta_schedule == "cosine"
                        else "linear", timestep_spacing="trailing")
        self.noise_scheduler = DDPMScheduler(**settings)
        if c.snr_shift != 1:
            betas = shifted_betas(self.noise_scheduler.alphas_cumprod, c.snr_shift)
            # trained_betas travel in the scheduler's config, so every sampler made from it
            # (and the exported scheduler/) uses the shifted schedule.
            self.noise_scheduler = DDPMScheduler(**settings, trained_betas=betas.tolist())
        if "tokenizer" in info:
            self.tokenizer = T.load_tokenizer(info["tokenizer"])
        if c.latent_channels:
            modules["vae"] = LatentAutoencoder(info["channels"], c.latent_channels,
                                               c.autoencoder_width, info["image_size"])
        self.preview_images = None       # validation images the autoencoder phase's grids show
        return modules

    @property
    def autoencoder(self) -> LatentAutoencoder | None:
        """The latent model's autoencoder (unwrapped from any multi-process wrapper), or None
        for a pixel model."""
        module = self.modules.get("vae")
        return getattr(module, "module", module)

    @property
    def diffusion_modules(self) -> tuple[str, ...]:
        """What the diffusion optimiser trains: every module but the autoencoder."""
        return tuple(name for name in self.modules if name != "vae")

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> what the UNet diffuses: themselves, or latents."""
        return images if self.autoencoder is None else self.autoencoder.encode(images)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of to_model_space: (N, C', h, w) -> images (N, C, H, W) in [-1, 1]."""
        return x if self.autoencoder is None else self.autoencoder.decode(x)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = [p for name in self.diffusion_modules for p in self.modules[name].parameters()]
        optimizers = {"opt": adamw(params, lr=c.lr, weight_decay=c.weight_decay)}
        if "vae" in self.modules:
            optimizers["autoencoder"] = adamw(self.modules["vae"].parameters(),
                                              lr=c.autoencoder_lr)
        return optimizers

    def train_tensors(self, data: ImageData) -> dict[str, torch.Tensor]:
        self.preview_images = torch.from_numpy(data.val_images[:64])
        out = {"images": torch.from_numpy(data.train_images),
               "labels": torch.from_numpy(data.train_labels)}
        if self.config.conditioning == "text":
            # Images of the held-out (colour, shape) pairs are never trained on (shapes only).
            held = set(self.held_out_pairs())
            keep = np.array([grammar.caption_attributes(c) not in held for c in data.train_captions])
            captions = [c for c, k in zip(data.train_captions, keep) if k]
            out = {k: v[torch.from_numpy(keep)] for k, v in out.items()}
            out["tokens"] = torch.from_numpy(T.encode(self.tokenizer, captions, strict=False))
        return out

    @property
    def shapes_captions(self) -> bool:
        """Whether the captions follow the shapes grammar (models trained before the grammar
        was recorded were all trained on shapes)."""
        return self.info.get("caption_grammar", "shapes") == "shapes"

    def held_out_pairs(self) -> list[tuple[int, int]]:
        """The (colour, shape) pairs kept out of training: only where the captions follow the
        shapes grammar (other captions have no such attributes to hold out)."""
        if not self.shapes_captions:
            return []
        return grammar.parse_pairs(self.config.held_out)

    def seeded_prompt(self, seed: int) -> str:
        """The prompt drawn for `seed` when none is given: one in the shapes grammar, or one of
        the data's own validation captions (kept with the model)."""
        prompts = self.info.get("sample_prompts")
        return prompts[seed % len(prompts)] if prompts else grammar.seeded_prompt(seed)

    # --- conditions --------------------------------------------------------------------------
    def null_condition(self, n: int, device) -> torch.Tensor | None:
        """The condition that classifier-free guidance contrasts with: the extra "null" class,
        or the empty caption's token ids."""
        if self.num_classes:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        if self.config.conditioning == "text":
            return torch.from_numpy(T.encode(self.tokenizer, [""] * n)).to(device)
        return None

    def encode_condition(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        """Class labels pass through; token ids (N, L) -> text states (N, L, text_width)."""
        if cond is None or self.config.conditioning != "text":
            return cond
        return self.modules["text_encoder"](input_ids=cond).last_hidden_state

    def predict(self, x: torch.Tensor, t, states: torch.Tensor | None) -> torch.Tensor:
        """The UNet's raw output for x_t (N, C, H, W) at timestep(s) t, given encoded states.
        With patch_size p the UNet reads and writes (N, C p^2, H / p, W / p)."""
        unet, p = self.modules["unet"], self.config.patch_size
        if p > 1:
            x = F.pixel_unshuffle(x, p)
        if self.config.conditioning == "text":
            out = unet(x, t, encoder_hidden_states=states).sample
        else:
            out = unet(x, t, class_labels=states).sample
        return F.pixel_shuffle(out, p) if p > 1 else out

    # --- training ----------------------------------------------------------------------------
    def schedules(self) -> dict[str, Schedule]:
        """The UNet: linear warm-up over lr_warmup_steps, then constant, from the first step of
        its phase (after the autoencoder's, in a latent model). The autoencoder: warm-up, then
        a cosine down to 1/10 by the end of its phase (the phase is short, and the decay is
        what sharpens the last details)."""
        c = self.config
        schedules = {"opt": Schedule(warmup_steps=c.lr_warmup_steps,
                                     start=c.autoencoder_steps if self.autoencoder is not None
                                     else 0)}
        if self.autoencoder is not None:
            schedules["autoencoder"] = Schedule(warmup_steps=c.lr_warmup_steps, decay="cosine",
                                                decay_steps=c.autoencoder_steps, floor=0.1)
        return schedules

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        c, sched = self.config, self.noise_scheduler
        x0 = batch["images"] * 2 - 1                              # (B, C, H, W) in [-1, 1]
        if self.autoencoder is not None:
            # The second phase (phases()): the autoencoder is frozen, and its latents
            # (B, L, H / 4, W / 4) are what the UNet diffuses.
            with torch.no_grad():
                if not self.autoencoder.ready:
                    self.autoencoder.measure_scale(x0, ctx.accelerator)
                x0 = self.autoencoder.encode(x0)
        b, device = x0.shape[0], x0.device
        noise = torch.randn_like(x0)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), device=device)
        xt = sched.add_noise(x0, noise, t)
        cond = batch["labels"] if self.num_classes else batch.get("tokens")
        if cond is not None and c.conditioning != "none":     # CFG: drop the condition
            drop = torch.rand(b, device=device) < c.cond_dropout
            null = self.null_condition(b, device)
            cond = torch.where(drop.view(-1, *[1] * (cond.dim() - 1)), null, cond)
        else:
            cond = None
        pred = self.predict(xt, t, self.encode_condition(cond)).float()
        target = {"epsilon": noise, "sample": x0,
                  "v_prediction": sched.get_velocity(x0, noise, t)}[c.prediction_type]
        per_image = F.mse_loss(pred, target.float(), reduction="none").mean((1, 2, 3))  # (B,)
        if c.min_snr_gamma > 0:
            # Min-SNR-gamma: the x0-loss weight min(SNR, gamma), divided by what this target's
            # loss already carries (SNR for epsilon, SNR + 1 for v, 1 for the sample itself).
            from diffusers.training_utils import compute_snr
            snr = compute_snr(sched, t).float()
            capped = snr.clamp(max=c.min_snr_gamma)
            weight = {"epsilon": capped / snr, "v_prediction": capped / (snr + 1),
                      "sample": capped}[c.prediction_type]
            loss = (per_image * weight).mean()
        else:
            loss = per_image.mean()
        grad_norm = ctx.backward_step(loss, "opt", self.diffusion_modules)
        return {"loss": loss.detach(), "grad_norm": grad_norm}

    def autoencoder_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One step of the latent model's first phase: the autoencoder alone, on the first
        autoencoder_batch images of the batch."""
        c = self.config
        x0 = batch["images"][:c.autoencoder_batch] * 2 - 1        # (b, C, H, W) in [-1, 1]
        loss, logs = autoencoder_loss(self.modules["vae"], x0, c.kl_weight, c.foreground_weight)
        logs["autoencoder_grad_norm"] = ctx.backward_step(loss, "autoencoder", "vae")
        return logs

    @torch.no_grad()
    def validate(self, data: ImageData) -> dict[str, float]:
        """Plain MSE on 128 validation images at fixed timesteps and noise (its own generator,
        so training's random stream is untouched): comparable across steps and runs. Text
        models also report the loss with each image given its neighbour's caption: when the
        two curves meet, the model has stopped reading the prompt (docs/diffusion.md)."""
        sched, device, out = self.noise_scheduler, self.device, {}
        x0 = torch.from_numpy(data.val_images[:128]).to(device) * 2 - 1
        if self.autoencoder is not None:
            rebuilt = self.autoencoder.reconstruct(x0).float()
            out["autoencoder_mse"] = F.mse_loss(rebuilt, x0).item()
            if not self.autoencoder.ready:
                return out                       # no diffusion model to validate yet
            x0 = self.autoencoder.encode(x0)
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(x0.shape, generator=g).to(device)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(x0),), generator=g).to(device)
        cond = None
        if self.num_classes:
            cond = torch.from_numpy(data.val_labels[:128]).to(device)
        elif self.config.conditioning == "text":
            ids = T.encode(self.tokenizer, data.val_captions[:128], strict=False)
            cond = torch.from_numpy(ids).to(device)
        xt = sched.add_noise(x0, noise, t)
        target = {"epsilon": noise, "sample": x0, "v_prediction":
                  sched.get_velocity(x0, noise, t)}[self.config.prediction_type]
        out["loss"] = F.mse_loss(self.predict(xt, t, self.encode_condition(cond)).float(),
                                 target).item()
        if self.config.conditioning == "text":
            wrong = self.encode_condition(cond.roll(1, dims=0))
            out["loss_wrong_caption"] = F.mse_loss(self.predict(xt, t, wrong).float(),
                                                   target).item()
        return out
