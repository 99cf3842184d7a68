"""Writing a diffusion model as a diffusers folder, shared by both pipelines: the folder is
written under a temporary name and renamed into place whole, and the model card says how to
sample it with the libraries alone (for models no diffusers pipeline runs, a short loop over
the saved components).
"""

from __future__ import annotations

import copy
import shutil
from importlib import metadata
from pathlib import Path
from typing import Callable


def write_folder(dest: Path, write: Callable[[Path], None]) -> None:
    """dest/diffusers/, made by write(folder) under a temporary name, then renamed whole."""
    final, tmp = Path(dest) / "diffusers", Path(dest) / ".diffusers.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.replace(final)


def cpu_copy(module):
    """A float32 CPU copy of a trained module, to save (the run's own stays where it is)."""
    return copy.deepcopy(module).float().cpu()


def components_snippet(load_lines: str, shape: str, decode: str) -> str:
    """The model card's sampling loop for saved components: `load_lines` load them and define
    `run(x, t)`, the UNet on a doubled batch (null condition first); `shape` is the starting
    noise's; `decode` turns the final x into an image in [-1, 1]."""
    return ("import torch\nfrom diffusers import DPMSolverMultistepScheduler\n"
            "root = 'export/diffusers'\n" + load_lines + "\n"
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
            f"    image = (({decode} + 1) / 2).clamp(0, 1)  # (1, C, H, W)")


def model_card(what: str, snippet: str, config) -> str:
    """The model card's diffusers section."""
    c = config
    return (f"## diffusers\n\n`export/diffusers/` holds {what}: diffusers "
            f"{metadata.version('diffusers')}, {c.prediction_type} prediction, "
            f"{c.beta_schedule} betas, T = {c.num_train_timesteps}, `clip_sample` False (keep "
            f"it so for guided sampling). Images are in [-1, 1] inside the model. Sampling with "
            f"the libraries alone:\n\n```python\n{snippet}\n```\n")


# The model card's snippet for a latent text-to-image model: diffusers' own pipeline.
STABLE_DIFFUSION_SNIPPET = (
    "import torch\n"
    "from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline\n"
    "pipe = StableDiffusionPipeline.from_pretrained('export/diffusers')\n"
    "pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)\n"
    "image = pipe('a large red circle at the center on a white background', "
    "num_inference_steps=25, guidance_scale=3.0, output_type='pt',\n"
    "             generator=torch.Generator().manual_seed(0)).images"
    "  # (1, C, H, W) in [0, 1]")


def text_components_loader(max_length: int) -> str:
    """components_snippet's load_lines for a pixel text model: the tokenizer pads to the
    trained length, the text encoder's states condition the UNet (empty prompt first)."""
    return ("from diffusers import UNet2DConditionModel\n"
            "from transformers import AutoTokenizer, CLIPTextModel\n"
            "tok = AutoTokenizer.from_pretrained(root + '/tokenizer')\n"
            "text = CLIPTextModel.from_pretrained(root + '/text_encoder')\n"
            "unet = UNet2DConditionModel.from_pretrained(root + '/unet')\n"
            "prompts = ['', 'a large red circle at the center on a white background']\n"
            f"ids = tok(prompts, padding='max_length', max_length={max_length}, "
            "return_tensors='pt').input_ids\n"
            "with torch.no_grad():\n    cond = text(ids).last_hidden_state\n"
            "run = lambda x, t: unet(torch.cat([x, x]), t, encoder_hidden_states=cond).sample")
