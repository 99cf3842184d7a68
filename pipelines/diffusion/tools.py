"""What the diffusion pipeline offers besides training and sampling: the tools (img2img,
inpaint, denoise-steps previews), evaluation (the judge, plus colour and shape accuracy of
prompts, held-out combinations included) and the export as a diffusers folder.

A mixin over Diffusion's `conditions`, `noise_for`, `denoise` and `draw`.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import torch

from ..core.base import ToolResult
from ..core.config import to_dict
from ..core.errors import StudioError
from ..data import shapes as grammar
from . import text as T
from .config import DiffusionSampleControls


class DiffusionTools:
    """Tools, evaluation and export; mixed into Diffusion."""

    def _condition_for(self, n: int, label: int, prompt: str, negative_prompt: str, seed: int):
        labels = None if label < 0 or not self.num_classes else label
        return self.conditions(n, labels, prompt, negative_prompt, list(range(seed, seed + n)))

    # --- tools -------------------------------------------------------------------------------
    @torch.no_grad()
    def tool_img2img(self, ctx, strength: float, label: int, seed: int, prompt: str,
                     negative_prompt: str, **controls) -> ToolResult:
        init = torch.from_numpy(ctx.images).to(self.device) * 2 - 1      # (N, C, H, W)
        n = len(init)
        cond, null, _, _ = self._condition_for(n, label, prompt, negative_prompt, seed)
        noise, gens = self.noise_for(list(range(seed, seed + n)))
        x, _ = self.denoise(noise, gens, cond, null, strength=strength, init=init,
                            **self.run_controls(**controls))
        pairs = torch.stack([init, x], 1).reshape(-1, *init.shape[1:])   # input, result, ...
        return ToolResult(images=((pairs.float() + 1) / 2).clamp(0, 1).cpu().numpy(), columns=2,
                          text="columns: input | result")

    @torch.no_grad()
    def tool_inpaint(self, ctx, label: int, seed: int, count: int, prompt: str,
                     negative_prompt: str, **controls) -> ToolResult:
        if ctx.images is None or len(ctx.images) != 2:
            raise StudioError("inpaint needs two images: --input picture.png mask.png (white "
                              "in the mask = repaint)")
        picture = torch.from_numpy(ctx.images[:1]).to(self.device) * 2 - 1  # (1, C, H, W)
        mask = (torch.from_numpy(ctx.images[1:]).mean(1, keepdim=True) > 0.5).float()
        if not mask.any():
            raise StudioError("the mask has no white pixels: paint white where to repaint")
        mask = mask.to(self.device).expand(count, -1, -1, -1)          # (count, 1, H, W)
        init = picture.expand(count, -1, -1, -1)
        cond, null, _, _ = self._condition_for(count, label, prompt, negative_prompt, seed)
        noise, gens = self.noise_for(list(range(seed, seed + count)))
        x, _ = self.denoise(noise, gens, cond, null, init=init, mask=mask,
                            **self.run_controls(**controls))
        kept = ((x - init).abs() * (1 - mask)).amax().item() / 2       # in [0, 1] units
        shown = torch.cat([picture, mask[:1].expand_as(picture) * 2 - 1, x])
        return ToolResult(images=((shown.float() + 1) / 2).clamp(0, 1).cpu().numpy(),
                          columns=count + 2, values={"max_change_outside_mask": kept},
                          text="columns: picture | mask | fillings")

    @torch.no_grad()
    def tool_denoise_steps(self, ctx, every: int, label: int, seed: int, count: int,
                           prompt: str, negative_prompt: str, **controls) -> ToolResult:
        cond, null, _, _ = self._condition_for(count, label, prompt, negative_prompt, seed)
        noise, gens = self.noise_for(list(range(seed, seed + count)))
        _, frames = self.denoise(noise.to(self.device), gens, cond, null, every=every,
                                 **self.run_controls(**controls))
        # (a latent model's noise is shown decoded, like its x_t)
        strip = torch.stack([self.to_pixels(noise.to(self.device))] + frames, 1)  # (count, F, C, H, W)
        images = ((strip.flatten(0, 1).float() + 1) / 2).clamp(0, 1).cpu().numpy()
        return ToolResult(images=images, columns=strip.shape[1],
                          text=f"columns: noise, then x_t every {every} steps; the last is "
                               f"the image")

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data, cache_dir, n: int = 500, **controls) -> dict[str, float]:
        """Fréchet distance and friends against the real-vs-real floor; class models add
        conditional accuracy; text models add shape (judge) and colour (pixels) accuracy on
        validation captions, and the same on prompts of the held-out (colour, shape) pairs."""
        from ..metrics import judge_samples
        if self.autoencoder is not None and not self.autoencoder.ready:
            return {}                  # a run that ended in its autoencoder phase draws nothing
        controls = {**to_dict(DiffusionSampleControls()), **controls}
        controls.pop("prompt"), controls.pop("negative_prompt")
        if self.config.conditioning != "text":
            samples = self.sample(n, seed=0, **controls)
            return judge_samples(data, samples.images, samples.labels, cache_dir=cache_dir)
        if not self.shapes_captions:
            # Free captions: the judge's numbers for n images drawn from the validation
            # captions, in turn (their images' classes as labels); no attribute accuracies.
            turn = np.arange(n) % len(data.val_captions)
            prompts, labels = [data.val_captions[i] for i in turn], data.val_labels[turn]
            ids = torch.from_numpy(T.encode(self.tokenizer, prompts, strict=False)).to(
                self.device)
            images = self.draw(list(range(len(prompts))), ids,
                               self.null_condition(len(prompts), self.device), **controls)
            return judge_samples(data, images, labels, cache_dir=cache_dir)
        held = self.held_out_pairs()
        prompts = [c for c in data.val_captions if grammar.caption_attributes(c) not in held][:n]
        results = self._judge_prompts(prompts, data, cache_dir, controls, full=True)
        if held:
            per_pair = max(5, n // (4 * len(held)))
            unseen = [grammar.seeded_prompt(s, colour, shape) for colour, shape in held
                      for s in range(per_pair)]
            results.update({f"held_out_{k}": v for k, v in
                            self._judge_prompts(unseen, data, cache_dir, controls).items()})
        return results

    def _judge_prompts(self, prompts, data, cache_dir, controls, full=False) -> dict:
        from ..metrics import get_judge, judge_samples
        ids = torch.from_numpy(T.encode(self.tokenizer, prompts)).to(self.device)
        null = self.null_condition(len(prompts), self.device)
        images = self.draw(list(range(len(prompts))), ids, null, **controls)
        colours, shapes = np.array([grammar.caption_attributes(p) for p in prompts]).T
        positions = np.array([grammar.caption_position(p) for p in prompts])
        out = {"colour_accuracy": float(np.mean(grammar.measure_colours(images) == colours)),
               "position_accuracy": float(np.mean(grammar.measure_positions(images) == positions))}
        if full:
            out.update(judge_samples(data, images, shapes, cache_dir=cache_dir))
            out["shape_accuracy"] = out.pop("conditional_accuracy")
        else:
            predicted = get_judge(data, cache_dir).predict(images)
            out.update(shape_accuracy=float(np.mean(predicted == shapes)), n=len(prompts))
        return out

    # --- export ------------------------------------------------------------------------------
    def export_ecosystem(self, dest: Path) -> str:
        """export/diffusers/: a DDPMPipeline folder (unconditional), a StableDiffusionPipeline
        folder (latent text models), or the components, each loadable with its own
        from_pretrained: unet/, scheduler/ (+ text_encoder/, tokenizer/, vae/). Written under a
        temporary name and renamed into place whole."""
        from diffusers import DDPMPipeline, DDPMScheduler
        final, tmp = Path(dest) / "diffusers", Path(dest) / ".diffusers.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        unet = copy.deepcopy(self.modules["unet"]).float().cpu()
        scheduler = DDPMScheduler.from_config(self.noise_scheduler.config)
        c, info = self.config, self.info
        # With patches the snippet samples in the UNet's own layout (the same i.i.d. noise,
        # reordered) and unpatches the image at the end.
        p = c.patch_size
        side = info["image_size"] // p
        shape = f"1, {info['channels'] * p * p}, {side}, {side}"
        unpatch = f"torch.nn.functional.pixel_shuffle(x, {p})" if p > 1 else "x"
        autoencoder = self.autoencoder
        if autoencoder is not None:
            side = info["image_size"] // 4
            shape = f"1, {c.latent_channels}, {side}, {side}"
            unpatch = "vae.decode(x / vae.config.scaling_factor).sample"
        if c.conditioning == "text" and autoencoder is not None:
            from diffusers import StableDiffusionPipeline
            text_encoder, tokenizer = self._text_parts()
            StableDiffusionPipeline(
                vae=autoencoder.export(), text_encoder=text_encoder, tokenizer=tokenizer,
                # steps_offset only moves "leading" timesteps (ours trail); 1 is what the
                # pipeline checks for, and warns about otherwise
                unet=unet, scheduler=DDPMScheduler.from_config(scheduler.config, steps_offset=1),
                safety_checker=None, feature_extractor=None,
                requires_safety_checker=False).save_pretrained(tmp)
            snippet = ("import torch\n"
                       "from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline\n"
                       "pipe = StableDiffusionPipeline.from_pretrained('export/diffusers')\n"
                       "pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)\n"
                       "image = pipe('a large red circle at the center on a white background', "
                       "num_inference_steps=25, guidance_scale=3.0, output_type='pt',\n"
                       "             generator=torch.Generator().manual_seed(0)).images"
                       "  # (1, C, H, W) in [0, 1]")
            what = ("a `StableDiffusionPipeline` folder (vae/, text_encoder/, tokenizer/, unet/, "
                    "scheduler/; no safety checker), each part loadable with its own "
                    "`from_pretrained`")
        elif c.conditioning == "none":
            DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp)
            snippet = ("from diffusers import DDPMPipeline\n"
                       "pipe = DDPMPipeline.from_pretrained('export/diffusers')\n"
                       "images = pipe(batch_size=4, num_inference_steps=1000, output_type='np')"
                       ".images  # (4, H, W, C) in [0, 1]")
            what = "a `DDPMPipeline` folder"
        else:
            unet.save_pretrained(tmp / "unet")
            scheduler.save_pretrained(tmp / "scheduler")
            vae_lines = ""
            if autoencoder is not None:
                autoencoder.export().save_pretrained(tmp / "vae")
                vae_lines = ("from diffusers import AutoencoderKL\n"
                             "vae = AutoencoderKL.from_pretrained(root + '/vae')\n")
            if c.conditioning == "class":
                null = self.num_classes
                cond_lines = ("from diffusers import UNet2DModel\n"
                              "unet = UNet2DModel.from_pretrained(root + '/unet')\n"
                              f"cond = torch.tensor([{null}, 3])  # null class {null}, then class 3\n"
                              "run = lambda x, t: unet(torch.cat([x, x]), t, class_labels=cond).sample")
            else:
                text_encoder, tokenizer = self._text_parts()
                text_encoder.save_pretrained(tmp / "text_encoder")
                tokenizer.save_pretrained(tmp / "tokenizer")
                cond_lines = (
                    "from diffusers import UNet2DConditionModel\n"
                    "from transformers import AutoTokenizer, CLIPTextModel\n"
                    "tok = AutoTokenizer.from_pretrained(root + '/tokenizer')\n"
                    "text = CLIPTextModel.from_pretrained(root + '/text_encoder')\n"
                    "unet = UNet2DConditionModel.from_pretrained(root + '/unet')\n"
                    "prompts = ['', 'a large red circle at the center on a white background']\n"
                    f"ids = tok(prompts, padding='max_length', max_length={info['max_length']}, "
                    "return_tensors='pt').input_ids\n"
                    "with torch.no_grad():\n    cond = text(ids).last_hidden_state\n"
                    "run = lambda x, t: unet(torch.cat([x, x]), t, encoder_hidden_states=cond)"
                    ".sample")
            snippet = ("import torch\nfrom diffusers import DPMSolverMultistepScheduler\n"
                       "root = 'export/diffusers'\n" + vae_lines + cond_lines + "\n"
                       "sched = DPMSolverMultistepScheduler.from_pretrained(root + '/scheduler', "
                       "timestep_spacing='trailing')\n"
                       "sched.set_timesteps(25)\n"
                       f"x = torch.randn({shape}, generator=torch.Generator().manual_seed(0))\n"
                       "for t in sched.timesteps:\n"
                       "    with torch.no_grad():\n"
                       "        uncond, cond_out = run(x, t).chunk(2)\n"
                       "    x = sched.step(uncond + 3.0 * (cond_out - uncond), t, x).prev_sample"
                       "  # guidance 3\n"
                       "with torch.no_grad():\n"
                       f"    image = (({unpatch} + 1) / 2).clamp(0, 1)  # (1, C, H, W)")
            what = "the components, each loadable with its own `from_pretrained`"
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
        return (f"## diffusers\n\n`export/diffusers/` holds {what}: diffusers "
                f"{_version('diffusers')}, {c.prediction_type} prediction, {c.beta_schedule} "
                f"betas, T = {c.num_train_timesteps}, `clip_sample` False (keep it so for "
                f"guided sampling). Images are in [-1, 1] inside the model. Sampling with the "
                f"libraries alone:\n\n```python\n{snippet}\n```\n")


    def _text_parts(self):
        """The text encoder (float32, CPU) and the caption tokenizer as a transformers
        PreTrainedTokenizerFast that pads to the trained length, as the studio does."""
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=T.load_tokenizer(self.info["tokenizer"]), pad_token="[PAD]",
            unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]",
            model_max_length=self.info["max_length"])
        return copy.deepcopy(self.modules["text_encoder"]).float().cpu(), tokenizer


def _version(package: str) -> str:
    from importlib import metadata
    return metadata.version(package)
