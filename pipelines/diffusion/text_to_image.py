"""Text-to-image latent diffusion, `ddpm-text`: the recipe of Stable Diffusion (Rombach et al.
2022) at a size that trains on a laptop. An AutoencoderKL (autoencoder.py) trains first, alone,
then is frozen; a CLIP text encoder trained jointly with a UNet2DConditionModel then diffuses
its latents, reading the caption through cross-attention and, pooled, through the timestep
embedding. Captions come from the data layer: the shapes set, or any folder: with a caption
per image (pipelines/data/folder.py).

Read top to bottom: the data facts (a tokenizer over the captions), checks and networks,
the two phases (the autoencoder's step, then common.py's denoising loss), validation, what
the shared sampling loop asks of a model (sampling.py, tools.py), evaluation and the export as
a StableDiffusionPipeline. latent_channels=0 diffuses the pixels, with no autoencoder phase.
Options: TextToImageConfig (config.py); spec.py declares the pipeline.

Images are (N, C, H, W); the UNet works in [-1, 1], everything outside in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, data_info
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.phases import Phase
from ..core.schedules import Schedule
from ..data import ImageData
from ..data import shapes as grammar
from . import common, sampling, tools
from . import export as ex
from . import spec as S
from . import text as T
from .autoencoder import DOWNSCALE, LatentAutoencoder, autoencoder_loss, latent_mask


class TextDDPM(Pipeline):
    """Text-to-image at small scale. On the captioned shapes (32 px): 2,500 steps of an
    AutoencoderKL (32 px -> 8 x 8 x 4), then 4,500 of a two-level UNet on its latents, about
    28 minutes on 2 CPU cores. Why latents, v-prediction on cosine betas, no min-SNR weighting
    and gradient clipping at 1: each was measured (docs/diffusion.md, "ddpm-text on shapes")."""
    spec = S.TEXT_DDPM
    ema_modules = ("unet", "text_encoder")   # the autoencoder samples as trained
    best_metric = ("loss", "min")            # validation MSE at fixed timesteps and noise
    num_classes = 0                          # conditioned on captions, not classes

    # --- data facts, checks and the networks -------------------------------------------------
    @classmethod
    def describe_data(cls, data, config) -> dict:
        """Adds a WordLevel tokenizer over every caption (as JSON text) and its padded length;
        for captions outside the shapes grammar, 64 validation captions that sampling draws
        from by seed when no prompt is given."""
        info = data_info(data)
        if not isinstance(data, ImageData) or data.train_captions is None:
            raise StudioError(f"conditioning=text needs captioned images; {data.name} has "
                              f"no captions. {T.CAPTIONED_DATA}")
        tokenizer, length = T.build_tokenizer(data.train_captions + data.val_captions)
        info.update(tokenizer=tokenizer, max_length=length,
                    vocab_size=T.load_tokenizer(tokenizer).get_vocab_size(),
                    caption_grammar=data.caption_grammar)
        if data.caption_grammar is None:
            info["sample_prompts"] = list(data.val_captions[:T.SAMPLE_PROMPTS])
        return info

    def check_config(self) -> None:
        c = self.config
        if "tokenizer" not in self.info:
            raise StudioError(f"conditioning=text needs captioned images. {T.CAPTIONED_DATA}")
        common.check_size(self.info["image_size"],
                          2 ** (c.levels - 1) * (DOWNSCALE if c.latent_channels else 1),
                          f"a {c.levels}-level UNet (it halves the image {c.levels - 1} times)"
                          f"{' and 4x smaller latents' if c.latent_channels else ''}")
        common.check_schedule(c)
        grammar.parse_pairs(c.held_out)                # a malformed list is refused now

    @classmethod
    def phases(cls, config) -> list[Phase]:
        """The autoencoder alone for autoencoder_steps, then (frozen) the UNet and the text
        encoder on its latents; a pixel model is one phase."""
        if not config.latent_channels:
            return super().phases(config)
        # ema=False: the UNet's and text encoder's averages begin with the diffusion phase
        # instead of counting autoencoder steps in which they stood still (core/phases.py)
        return [Phase("autoencoder", config.autoencoder_steps, step="autoencoder_step",
                      ema=False),
                Phase("diffusion")]

    def build(self) -> dict[str, nn.Module]:
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel
        self.check_config()
        c, info = self.config, self.info
        channels, size = info["channels"], info["image_size"]         # what the UNet sees
        if c.latent_channels:
            channels, size = c.latent_channels, size // DOWNSCALE
        pooled = {"addition_embed_type": "text",       # the pooled prompt, added to the
                  "addition_embed_type_num_heads": math.gcd(c.text_width, 4)}   # time embedding
        unet = UNet2DConditionModel(
            in_channels=channels, out_channels=channels, cross_attention_dim=c.text_width,
            attention_head_dim=math.gcd(c.width, 4),                   # (= heads)
            **(pooled if c.pooled_text else {}),
            **common.unet_layout(c, size, cross_attention=True))
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=info["vocab_size"], hidden_size=c.text_width,
            intermediate_size=4 * c.text_width, num_hidden_layers=c.text_layers,
            num_attention_heads=math.gcd(c.text_width, 4), projection_dim=c.text_width,
            max_position_embeddings=info["max_length"], hidden_act="gelu",
            pad_token_id=0, bos_token_id=2, eos_token_id=3))
        self.noise_scheduler = common.noise_scheduler(c)
        self.tokenizer = T.load_tokenizer(info["tokenizer"])
        modules = {"unet": unet, "text_encoder": text_encoder}
        if c.latent_channels:
            modules["vae"] = LatentAutoencoder(info["channels"], c.latent_channels,
                                               c.autoencoder_width, info["image_size"])
        self.preview_images = None       # validation images the autoencoder phase's grids show
        return modules

    @property
    def autoencoder(self) -> LatentAutoencoder | None:
        """The autoencoder (unwrapped from any multi-process wrapper), or None for pixels."""
        module = self.modules.get("vae")
        return getattr(module, "module", module)

    def require_diffusion_model(self) -> None:
        if self.autoencoder is not None and not self.autoencoder.ready:
            raise StudioError("this run stopped while its autoencoder was still training (the "
                              f"first {self.config.autoencoder_steps} steps), so it has no "
                              "diffusion model yet: resume it to train one")

    # --- captions ----------------------------------------------------------------------------
    @property
    def shapes_captions(self) -> bool:
        """Whether the captions follow the shapes grammar (models trained before the grammar
        was recorded were all trained on shapes)."""
        return self.info.get("caption_grammar", "shapes") == "shapes"

    def held_out_pairs(self) -> list[tuple[int, int]]:
        """The (colour, shape) pairs kept out of training: only where the captions follow the
        shapes grammar (other captions have no such attributes to hold out)."""
        return grammar.parse_pairs(self.config.held_out) if self.shapes_captions else []

    def seeded_prompt(self, seed: int) -> str:
        """The prompt drawn for `seed` when none is given: one in the shapes grammar, or one of
        the data's own validation captions (kept with the model)."""
        prompts = self.info.get("sample_prompts")
        return prompts[seed % len(prompts)] if prompts else grammar.seeded_prompt(seed)

    def token_ids(self, prompts: list[str], strict: bool = True) -> torch.Tensor:
        """Prompts -> (N, L) token ids on the model's device."""
        return torch.from_numpy(T.encode(self.tokenizer, prompts, strict=strict)).to(self.device)

    def null_condition(self, n: int, device=None) -> torch.Tensor:
        """What classifier-free guidance contrasts with: the empty caption's token ids."""
        ids = self.token_ids([""] * n)
        return ids if device is None else ids.to(device)

    def encode_condition(self, ids: torch.Tensor | None) -> torch.Tensor | None:
        """Token ids (N, L) -> text states (N, L, text_width)."""
        if ids is None:
            return None
        return self.modules["text_encoder"](input_ids=ids).last_hidden_state

    def predict(self, x: torch.Tensor, t, states: torch.Tensor) -> torch.Tensor:
        """The UNet's raw output for x_t (N, C, H, W) at timestep(s) t, given text states."""
        return self.modules["unet"](x, t, encoder_hidden_states=states).sample

    # --- training ----------------------------------------------------------------------------
    def train_tensors(self, data: ImageData) -> dict[str, torch.Tensor]:
        """Images and caption token ids; the images of the held-out (colour, shape) pairs are
        never trained on (shapes captions only)."""
        self.preview_images = torch.from_numpy(data.val_images[:64])
        held = set(self.held_out_pairs())
        keep = np.array([grammar.caption_attributes(c) not in held for c in data.train_captions])
        captions = [c for c, k in zip(data.train_captions, keep) if k]
        out = {"images": torch.from_numpy(data.train_images[keep]),
               "labels": torch.from_numpy(data.train_labels[keep])}
        out["tokens"] = torch.from_numpy(T.encode(self.tokenizer, captions, strict=False))
        return out

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = [p for name in ("unet", "text_encoder") for p in self.modules[name].parameters()]
        optimizers = {"opt": adamw(params, lr=c.lr, weight_decay=c.weight_decay)}
        if self.autoencoder is not None:
            optimizers["autoencoder"] = adamw(self.modules["vae"].parameters(),
                                              lr=c.autoencoder_lr)
        return optimizers

    def schedules(self) -> dict[str, Schedule]:
        """The UNet and text encoder: linear warm-up over lr_warmup_steps, then constant,
        from the first step of their phase. The autoencoder: warm-up, then a cosine down to
        1/10 by the end of its phase (the phase is short; the decay sharpens the details)."""
        c = self.config
        if self.autoencoder is None:
            return {"opt": Schedule(warmup_steps=c.lr_warmup_steps)}
        return {"opt": Schedule(warmup_steps=c.lr_warmup_steps, start=c.autoencoder_steps),
                "autoencoder": Schedule(warmup_steps=c.lr_warmup_steps, decay="cosine",
                                        decay_steps=c.autoencoder_steps, floor=0.1,
                                        end=c.autoencoder_steps)}

    def autoencoder_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """The first phase: the autoencoder alone, on the first autoencoder_batch images."""
        c = self.config
        x0 = batch["images"][:c.autoencoder_batch] * 2 - 1        # (b, C, H, W) in [-1, 1]
        loss, logs = autoencoder_loss(self.modules["vae"], x0, c.kl_weight, c.foreground_weight)
        logs["autoencoder_grad_norm"] = ctx.backward_step(loss, "autoencoder", "vae")
        return logs

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """The diffusion phase: the frozen autoencoder's latents (B, L, H / 4, W / 4), or the
        pixels, denoised given the caption."""
        x0 = batch["images"] * 2 - 1                              # (B, C, H, W) in [-1, 1]
        if self.autoencoder is not None:
            with torch.no_grad():
                if not self.autoencoder.ready:
                    self.autoencoder.measure_scale(x0, ctx.accelerator)
                x0 = self.autoencoder.encode(x0)
        loss = common.denoising_loss(self, x0, batch["tokens"], self.config)
        grad_norm = ctx.backward_step(loss, "opt", ("unet", "text_encoder"))
        return {"loss": loss.detach(), "grad_norm": grad_norm}

    @torch.no_grad()
    def validate(self, data: ImageData) -> dict[str, float]:
        """The autoencoder's reconstruction MSE; the MSE at fixed timesteps and noise on 128
        validation images, and the same with each image given its neighbour's caption: when
        the two curves meet, the model has stopped reading the prompt (docs/diffusion.md)."""
        out = {}
        x0 = torch.from_numpy(data.val_images[:128]).to(self.device) * 2 - 1
        if self.autoencoder is not None:
            out["autoencoder_mse"] = F.mse_loss(self.autoencoder.reconstruct(x0).float(),
                                                x0).item()
            if not self.autoencoder.ready:
                return out                       # no diffusion model to validate yet
            x0 = self.autoencoder.encode(x0)
        ids = self.token_ids(data.val_captions[:128], strict=False)
        for key, captions in (("loss", ids), ("loss_wrong_caption", ids.roll(1, dims=0))):
            states = self.encode_condition(captions)
            out[key] = common.fixed_noise_loss(self.noise_scheduler, x0,
                                               self.config.prediction_type,
                                               lambda xt, t: self.predict(xt, t, states))
        return out

    # --- what the shared sampling loop asks (sampling.Denoiser) -----------------------------
    @property
    def noise_shape(self) -> tuple[int, int, int]:
        self.require_diffusion_model()                 # every way of sampling starts here
        side, c = self.info["image_size"], self.config
        if c.latent_channels:
            return (c.latent_channels, side // DOWNSCALE, side // DOWNSCALE)
        return (self.info["channels"], side, side)

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> what the UNet diffuses: latents, or themselves."""
        return images if self.autoencoder is None else self.autoencoder.encode(images)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of to_model_space: (N, C', h, w) -> images (N, C, H, W) in [-1, 1]."""
        return x if self.autoencoder is None else self.autoencoder.decode(x)

    def model_mask(self, mask: torch.Tensor, size: int) -> torch.Tensor:
        return mask if self.autoencoder is None else latent_mask(mask, size)

    def conditions(self, n: int, labels=None, prompt: str = "", negative_prompt: str = "",
                   seeds: list[int] | None = None):
        """(token ids, the negative prompt's ids, the prompted shape per image, prompts)."""
        if labels is not None:
            raise StudioError("this model is conditioned on text: give a prompt, not a class")
        prompts = [prompt] * n if prompt else [self.seeded_prompt(s) for s in seeds]
        shapes = np.array([grammar.caption_attributes(p)[1] for p in prompts])
        return self.token_ids(prompts), self.token_ids([negative_prompt] * n), shapes, prompts

    def sample(self, n: int, seed: int, labels=None, prompt: str = "",
               negative_prompt: str = "", **controls) -> Samples:
        """n images for the prompt (or seeded prompts); while the autoencoder still trains,
        what the grids show instead: validation images and their reconstructions."""
        if self.autoencoder is not None and not self.autoencoder.ready:
            return self.reconstructions(n)
        return sampling.sample(self, n, seed, labels, prompt, negative_prompt, **controls)

    def reconstructions(self, n: int) -> Samples:
        """Validation images, each followed by its reconstruction (labels 0 and 1 cycle, so
        the grid's columns alternate the two)."""
        if self.preview_images is None:
            self.require_diffusion_model()
        x = self.preview_images[: max(1, n // 2)].to(self.device) * 2 - 1
        pairs = torch.stack([x, self.autoencoder.reconstruct(x)], 1).flatten(0, 1)
        return Samples(images=sampling.to_unit(pairs), labels=np.arange(len(pairs)) % 2)

    # Interpolation and tools: the shared loop over the methods above.
    interpolate, noise_for, cfg = sampling.interpolate, sampling.noise_for, sampling.cfg
    tool_img2img, tool_inpaint = tools.img2img, tools.inpaint
    tool_denoise_steps = tools.denoise_steps

    # --- evaluation and export (module functions, below the class) ---------------------------
    def evaluate(self, data, cache_dir, n: int = 500, **controls) -> dict[str, float]:
        return evaluate_prompts(self, data, cache_dir, n, controls)

    def export_ecosystem(self, dest: Path) -> str:
        return export_folder(self, dest)


# --- evaluation -------------------------------------------------------------------------------
def evaluate_prompts(model: TextDDPM, data, cache_dir, n: int, controls: dict) -> dict:
    """Shapes captions: shape (the judge) and colour and position (pixels) accuracy of
    validation prompts, the judge's distances, and the accuracies again on prompts of the
    held-out (colour, shape) pairs. Other captions: the judge's numbers for n images drawn
    from the validation captions in turn (their images' classes as labels)."""
    from ..metrics import judge_samples
    if model.autoencoder is not None and not model.autoencoder.ready:
        return {}                  # a run that ended in its autoencoder phase draws nothing
    controls = sampling.evaluation_controls(controls, model.spec.SampleControls)
    if not model.shapes_captions:
        turn = np.arange(n) % len(data.val_captions)
        prompts = [data.val_captions[i] for i in turn]
        images = sampling.draw(model, list(range(len(prompts))),
                               model.token_ids(prompts, strict=False),
                               model.null_condition(len(prompts)), **controls)
        return judge_samples(data, images, data.val_labels[turn], cache_dir=cache_dir)
    held = model.held_out_pairs()
    prompts = [c for c in data.val_captions if grammar.caption_attributes(c) not in held][:n]
    results = judge_prompts(model, prompts, data, cache_dir, controls, full=True)
    if held:
        per_pair = max(5, n // (4 * len(held)))
        unseen = [grammar.seeded_prompt(s, colour, shape) for colour, shape in held
                  for s in range(per_pair)]
        results.update({f"held_out_{k}": v for k, v in
                        judge_prompts(model, unseen, data, cache_dir, controls).items()})
    return results

def judge_prompts(model: TextDDPM, prompts, data, cache_dir, controls, full=False) -> dict:
    """Images drawn for the prompts (shapes grammar), judged: colour and position from the
    pixels, the shape by the judge; `full` adds the judge's distances."""
    from ..metrics import get_judge, judge_samples
    images = sampling.draw(model, list(range(len(prompts))), model.token_ids(prompts),
                           model.null_condition(len(prompts)), **controls)
    shapes = np.array([grammar.caption_attributes(p)[1] for p in prompts])
    out = grammar.prompt_accuracies(images, prompts)
    if full:
        out.update(judge_samples(data, images, shapes, cache_dir=cache_dir))
        out["shape_accuracy"] = out.pop("conditional_accuracy")
    else:
        predicted = get_judge(data, cache_dir).predict(images)
        out.update(shape_accuracy=float(np.mean(predicted == shapes)), n=len(prompts))
    return out

# --- export -----------------------------------------------------------------------------------
def export_folder(model: TextDDPM, dest: Path) -> str:
    """export/diffusers/: a StableDiffusionPipeline folder (vae/, text_encoder/,
    tokenizer/, unet/, scheduler/); a pixel model's components without vae/. Each part
    loads with its own from_pretrained."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    unet, text_encoder = ex.cpu_copy(model.modules["unet"]), ex.cpu_copy(
        model.modules["text_encoder"])
    tokenizer = T.transformers_tokenizer(model.info["tokenizer"], model.info["max_length"])
    scheduler = DDPMScheduler.from_config(model.noise_scheduler.config)
    if model.autoencoder is not None:
        ex.write_folder(dest, StableDiffusionPipeline(
            vae=model.autoencoder.export(), text_encoder=text_encoder, tokenizer=tokenizer,
            # steps_offset only moves "leading" timesteps (ours trail); 1 is what the
            # pipeline checks for, and warns about otherwise
            unet=unet, scheduler=DDPMScheduler.from_config(scheduler.config, steps_offset=1),
            safety_checker=None, feature_extractor=None,
            requires_safety_checker=False).save_pretrained)
        return ex.model_card("a `StableDiffusionPipeline` folder (vae/, text_encoder/, "
                             "tokenizer/, unet/, scheduler/; no safety checker), each part "
                             "loadable with its own `from_pretrained`",
                             ex.STABLE_DIFFUSION_SNIPPET, model.config)

    def write(folder: Path) -> None:
        for name, part in (("unet", unet), ("scheduler", scheduler),
                           ("text_encoder", text_encoder), ("tokenizer", tokenizer)):
            part.save_pretrained(folder / name)
    ex.write_folder(dest, write)
    side = model.info["image_size"]
    snippet = ex.components_snippet(ex.text_components_loader(model.info["max_length"]),
                                    f"1, {model.info['channels']}, {side}, {side}", "x")
    return ex.model_card("the components, each loadable with its own `from_pretrained`",
                         snippet, model.config)
