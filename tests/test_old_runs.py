"""Runs saved by older versions of the studio still resume and sample.

Before the diffusion family was split into a pixel pipeline and a text-to-image pipeline, one
config held every diffusion option, and runs saved all of them: a `ddpm-class` run.json (and
its weights' metadata) holds `latent_channels`, `text_width`, ... A config drops the options it
has retired when it reads such a run, and refuses one that held a value it cannot build; an
option added since takes the value that behaves as such a run trained."""

import json
import os

import pytest

from pipelines.core.config import from_dict, to_dict
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.diffusion.config import DEFAULT_HELD_OUT
from pipelines.registry import load_pipeline_class
from pipelines.services.loading import load_for_sampling

os.environ["HF_HUB_OFFLINE"] = "1"
TINY = {"width": 8, "num_train_timesteps": 50, "image_size": 8, "lr_warmup_steps": 2}
# What a ddpm-class run.json held beside its own options before the split (their defaults).
OLD_EXTRAS = {"latent_channels": 0, "autoencoder_steps": 1500, "autoencoder_batch": 16,
              "autoencoder_width": 16, "foreground_weight": 10.0, "autoencoder_lr": 2e-3,
              "kl_weight": 1e-4, "text_width": 64, "text_layers": 2, "pooled_text": True,
              "held_out": DEFAULT_HELD_OUT}


def _rewrite_config(run, changes):
    path = run.path / "run.json"
    info = json.loads(path.read_text())
    info["config"].update(changes)
    path.write_text(json.dumps(info))


def test_a_class_run_saved_with_every_diffusion_option_resumes_and_samples(tmp_path):
    run = start_run("ddpm-class", "digits", config_overrides=TINY, runs_dir=tmp_path,
                    trainer_overrides={"steps": 2, "batch_size": 8, "sample_every": 0,
                                       "checkpoint_every": 2, "final_eval": False})
    assert train_run(run) == "done"
    _rewrite_config(run, OLD_EXTRAS)
    assert train_run(run, resume=True, total_steps=4) == "done"   # the trainer reads run.json
    pipe = load_for_sampling(run.path, device="cpu")        # the weights' metadata, old keys
    assert pipe.config.conditioning == "class" and not hasattr(pipe.config, "text_width")
    assert pipe.sample(2, 0, labels=3, steps=2).images.shape == (2, 1, 8, 8)


def test_an_old_option_that_changed_the_model_is_refused_by_name():
    cls = load_pipeline_class("ddpm-class")
    saved = {**to_dict(cls.Config()), **OLD_EXTRAS, "latent_channels": 4}
    with pytest.raises(StudioError, match="latent_channels=4 was saved by an older version"):
        from_dict(cls.Config, saved, where="config.")
    text = load_pipeline_class("ddpm-text")
    old_text = {**to_dict(text.Config()), "conditioning": "text", "patch_size": 1}
    assert from_dict(text.Config, old_text) == text.Config()
    with pytest.raises(StudioError, match="patch_size=2"):
        from_dict(text.Config, {**old_text, "patch_size": 2})


def test_an_option_added_since_takes_the_value_older_runs_trained_with():
    """LAPGAN's coarse_batch (session 28) picks 64 images apart from the batch on digits by
    default (0); a run saved before it existed drew them from the batch (-1), and resumes so."""
    lapgan = load_pipeline_class("lapgan")
    saved = to_dict(lapgan.Config())
    assert saved.pop("coarse_batch") == 0
    assert from_dict(lapgan.Config, saved).coarse_batch == -1
    assert from_dict(lapgan.Config, {**saved, "coarse_batch": 0}).coarse_batch == 0
    info = {"channels": 1, "image_size": 8, "num_classes": 10}
    assert lapgan(from_dict(lapgan.Config, saved), info).coarse_images() == 0
    assert lapgan(lapgan.Config(), info).coarse_images() == 64


def test_biggans_mode_seeking_term_is_off_for_runs_saved_before_it():
    """BigGAN's mode_seeking (session 32) is 0.1 by default; a run saved before it existed
    trained without it, and resumes so."""
    biggan = load_pipeline_class("biggan")
    saved = to_dict(biggan.Config())
    assert saved.pop("mode_seeking") == 0.1
    assert from_dict(biggan.Config, saved).mode_seeking == 0.0
    assert from_dict(biggan.Config, {**saved, "mode_seeking": 0.1}).mode_seeking == 0.1
