"""The diffusion family: each form trains and resumes exactly; every scheduler samples; the
exported folder loads with diffusers' (and transformers') own from_pretrained; seeds repeat;
guidance at scale 1 is the conditional prediction; inpainting keeps the unmasked pixels;
img2img, previews and the CLI work. Tiny UNets (width 8, 8 px, T = 50) throughout. (Options
refused before a run exists, and the dry run: test_diffusion_input.py.)"""

import math
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.cli import main
from pipelines.diffusion import SCHEDULERS
from pipelines.data import shapes as grammar
from pipelines.diffusion import text as T
from pipelines.services.export import export_run
from pipelines.services.loading import load_for_sampling
from pipelines.registry import list_pipelines
from pipelines.services.sampling import run_tool
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

from helpers import DIFFUSION_TINY, DIFFUSION_TINY_TEXT

os.environ["HF_HUB_OFFLINE"] = "1"
TINY, TINY_TEXT = DIFFUSION_TINY, DIFFUSION_TINY_TEXT   # ddpm-text: 3 autoencoder steps of 6
TRAINER = {"steps": 6, "batch_size": 8, "log_every": 1, "sample_every": 0,
           "checkpoint_every": 3, "sample_count": 4, "seed": 7, "final_eval": False}
FAST = {"steps": 3, "guidance": 2.0}
DATA = {"ddpm": "digits", "ddpm-class": "digits", "ddpm-text": "shapes"}


def tiny(name, runs_dir, run_name, steps=6, trainer=None, **config):
    tiny_config = TINY_TEXT if name == "ddpm-text" else TINY
    return start_run(name, DATA[name], config_overrides={**tiny_config, **config},
                     trainer_overrides={**TRAINER, "steps": steps, **(trainer or {})},
                     runs_dir=runs_dir,
                     name=run_name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("diffusion-runs")


@pytest.fixture(scope="module")
def trained(runs):
    """One finished tiny run of each form, loaded for sampling."""
    out = {}
    for name in DATA:
        run = tiny(name, runs, f"{name}-trained")
        assert train_run(run) == "done"
        out[name] = (run, load_for_sampling(run.path, device="cpu"))
    return out


def losses(run, after=0):
    return {r["step"]: (r["loss"], r["grad_norm"]) for r in run.metrics()
            if "loss" in r and r["step"] > after}


def test_forms_are_registered():
    entries = {e.name: e for e in list_pipelines()}
    assert all(entries[n].family == "diffusion" and entries[n].kind == "image" for n in DATA)


def test_trains_with_finite_losses_and_resumes_exactly(runs, trained):
    for name in DATA:
        rows = losses(trained[name][0])
        # the latent text model: 3 autoencoder steps, then 3 diffusion steps
        assert len(rows) == (3 if name == "ddpm-text" else 6)
        assert all(math.isfinite(v) for r in rows.values() for v in r)
        assert all("val/loss" in r for r in trained[name][0].metrics() if "loss" in r)
    autoencoder_rows = [r for r in trained["ddpm-text"][0].metrics() if "autoencoder_loss" in r]
    assert [r["step"] for r in autoencoder_rows] == [1, 2, 3]
    assert all(math.isfinite(r["autoencoder_kl"]) for r in autoencoder_rows)
    # The text model also logs the loss with its neighbours' captions (is the prompt read?).
    text_rows = [r for r in trained["ddpm-text"][0].metrics() if "val/loss" in r]
    assert all(math.isfinite(r["val/loss_wrong_caption"]) for r in text_rows)
    assert text_rows[-1]["val/loss_wrong_caption"] != text_rows[-1]["val/loss"]
    # Resuming is the trainer's; the family only has to keep no hidden state. The text model
    # resumes at its phase change: the latent scale is measured after the resume.
    for name in ("ddpm-class", "ddpm-text"):
        straight = trained[name][0]
        split = tiny(name, runs, f"{name}-split", steps=3)
        assert train_run(split) == "done"
        assert train_run(split, resume=True, total_steps=6) == "done"
        assert losses(split, after=3) == losses(straight, after=3)


def test_attention_only_on_small_feature_maps_and_pooled_text(runs, trained):
    # 16 px, 3 levels (16, 8, 4 px), attention_size 8: the first level has none.
    run = tiny("ddpm-class", runs, "attention", steps=1, image_size=16, levels=3,
               attention_size=8)
    assert train_run(run) == "done"
    unet = load_for_sampling(run.path).modules["unet"]
    assert [type(b).__name__ for b in unet.down_blocks] == [
        "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]
    assert unet.config.block_out_channels == (8, 16, 32)
    # The text UNet adds the attention-pooled prompt to the timestep embedding.
    text_unet = trained["ddpm-text"][1].modules["unet"]
    assert text_unet.config.addition_embed_type == "text"
    assert type(text_unet.add_embedding).__name__ == "TextTimeEmbedding"


def test_snr_shift_scales_the_signal_to_noise_ratio(runs):
    from diffusers import DDPMScheduler

    from pipelines.diffusion.sampling import make_scheduler
    run = tiny("ddpm-class", runs, "shifted", steps=1, snr_shift=0.25, beta_schedule="cosine",
               prediction_type="v_prediction")
    assert train_run(run) == "done"
    pipe = load_for_sampling(run.path)
    plain = DDPMScheduler(num_train_timesteps=50, beta_schedule="squaredcos_cap_v2")
    snr = lambda a: a / (1 - a)                                # noqa: E731
    ratio = snr(pipe.noise_scheduler.alphas_cumprod) / snr(plain.alphas_cumprod)
    torch.testing.assert_close(ratio[:-1], torch.full((49,), 0.25), rtol=1e-3, atol=0)
    # every sampler is built from the shifted schedule
    for name in ("dpm++", "euler", "ddim"):
        sampler = make_scheduler(name, pipe.noise_scheduler.config)
        torch.testing.assert_close(sampler.alphas_cumprod, pipe.noise_scheduler.alphas_cumprod)


def test_patches_train_sample_and_export(runs, tmp_path):
    # patch_size 2: the UNet sees (4, 4, 4) for 8 px digits; images, noise and the exported
    # snippet's output stay (1, 8, 8).
    run = tiny("ddpm-class", runs, "patches", steps=2, patch_size=2)
    assert train_run(run) == "done"
    pipe = load_for_sampling(run.path)
    unet = pipe.modules["unet"]
    assert (unet.config.in_channels, unet.config.out_channels, unet.config.sample_size) == (4, 4, 4)
    images = pipe.sample(3, 0, labels=2, scheduler="dpm++", steps=3, guidance=2.0).images
    assert images.shape == (3, 1, 8, 8) and np.isfinite(images).all()
    dest = export_run(run)
    snippet_image = _run_snippet((dest / "README.md").read_text(), dest / "diffusers", tmp_path)
    assert snippet_image.shape == (1, 1, 8, 8)


@pytest.mark.parametrize("prediction,betas", [("v_prediction", "linear"), ("sample", "cosine")])
def test_other_targets_and_schedules_train(prediction, betas, runs):
    run = tiny("ddpm", runs, f"{prediction}-{betas}", steps=2, prediction_type=prediction,
               beta_schedule=betas, min_snr_gamma=5.0)
    assert train_run(run) == "done"
    assert all(math.isfinite(v) for r in losses(run).values() for v in r)
    images = load_for_sampling(run.path).sample(2, 0, scheduler="dpm++", steps=3).images
    assert images.shape == (2, 1, 8, 8) and np.isfinite(images).all()


def test_held_out_pairs_are_not_trained_on(trained):
    _, pipe = trained["ddpm-text"]
    from pipelines.data import load_data
    data = load_data("shapes")                 # the model's size does not matter here
    tensors = pipe.train_tensors(data)
    held = set(grammar.parse_pairs(pipe.config.held_out))
    assert len(held) == 5
    dropped = sum(grammar.caption_attributes(c) in held for c in data.train_captions)
    assert dropped > 0 and len(tensors["images"]) == len(data.train_captions) - dropped
    assert tensors["tokens"].shape == (len(tensors["images"]), pipe.info["max_length"])
    # The drawn colour is measurable: the pixel-based colour reader is right on real images.
    colours = np.array([grammar.caption_attributes(c)[0] for c in data.val_captions[:200]])
    assert np.mean(grammar.measure_colours(data.val_images[:200]) == colours) > 0.95
    positions = np.array([grammar.caption_position(c) for c in data.val_captions[:200]])
    assert (positions >= 0).all() and grammar.caption_position("a red circle") == -1
    assert np.mean(grammar.measure_positions(data.val_images[:200]) == positions) > 0.95


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_samples(scheduler, trained):
    for name in ("ddpm-class", "ddpm-text"):
        samples = trained[name][1].sample(3, 0, scheduler=scheduler, eta=0.5, **FAST)
        channels = 1 if name == "ddpm-class" else 3
        assert samples.images.shape == (3, channels, 8, 8) and samples.images.dtype == np.float32
        assert np.isfinite(samples.images).all() and 0 <= samples.images.min() <= 1
        assert samples.labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("scheduler", ["ddpm", "euler-ancestral", "dpm++"])
def test_same_seed_same_image_alone_or_in_a_batch(scheduler, trained):
    pipe = trained["ddpm-class"][1]
    batch = pipe.sample(4, 10, labels=2, scheduler=scheduler, **FAST).images
    again = pipe.sample(4, 10, labels=2, scheduler=scheduler, **FAST).images
    alone = pipe.sample(1, 13, labels=2, scheduler=scheduler, **FAST).images
    np.testing.assert_array_equal(batch, again)
    np.testing.assert_allclose(batch[3], alone[0], atol=2e-3)  # batch-size rounding
    assert np.abs(batch[0] - batch[1]).max() > 1e-3             # different seeds differ


def test_guidance_scale_one_is_the_conditional_prediction(trained):
    for name in ("ddpm-class", "ddpm-text"):
        pipe = trained[name][1]
        cond, null, _, _ = pipe.conditions(3, [1, 2, 0] if name == "ddpm-class" else None,
                                           seeds=[0, 1, 2])
        states, null_states = pipe.encode_condition(cond), pipe.encode_condition(null)
        x, t = pipe.noise_for([0, 1, 2])[0], torch.tensor(30)     # pixels or latents
        with torch.no_grad():
            conditional = pipe.predict(x, t, states)
            guided = pipe.cfg(x, t, states, null_states, 1.0)      # the doubled-batch path
            stronger = pipe.cfg(x, t, states, null_states, 3.0)
            unconditional = pipe.predict(x, t, null_states)
        # The doubled batch may take other kernels than a batch of 3 (oneDNN on AVX-512
        # differed by up to 6e-5, one torch thread), so the tolerance sits above float
        # rounding and far below what the condition moves the prediction by.
        tolerance = {"atol": 2e-4, "rtol": 1e-3}
        assert (conditional - unconditional).abs().max() > 100 * tolerance["atol"]
        torch.testing.assert_close(guided, conditional, **tolerance)
        torch.testing.assert_close(stronger, unconditional + 3 * (conditional - unconditional),
                                   **tolerance)


def test_sampling_without_controls_uses_the_pipelines_own_defaults(trained):
    """The trainer's periodic grids name no controls: they draw as the page and `studio
    sample` do (ddpm-class: guidance 1.1), not with the sampling loop's fallback of 3."""
    pipe = trained["ddpm-class"][1]
    assert pipe.SampleControls().guidance == 1.1
    plain = pipe.sample(2, 5, labels=1, steps=3).images
    np.testing.assert_array_equal(plain, pipe.sample(2, 5, labels=1, steps=3,
                                                     guidance=1.1).images)
    assert not np.array_equal(plain, pipe.sample(2, 5, labels=1, steps=3, guidance=3.0).images)
    # Its tools' forms start from the same guidance.
    assert {tool.name: tool.Options().guidance for tool in pipe.tools} == {
        "img2img": 1.1, "inpaint": 1.1, "denoise-steps": 1.1}


def test_interpolation_ends_at_the_two_seeds(trained):
    pipe = trained["ddpm-class"][1]
    walk = pipe.interpolate(3, 17, 5, labels=4, scheduler="ddpm", steps=3).images  # -> DDIM
    assert walk.shape == (5, 1, 8, 8)
    ends = pipe.sample(1, 3, labels=4, scheduler="ddim", eta=0.0, steps=3).images
    np.testing.assert_allclose(walk[0], ends[0], atol=1e-5)


def _png(path, array):
    Image.fromarray((np.asarray(array) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("scheduler", ["ddpm", "euler", "dpm++"])
def test_inpainting_keeps_the_unmasked_pixels(scheduler, trained, tmp_path):
    _, pipe = trained["ddpm-class"]
    picture = np.random.default_rng(0).random((8, 8))
    mask = np.zeros((8, 8))
    mask[2:6, 2:6] = 1.0                                         # repaint the middle
    inputs = [_png(tmp_path / "pic.png", picture), _png(tmp_path / "mask.png", mask)]
    result = run_tool(pipe, "inpaint", {"scheduler": scheduler, "steps": "4", "count": "3",
                                        "label": "5"}, input_paths=inputs, cache_dir=tmp_path)
    images = result.images                                       # picture | mask | 3 fillings
    assert images.shape == (5, 1, 8, 8) and result.columns == 5
    given = images[0, 0]
    keep = mask == 0
    for filling in images[2:]:
        assert np.abs(filling[0][keep] - given[keep]).max() < 1e-5
    assert np.abs(images[2, 0][~keep] - given[~keep]).max() > 1e-3  # the hole was redrawn
    assert result.values["max_change_outside_mask"] < 1e-5


def test_latent_inpainting_keeps_the_unmasked_pixels(trained, tmp_path):
    # The latent model repaints whole latent cells, decodes, then pastes the kept pixels back.
    _, pipe = trained["ddpm-text"]
    picture = np.random.default_rng(2).random((8, 8, 3))
    mask = np.zeros((8, 8))
    mask[0:3, 5:8] = 1.0
    inputs = [_png(tmp_path / "pic.png", picture), _png(tmp_path / "mask.png", mask)]
    result = run_tool(pipe, "inpaint", {"steps": "4", "count": "2", "prompt": "a small red "
                                        "circle at the top right on a white background"},
                      input_paths=inputs, cache_dir=tmp_path)
    images = result.images                                       # picture | mask | 2 fillings
    assert images.shape == (4, 3, 8, 8)
    keep = mask == 0
    for filling in images[2:]:
        assert np.abs(filling[:, keep] - images[0][:, keep]).max() < 1e-5
        assert np.abs(filling[:, ~keep] - images[0][:, ~keep]).max() > 1e-3
    assert result.values["max_change_outside_mask"] < 1e-5


def test_latent_model_trains_its_autoencoder_first(trained, runs):
    from pipelines.core.errors import StudioError
    _, pipe = trained["ddpm-text"]
    ae = pipe.autoencoder
    assert pipe.modules["unet"].config.in_channels == 4 and pipe.modules["unet"].config.sample_size == 2
    assert float(ae.scale) > 0 and pipe.noise_for([0])[0].shape == (1, 4, 2, 2)
    # Stopped during its autoencoder phase: the grids showed reconstructions (picture, rebuilt
    # pairs); sampling says what to do instead of drawing from an untrained UNet.
    run = tiny("ddpm-text", runs, "autoencoder-only", steps=2,
               trainer={"sample_every": 2, "final_eval": True})      # evaluates nothing
    assert train_run(run) == "done"
    assert (run.path / "samples" / "step_000002.png").exists()
    early = load_for_sampling(run.path)
    assert not early.autoencoder.ready
    with pytest.raises(StudioError, match="resume it"):
        early.sample(2, 0)
    # and the pixel form of the text model still trains and samples
    pixels = tiny("ddpm-text", runs, "text-pixels", steps=2, latent_channels=0)
    assert train_run(pixels) == "done"
    assert load_for_sampling(pixels.path).sample(2, 0, steps=2).images.shape == (2, 3, 8, 8)


def test_the_unets_average_begins_with_the_diffusion_phase(runs):
    """The autoencoder phase leaves the weight averages of the UNet and the text encoder alone
    (Phase ema=False): after the first diffusion step each average is that step's weights
    (warm-up decay 1 - 1^(-2/3) = 0). Had the average counted the 3 autoencoder steps, the
    random initial UNet would weigh 1 - 4^(-2/3) = 0.6 in it."""
    from pipelines.core.trainer import Trainer
    run = tiny("ddpm-text", runs, "average-after-autoencoder", steps=4)
    trainer = Trainer(run)
    assert trainer.train(resume=False) == "done"
    for name in ("unet", "text_encoder"):
        weights = list(trainer.pipeline.modules[name].parameters())
        average = trainer.ema[name].shadow_params
        assert len(average) == len(weights)
        for mean, live in zip(average, weights):
            torch.testing.assert_close(mean, live.detach(), rtol=0, atol=1e-6)


def test_img2img_and_preview_tools(trained, tmp_path):
    _, pipe = trained["ddpm-text"]
    picture = _png(tmp_path / "p.png", np.random.default_rng(1).random((8, 8, 3)))
    unchanged = run_tool(pipe, "img2img", {"strength": "0", "steps": "4"},
                         input_paths=[picture], cache_dir=tmp_path).images
    np.testing.assert_allclose(unchanged[1], unchanged[0], atol=1e-6)
    edited = run_tool(pipe, "img2img", {"strength": "0.5", "steps": "4",
                                        "prompt": "a large red circle at the center on a "
                                                  "white background"},
                      input_paths=[picture], cache_dir=tmp_path)
    assert edited.images.shape == (2, 3, 8, 8) and np.abs(edited.images[1] - edited.images[0]).max() > 1e-3
    preview = run_tool(pipe, "denoise-steps", {"steps": "6", "every": "2", "count": "2"},
                       cache_dir=tmp_path)
    assert preview.columns == 4 and preview.images.shape == (8, 3, 8, 8)  # noise + 3 frames
    final = pipe.sample(2, 0, steps=6).images                   # the strip ends at the sample
    np.testing.assert_allclose(preview.images[3], final[0], atol=1e-5)


def _run_snippet(card: str, root, tmp_path) -> torch.Tensor:
    section = card[card.index("## diffusers"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(code.replace("'export/diffusers'", repr(str(root))), scope)   # noqa: S102
    return scope["image"]


def test_export_loads_with_the_libraries_alone(trained, tmp_path):
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel, UNet2DModel)
    from transformers import AutoTokenizer, CLIPTextModel
    # Unconditional: diffusers' own DDPMPipeline loads and samples.
    dest = export_run(trained["ddpm"][0])
    card = (dest / "README.md").read_text()
    pipe = DDPMPipeline.from_pretrained(dest / "diffusers")
    images = pipe(batch_size=2, num_inference_steps=3, output_type="np").images
    assert images.shape == (2, 8, 8, 1) and np.isfinite(images).all()
    assert "DDPMPipeline.from_pretrained" in card
    # Class-conditional: the UNet loads alone; the model card's snippet samples.
    dest = export_run(trained["ddpm-class"][0])
    assert UNet2DModel.from_pretrained(dest / "diffusers" / "unet").config.num_class_embeds == 11
    assert _run_snippet((dest / "README.md").read_text(), dest / "diffusers", tmp_path).shape == (1, 1, 8, 8)
    # Text: tokenizer, text encoder and UNet each load and agree with the studio's own.
    run, studio = trained["ddpm-text"]
    dest = export_run(run) / "diffusers"
    prompt = "a small blue cross at the top left on a black background"
    tok = AutoTokenizer.from_pretrained(dest / "tokenizer")
    ids = tok([prompt], padding="max_length", max_length=studio.info["max_length"],
              return_tensors="pt").input_ids
    assert ids.tolist() == T.encode(studio.tokenizer, [prompt]).tolist()
    text = CLIPTextModel.from_pretrained(dest / "text_encoder")
    with torch.no_grad():
        torch.testing.assert_close(text(ids).last_hidden_state, studio.encode_condition(ids))
    assert isinstance(UNet2DConditionModel.from_pretrained(dest / "unet"), UNet2DConditionModel)
    vae = AutoencoderKL.from_pretrained(dest / "vae")
    assert vae.config.scaling_factor == pytest.approx(float(studio.autoencoder.scale))
    # The latent text model is a whole StableDiffusionPipeline: its own prompt encoding and
    # guidance give the studio's image for the same starting latents.
    sd = StableDiffusionPipeline.from_pretrained(dest)
    sd.scheduler = DDIMScheduler.from_config(sd.scheduler.config)
    start = studio.noise_for([5])[0]
    theirs = sd(prompt, num_inference_steps=4, guidance_scale=2.0, latents=start.clone(),
                output_type="pt").images
    ours = studio.sample(1, 5, prompt=prompt, scheduler="ddim", steps=4, guidance=2.0).images
    np.testing.assert_allclose(theirs.numpy(), ours, atol=2e-3)
    card = (dest.parent / "README.md").read_text()
    assert "StableDiffusionPipeline.from_pretrained" in card
    assert _run_snippet(card, dest, tmp_path).shape == (1, 3, 8, 8)


def test_cli_sampling_and_bad_prompts(trained, runs, tmp_path, capsys):
    rd = ["--runs-dir", str(runs)]
    run_class, run_text = trained["ddpm-class"][0], trained["ddpm-text"][0]
    out = tmp_path / "g.npz"
    assert main([*rd, "sample", run_class.id, "--n", "4", "--seed", "0", "--class", "3",
                 "--set", "scheduler=ddim", "--set", "steps=3", "--set", "guidance=3",
                 "--out", str(out)]) == 0
    assert np.load(out)["images"].shape == (4, 1, 8, 8) and set(np.load(out)["labels"]) == {3}
    assert main([*rd, "sample", run_text.id, "--n", "2", "--prompt", "a large red circle at "
                 "the center on a white background", "--set", "steps=2",
                 "--out", str(tmp_path / "t.png")]) == 0
    capsys.readouterr()
    assert main([*rd, "sample", run_text.id, "--prompt", "a red unicorn", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "unicorn" in capsys.readouterr().err
    assert main([*rd, "sample", run_class.id, "--prompt", "a red circle", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert main([*rd, "sample", run_class.id, "--set", "scheduler=plms", "--out",
                 str(tmp_path / "x.png")]) == 2
