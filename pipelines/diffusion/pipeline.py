"""The diffusion pipeline: diffusers' UNets and schedulers, one training step, one sampling loop.

Read top to bottom: the networks (an unconditional or class-conditional UNet2DModel, or a
UNet2DConditionModel reading a small CLIPTextModel through cross-attention), the DDPM training
step (epsilon / v / sample targets, min-SNR weights, condition dropout for classifier-free
guidance), then sampling: any diffusers scheduler driven by our own loop, so that class labels,
text states, guidance, SDEdit starts and RePaint-style inpainting all fit one loop.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base import Pipeline, Samples, data_info
from ..data import ImageData
from ..errors import StudioError
from ..latent import requested_labels, slerp
from ..optim import adamw
from . import text as T
from .config import STOCHASTIC, DiffusionConfig, DiffusionSampleControls
from .tools import TOOLS, DiffusionTools


def make_scheduler(name: str, base_config) -> object:
    """A fresh diffusers scheduler of kind `name` built from the training scheduler's config.
    The training config has clip_sample=False: a DDIM made from a DDPM config with clip_sample
    inherits it, clips the predicted clean image but not the noise estimate, and with guidance
    above 1 a class-conditional model falls to chance (DESIGN.md). "trailing" spacing makes the
    first step start from pure noise (t = T - 1) at any step count."""
    from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                           EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                           HeunDiscreteScheduler, UniPCMultistepScheduler)
    kinds = {"ddpm": (DDPMScheduler, {}), "ddim": (DDIMScheduler, {}),
             "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++",
                                                     "solver_order": 2}),
             "euler": (EulerDiscreteScheduler, {}),
             "euler-ancestral": (EulerAncestralDiscreteScheduler, {}),
             "heun": (HeunDiscreteScheduler, {}), "unipc": (UniPCMultistepScheduler, {})}
    cls, extra = kinds[name]
    return cls.from_config(base_config, clip_sample=False, timestep_spacing="trailing", **extra)


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


class Diffusion(DiffusionTools, Pipeline):
    """DDPM training with every common sampler; variants.py names the three forms."""
    Config = DiffusionConfig
    SampleControls = DiffusionSampleControls
    # Sized for 2 CPU cores: a width-16 UNet on 16 px digits takes ~0.2 s per step of 32.
    train_defaults = {"steps": 2000, "batch_size": 32, "sample_every": 500,
                      "checkpoint_every": 500, "log_every": 50, "sample_count": 40}
    ema_modules = ("unet",)
    tools = TOOLS

    # --- data and networks -------------------------------------------------------------------
    @classmethod
    def describe_data(cls, data, config) -> dict:
        info = data_info(data)
        if config.conditioning == "text":
            if not isinstance(data, ImageData) or data.train_captions is None:
                raise StudioError(f"conditioning=text needs captioned images (the shapes data "
                                  f"set); {data.name} has no captions")
            tokenizer, length = T.build_tokenizer(data.train_captions + data.val_captions)
            info.update(tokenizer=tokenizer, max_length=length,
                        vocab_size=T.load_tokenizer(tokenizer).get_vocab_size())
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
            raise StudioError("conditioning=text needs captioned images (the shapes data set)")
        if c.patch_size > 1 and c.conditioning == "none":
            raise StudioError("patch_size 2 needs conditioning class or text: the unconditional "
                              "form exports a DDPMPipeline, which samples without patching; use "
                              "patch_size=1")
        multiple = c.patch_size * 2 ** (c.levels - 1)
        if s % multiple:
            raise StudioError(f"patches of {c.patch_size} and a {c.levels}-level UNet (it halves "
                              f"the image {c.levels - 1} times) need image_size to be a multiple "
                              f"of {multiple}, not {s}")
        if c.beta_schedule == "cosine" and c.prediction_type == "epsilon":
            # alpha_bar(T) ~ 1e-9: x0 = (x - sqrt(1 - a) eps) / sqrt(a) blows up by ~3e4 there
            raise StudioError("cosine betas leave no signal at the last timestep, where an "
                              "epsilon model's image estimate blows up; use "
                              "prediction_type=v_prediction (or sample), or linear betas")
        if c.conditioning == "text":
            T.parse_pairs(c.held_out)            # a malformed list is refused before training

    def build(self) -> dict[str, nn.Module]:
        from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel
        self.check_config()
        c, info = self.config, self.info
        p = c.patch_size
        ch, s = info["channels"] * p * p, info["image_size"] // p       # what the UNet sees
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
            self.ema_modules = ("unet", "text_encoder")
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
        return modules

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for m in self.modules.values() for p in m.parameters()]
        return {"opt": adamw(params, lr=self.config.lr, weight_decay=self.config.weight_decay)}

    def train_tensors(self, data: ImageData) -> dict[str, torch.Tensor]:
        out = {"images": torch.from_numpy(data.train_images),
               "labels": torch.from_numpy(data.train_labels)}
        if self.config.conditioning == "text":
            # Images of the held-out (colour, shape) pairs are never trained on.
            held = set(T.parse_pairs(self.config.held_out))
            keep = np.array([T.caption_attributes(c) not in held for c in data.train_captions])
            captions = [c for c, k in zip(data.train_captions, keep) if k]
            out = {k: v[torch.from_numpy(keep)] for k, v in out.items()}
            out["tokens"] = torch.from_numpy(T.encode(self.tokenizer, captions, strict=False))
        return out

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
    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        c, sched = self.config, self.noise_scheduler
        x0 = batch["images"] * 2 - 1                              # (B, C, H, W) in [-1, 1]
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
        # Linear warm-up from the step number alone, so resuming needs no scheduler state.
        for group in ctx.optimizers["opt"].param_groups:
            group["lr"] = c.lr * min(1.0, (ctx.step + 1) / max(1, c.lr_warmup_steps))
        grad_norm = ctx.backward_step(loss, "opt", tuple(self.modules))
        return {"loss": loss.detach(), "grad_norm": grad_norm}

    @torch.no_grad()
    def validate(self, data: ImageData) -> dict[str, float]:
        """Plain MSE on 128 validation images at fixed timesteps and noise (its own generator,
        so training's random stream is untouched): comparable across steps and runs. Text
        models also report the loss with each image given its neighbour's caption: when the
        two curves meet, the model has stopped reading the prompt (docs/diffusion.md)."""
        sched, device = self.noise_scheduler, self.device
        x0 = torch.from_numpy(data.val_images[:128]).to(device) * 2 - 1
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
        out = {"loss": F.mse_loss(self.predict(xt, t, self.encode_condition(cond)).float(),
                                  target).item()}
        if self.config.conditioning == "text":
            wrong = self.encode_condition(cond.roll(1, dims=0))
            out["loss_wrong_caption"] = F.mse_loss(self.predict(xt, t, wrong).float(),
                                                   target).item()
        return out

    # --- sampling ----------------------------------------------------------------------------
    def guided(self, x, t, states, null_states, scale: float) -> torch.Tensor:
        """Classifier-free guidance: u + scale * (c - u), both from one doubled batch. Scale 1
        is the conditional prediction itself, so its second pass is skipped."""
        if null_states is None or scale == 1:
            return self.predict(x, t, states)
        if scale == 0:
            return self.predict(x, t, null_states)
        return self.cfg(x, t, states, null_states, scale)

    def cfg(self, x, t, states, null_states, scale: float) -> torch.Tensor:
        both = self.predict(torch.cat([x, x]), t, torch.cat([null_states, states]))
        uncond, cond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    def conditions(self, n: int, labels=None, prompt: str = "", negative_prompt: str = "",
                   seeds: list[int] | None = None):
        """(cond, null, labels, prompts) for n images: cond and null as the UNet reads them
        (class ids or token ids), labels the class (or prompted shape) per image."""
        device = self.device
        if self.config.conditioning == "text":
            if labels is not None:
                raise StudioError("this model is conditioned on text: give a prompt, not a class")
            prompts = [prompt] * n if prompt else [T.seeded_prompt(s) for s in seeds]
            ids = torch.from_numpy(T.encode(self.tokenizer, prompts)).to(device)
            null = torch.from_numpy(T.encode(self.tokenizer, [negative_prompt] * n)).to(device)
            shapes = np.array([T.caption_attributes(p)[1] for p in prompts])
            return ids, null, shapes, prompts
        if prompt or negative_prompt:
            raise StudioError(f"{self.name} is not text-conditional; leave out the prompt")
        y = requested_labels(n, labels, self.num_classes, names=self.info.get("class_names", []))
        if y is None:
            return None, None, None, None
        return y.to(device), self.null_condition(n, device), y.numpy(), None

    def noise_for(self, seeds: list[int]) -> tuple[torch.Tensor, list[torch.Generator]]:
        """Image i's starting noise comes from its own generator seeded seeds[i], which then
        draws that image's later noise too: an image repeats alone, whatever the batch."""
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        shape = (self.info["channels"], self.info["image_size"], self.info["image_size"])
        return torch.stack([torch.randn(shape, generator=g) for g in gens]), gens

    @torch.no_grad()
    def denoise(self, noise: torch.Tensor, gens, cond, null, *, scheduler: str, steps: int,
                guidance: float, eta: float, strength: float = 1.0,
                init: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                every: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The sampling loop. noise (N, C, H, W); init (N, C, H, W) in [-1, 1] with strength < 1
        starts from init noised to that level (SDEdit); with mask (N, 1, H, W), 1 = repaint,
        the known region is replaced by init noised to the current level before every step
        (RePaint) and pasted exactly at the end. Returns the images in [-1, 1] and, every
        `every` steps, x_t."""
        device = self.device
        sched = make_scheduler(scheduler, self.noise_scheduler.config)
        sched.set_timesteps(steps, device=device)
        start = 0
        if init is not None and strength < 1:
            start = (steps - int(round(steps * strength))) * sched.order
            if start >= len(sched.timesteps):
                return init.clone(), []
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(start)
        timesteps = sched.timesteps[start:]
        noise, n = noise.to(device), len(noise)
        if init is not None and start > 0:
            x = sched.add_noise(init, noise, timesteps[:1].repeat(n))
        else:
            x = noise * sched.init_noise_sigma
        states = self.encode_condition(cond)
        null_states = self.encode_condition(null) if null is not None and guidance != 1 else None
        extra = {"generator": gens} if "generator" in inspect.signature(sched.step).parameters else {}
        if scheduler == "ddim":
            extra["eta"] = eta
        frames = []
        for i, t in enumerate(timesteps):
            if mask is not None:
                fresh = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
                known = sched.add_noise(init, fresh.to(device), t.reshape(1).repeat(n))
                x = mask * x + (1 - mask) * known
            out = self.guided(sched.scale_model_input(x, t), t, states, null_states, guidance)
            x = sched.step(out, t, x, **extra).prev_sample
            if every and ((i + 1) % every == 0 or i == len(timesteps) - 1):
                frames.append(x.clone())
        if mask is not None:
            x = mask * x + (1 - mask) * init
        return x, frames

    def run_controls(self, scheduler: str = "dpm++", steps: int = 25, guidance: float = 3.0,
                     eta: float = 0.0, **_) -> dict:
        return {"scheduler": scheduler, "steps": steps, "guidance": guidance, "eta": eta}

    def draw(self, seeds: list[int], cond, null, **controls) -> np.ndarray:
        """Images (N, C, H, W) in [0, 1] for the given seeds and conditions, 128 at a time."""
        images = []
        for i in range(0, len(seeds), 128):                      # bounded memory at any n
            noise, gens = self.noise_for(seeds[i:i + 128])
            part = (lambda v: None if v is None else v[i:i + 128])
            x, _ = self.denoise(noise, gens, part(cond), part(null), **self.run_controls(**controls))
            images.append(((x.float() + 1) / 2).clamp(0, 1).cpu().numpy())
        return np.concatenate(images)

    def sample(self, n: int, seed: int, labels=None, prompt: str = "",
               negative_prompt: str = "", **controls) -> Samples:
        seeds = [seed + i for i in range(n)]
        cond, null, shown, _ = self.conditions(n, labels, prompt, negative_prompt, seeds)
        return Samples(images=self.draw(seeds, cond, null, **controls), labels=shown)

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels=None, prompt: str = "",
                    negative_prompt: str = "", **controls) -> Samples:
        """Slerp between the two seeds' starting noise, then a deterministic sampler (a
        stochastic one is replaced by DDIM with eta 0), so the frames change smoothly."""
        run = self.run_controls(**controls)
        if run["scheduler"] in STOCHASTIC or (run["scheduler"] == "ddim" and run["eta"] > 0):
            run.update(scheduler="ddim", eta=0.0)
        if labels is None and self.num_classes:
            labels = 0                                            # one class throughout the walk
        noise, _ = self.noise_for([seed_a, seed_b])
        shape = noise.shape[1:]
        path = slerp(noise[0].flatten(), noise[1].flatten(), torch.linspace(0, 1, frames))
        if self.config.conditioning == "text" and not prompt:
            prompt = T.seeded_prompt(seed_a)
        cond, null, shown, _ = self.conditions(frames, labels, prompt, negative_prompt,
                                               [seed_a] * frames)
        x, _ = self.denoise(path.reshape(frames, *shape), None, cond, null, **run)
        return Samples(images=((x.float() + 1) / 2).clamp(0, 1).cpu().numpy(), labels=shown)
