"""The diffusion family before any training: bad options are refused before a run folder exists,
and the dry run of a latent model times both of its phases (tiny models, as test_diffusion.py)."""

import os

import pytest

from pipelines.cli import main
from pipelines.core.run_setup import start_run
from pipelines.data import shapes as grammar

from helpers import DIFFUSION_TINY as TINY, DIFFUSION_TINY_TEXT as TINY_TEXT

os.environ["HF_HUB_OFFLINE"] = "1"


def test_dry_run_times_both_phases_of_a_latent_model(tmp_path, capsys):
    sets = [arg for key, value in TINY_TEXT.items() for arg in ("--set", f"{key}={value}")]
    assert main(["--runs-dir", str(tmp_path), "train", "ddpm-text", "--data", "shapes",
                 "--dry-run", "--dry-run-steps", "2", "--steps", "10", *sets]) == 0
    speed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("speed"))
    assert "steps/s for the 3 autoencoder steps" in speed
    assert "steps/s for the 7 diffusion steps" in speed and "in each phase" in speed
    assert not any(tmp_path.iterdir())


def test_bad_options_are_refused_before_a_run_exists(tmp_path):
    from pipelines.core.errors import StudioError
    with pytest.raises(StudioError, match="captioned"):
        start_run("ddpm-text", "digits", config_overrides=TINY_TEXT, runs_dir=tmp_path)
    with pytest.raises(StudioError, match="held_out"):
        grammar.parse_pairs("red circle, pink circle")
    with pytest.raises(StudioError, match="v_prediction"):
        start_run("ddpm", "digits", config_overrides={**TINY, "beta_schedule": "cosine"},
                  runs_dir=tmp_path)
    with pytest.raises(StudioError, match="multiple of 4"):
        start_run("ddpm", "digits", config_overrides={**TINY, "image_size": 10, "levels": 3},
                  runs_dir=tmp_path)
    with pytest.raises(StudioError, match="DDPMPipeline"):
        start_run("ddpm", "digits", config_overrides={**TINY, "patch_size": 2},
                  runs_dir=tmp_path)
    with pytest.raises(StudioError, match="multiple of 8"):
        start_run("ddpm-class", "digits", config_overrides={**TINY, "image_size": 12,
                                                            "patch_size": 2, "levels": 3},
                  runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())
