"""StyleGAN2 (pipelines/gan/stylegan.py): trains, resumes exactly and samples deterministically
through the real trainer; truncation in w, the noise controls, the style-mixing grid and the
class-direction tool do what they claim; bad options are one-line errors."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipelines.cli import main
from pipelines.core.base import ToolContext
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool

from helpers import built_now_and_before

# Tiny nets; R1 every 2nd step and style mixing on, so both happen on each side of the resume.
TINY_CONFIG = {"style_channels": 8, "w_dim": 16, "z_dim": 8, "mapping_layers": 2, "width": 8,
               "r1_every": 2, "r1_gamma": 1.0, "mixing_prob": 0.9}
TINY_TRAINER = {"steps": 10, "batch_size": 16, "log_every": 1, "sample_every": 5,
                "checkpoint_every": 5, "sample_count": 10, "seed": 5, "final_eval": False}


def tiny(runs_dir, run_name, steps=10, final_eval=False, data="digits", **config):
    return start_run("stylegan", data, config_overrides={**TINY_CONFIG, **config},
                     trainer_overrides={**TINY_TRAINER, "steps": steps,
                                        "final_eval": final_eval},
                     runs_dir=runs_dir, name=run_name)


def logged(run, after=0):
    return {r["step"]: {k: v for k, v in r.items() if k.startswith(("loss", "d_", "grad", "r1"))}
            for r in run.metrics() if "loss_d" in r and r["step"] > after}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("stylegan-runs")


@pytest.fixture(scope="module")
def trained(runs):
    """One 10-step run on digits, judged at the end; its sampling pipeline."""
    run = tiny(runs, "straight", final_eval=True)
    assert train_run(run) == "done"
    return run, load_for_sampling(run.path)


def test_trains_resumes_exactly_and_samples_deterministically(runs, trained):
    straight, pipe = trained
    rows = logged(straight)
    assert len(rows) == 10 and all(np.isfinite(v) for r in rows.values() for v in r.values())
    assert [s for s, r in rows.items() if "r1_penalty" in r] == [1, 3, 5, 7, 9]  # lazy R1
    assert "fd" in straight.info()["eval"] and "fd_floor" in straight.info()["eval"]

    split = tiny(runs, "split", steps=5)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=10) == "done"
    assert logged(split, after=5) == logged(straight, after=5)
    resumed = load_for_sampling(split.path)
    # The tracked mean w travels with the weights, and the resumed run tracked the same one.
    w_avg = pipe.generator.mapping.w_avg
    assert w_avg.abs().sum() > 0
    assert torch.equal(resumed.generator.mapping.w_avg, w_avg)

    samples = pipe.sample(7, seed=2)
    assert samples.images.shape == (7, 1, 8, 8) and samples.images.dtype == np.float32
    assert 0 <= samples.images.min() and samples.images.max() <= 1
    np.testing.assert_array_equal(samples.images, pipe.sample(7, seed=2).images)
    # Image i of a batch is seed + i's image alone.
    np.testing.assert_allclose(samples.images[4], pipe.sample(1, seed=6).images[0], atol=1e-6)
    assert pipe.generator.num_ws == 4      # 8 px: 4x4 conv, 8x8 convs, toRGBs as in the paper


def test_truncation_and_noise_controls(trained):
    _, pipe = trained
    plain = pipe.sample(5, seed=0).images
    np.testing.assert_array_equal(pipe.sample(5, seed=0, psi=1.0).images, plain)
    # psi = 0: every seed maps to the mean w; with the stored noise, one image for all.
    mean = pipe.sample(5, seed=0, psi=0.0, noise="const").images
    np.testing.assert_allclose(mean, np.repeat(mean[:1], 5, axis=0), atol=1e-6)
    half = pipe.sample(5, seed=0, psi=0.5, noise="const").images
    assert not np.allclose(half, mean, atol=1e-6)
    # The noise strengths are learned from 0: after 10 steps they are small but not nothing.
    assert not np.array_equal(pipe.sample(5, seed=0, noise="off").images, plain)
    with pytest.raises(StudioError, match="noise must be"):
        pipe.sample(2, seed=0, noise="loud")
    with pytest.raises(StudioError, match="not class-conditional"):
        pipe.sample(2, seed=0, labels=3)
    walk = pipe.interpolate(3, 17, 6).images
    np.testing.assert_allclose(walk[0], pipe.sample(1, 3).images[0], atol=1e-5)
    np.testing.assert_allclose(walk[-1], pipe.sample(1, 17).images[0], atol=1e-5)


def test_style_mixing_grid(trained, runs):
    _, pipe = trained
    options = {"row_seed": 1, "rows": 3, "column_seed": 50, "columns": 4, "crossover": 2,
               "psi": 1.0}
    grid = run_tool(pipe, "style-mixing", options, cache_dir=runs).images
    assert grid.shape == (4 * 5, 1, 8, 8)
    np.testing.assert_array_equal(grid, run_tool(pipe, "style-mixing", options,
                                                 cache_dir=runs).images)
    cells = grid.reshape(4, 5, 1, 8, 8)
    np.testing.assert_allclose(cells[0, 1:], pipe.sample(4, 50).images, atol=1e-6)  # columns
    np.testing.assert_allclose(cells[1:, 0], pipe.sample(3, 1).images, atol=1e-6)   # rows
    assert not np.allclose(cells[1:, 1:], cells[1:, :1], atol=1e-6)                # mixed
    # Crossover at the last layer: every style from the row's seed, so each cell is its row.
    every = run_tool(pipe, "style-mixing", {**options, "crossover": pipe.generator.num_ws},
                     cache_dir=runs).images.reshape(4, 5, 1, 8, 8)
    np.testing.assert_allclose(every[1:, 1:], np.repeat(every[1:, :1], 4, axis=1), atol=1e-6)
    with pytest.raises(StudioError, match="4 style layers"):
        run_tool(pipe, "style-mixing", {**options, "crossover": 5}, cache_dir=runs)


def test_style_direction_on_digits(trained, runs):
    _, pipe = trained
    from pipelines.data import load_data
    from pipelines.metrics import get_judge
    # The two classes the judge finds most among the tool's own probe samples.
    ws, noise = pipe.seeds_drawn(list(range(2**31, 2**31 + 300)), 1.0, "random")
    judged = get_judge(load_data("digits"), runs / ".judges").predict(pipe.draw(ws, noise))
    a, b = np.argsort(np.bincount(judged, minlength=10))[::-1][:2]
    options = {"class_a": str(a), "class_b": str(b), "rows": 2, "columns": 5, "span": 1.0,
               "samples": 300, "seed": 0}
    result = run_tool(pipe, "style-direction", options, cache_dir=runs / ".judges")
    assert result.images.shape == (10, 1, 8, 8) and result.columns == 5
    assert result.values["direction_norm"] > 0
    assert result.values[f"judged_{a}"] + result.values[f"judged_{b}"] <= 300
    # The middle column is each row seed's own image.
    np.testing.assert_allclose(result.images.reshape(2, 5, 1, 8, 8)[:, 2],
                               pipe.sample(2, 0).images, atol=1e-5)
    with pytest.raises(StudioError, match="no class 'eleven'"):
        run_tool(pipe, "style-direction", {**options, "class_b": "eleven"},
                 cache_dir=runs / ".judges")
    unlabelled = ToolContext(images=None, cache_dir=runs,
                             load_data=lambda: SimpleNamespace(num_classes=1, name="pictures"))
    with pytest.raises(StudioError, match="has no classes"):
        pipe.style_direction(unlabelled, **{**options, "class_a": "0", "class_b": "1"})


def test_cli_sampling_and_tool(trained, runs, tmp_path, capsys):
    run, _ = trained
    rd = ["--runs-dir", str(runs)]
    assert main([*rd, "sample", run.id, "--n", "6", "--set", "psi=0.5", "--set", "noise=off",
                 "--out", str(tmp_path / "t.npz")]) == 0
    assert np.load(tmp_path / "t.npz")["images"].shape == (6, 1, 8, 8)
    assert main([*rd, "tool", run.id, "style-mixing", "--set", "rows=2", "--set", "columns=3",
                 "--out", str(tmp_path / "mix.png")]) == 0
    assert (tmp_path / "mix.png").is_file()
    capsys.readouterr()
    assert main([*rd, "sample", run.id, "--set", "psi=2", "--out", str(tmp_path / "x.png")]) == 2
    assert "psi" in capsys.readouterr().err


def test_bad_options_are_refused_before_a_run_exists(tmp_path):
    for option, match in (({"conditioning": "projection"}, "conditioning=none"),
                          ({"d_norm": "batch"}, "d_norm=none"),
                          ({"gradient_penalty": 10.0}, "gradient_penalty=0")):
        with pytest.raises(StudioError, match=match):
            tiny(tmp_path, "bad", **option)
    assert not any(tmp_path.iterdir())


def test_colour_folder_at_16_px(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (tmp_path / "pictures" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pictures" / label / f"{i}.png")
    run = start_run("stylegan", f"folder:{tmp_path / 'pictures'}",
                    config_overrides={**TINY_CONFIG, "image_size": 16},
                    trainer_overrides={**TINY_TRAINER, "steps": 2, "batch_size": 8,
                                       "sample_count": 4}, runs_dir=tmp_path / "runs")
    assert train_run(run) == "done"
    pipe = load_for_sampling(run.path)
    assert pipe.sample(3, seed=0).images.shape == (3, 3, 16, 16) and pipe.generator.num_ws == 6


def test_the_generators_width_is_picked_once_and_kept_with_the_run(tmp_path):
    """style_channels=0 picks by image size when the run begins (64 at 8 px since session 20)
    and run.json keeps it; a run begun before, with no such record, still builds the 32
    channels its weights were saved with."""
    run = start_run("stylegan", "digits", config_overrides={**TINY_CONFIG, "style_channels": 0},
                    trainer_overrides={**TINY_TRAINER, "steps": 1}, runs_dir=tmp_path)
    assert run.info()["data_info"]["style_channels"] == 64
    widths = [max(p.shape[0] for p in pipe.modules["generator"].parameters() if p.ndim == 4)
              for pipe in built_now_and_before(run, "style_channels")]
    assert widths == [128, 64]              # the 4x4 maps: twice 64 channels, twice 32
