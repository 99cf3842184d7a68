"""LAPGAN (pipelines/gan/lapgan.py): the Laplacian pyramid round trip is exact; the model
trains through the real trainer, resumes exactly and samples deterministically per seed; the
levels tool shows every level at the right sizes, and its finest level is sample()'s image."""

import math

import numpy as np
import pytest
import torch

from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.gan.lapgan import (LAPGAN, gaussian_pyramid, laplacian_pyramid, mode_seeking_loss,
                                  reconstruct, up)
from pipelines.services.loading import load_for_sampling

TINY_CONFIG = {"width": 4, "level_width": 8, "hidden": 16, "z_dim": 8, "self_conditioning": 4,
               "reconstruction": 1.0}
TINY_TRAINER = {"steps": 10, "batch_size": 16, "log_every": 1, "sample_every": 5,
                "checkpoint_every": 5, "sample_count": 6, "seed": 5, "final_eval": False}


def tiny(runs_dir, name, steps=10, **config):
    return start_run("lapgan", "digits", config_overrides={**TINY_CONFIG, **config},
                     trainer_overrides={**TINY_TRAINER, "steps": steps},
                     runs_dir=runs_dir, name=name)


def logged(run, after=0):
    return {r["step"]: {k: v for k, v in r.items() if k.startswith(("loss", "d_", "grad",
                                                                      "diversity"))}
            for r in run.metrics() if "loss_d" in r and r["step"] > after}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 10-step run on digits (4x4 coarse image, one 8x8 level), loaded for sampling."""
    runs = tmp_path_factory.mktemp("lapgan-runs")
    run = tiny(runs, "straight")
    assert train_run(run) == "done"
    return runs, run, load_for_sampling(run.path)


def test_pyramid_of_a_real_image_reconstructs_it_exactly():
    from pipelines.data import load_data
    digits = torch.from_numpy(load_data("digits").train_images[:4]) * 2 - 1     # (4, 1, 8, 8)
    colour = torch.rand(2, 3, 32, 32) * 2 - 1
    for image, levels, sizes in ((digits, 2, [4, 8]), (colour, 3, [8, 16, 32])):
        coarse, residuals = laplacian_pyramid(image, levels)
        assert [coarse.shape[-1]] + [h.shape[-1] for h in residuals] == sizes
        torch.testing.assert_close(reconstruct(coarse, residuals), image, atol=1e-6, rtol=0)
        # Each level of the image is the coarser one upsampled plus that level's residual.
        g = gaussian_pyramid(image, levels)
        for k, h in enumerate(residuals, start=1):
            torch.testing.assert_close(up(g[k - 1]) + h, g[k], atol=1e-6, rtol=0)
        assert residuals[-1].abs().sum() > 0
    # Band-pass: a flat image has no detail at any level; its coarse image is itself.
    coarse, residuals = laplacian_pyramid(torch.full((1, 3, 16, 16), 0.3), 3)
    assert all(h.abs().max() < 1e-6 for h in residuals)
    torch.testing.assert_close(coarse, torch.full((1, 3, 4, 4), 0.3))


def test_trains_and_resumes_exactly(trained):
    runs, straight, pipe = trained
    assert not any(isinstance(m, torch.nn.BatchNorm2d)       # d_norm auto: none at 8 px
                   for m in pipe.modules["discriminator"].modules())
    rows = logged(straight)
    assert len(rows) == 10 and all(math.isfinite(v) for r in rows.values() for v in r.values())
    assert all({"loss_g", "d_real_0", "d_fake_1", "diversity_1", "grad_norm_d",
                "loss_mode_seeking", "loss_reconstruction"} <= set(r)
               for r in rows.values())
    split = tiny(runs, "split", steps=5)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=10) == "done"
    assert logged(split, after=5) == logged(straight, after=5)


def test_the_coarse_gan_draws_its_own_images_from_the_training_set(trained):
    """coarse_batch (0 picks 64 apart for digits' fully connected 4x4 nets; the runs above
    train and resume exactly with it): every training digit's 4x4 image in [-1, 1], with its
    cluster, drawn by the training RNG."""
    from pipelines.data import load_data
    _, _, pipe = trained
    assert pipe.coarse_images() == 64
    pipe.train_tensors(load_data("digits"))
    torch.manual_seed(0)
    coarse, clusters = pipe.draw_coarse(40, "cpu")
    assert coarse.shape == (40, 1, 4, 4) and coarse.min() >= -1 and coarse.max() <= 1
    assert clusters.shape == (40,) and 0 <= clusters.min() and clusters.max() < 4
    torch.manual_seed(0)
    assert torch.equal(pipe.draw_coarse(40, "cpu")[0], coarse)


def test_sampling_is_deterministic_per_seed_and_walks_end_on_the_seeds(trained):
    _, _, pipe = trained
    samples = pipe.sample(5, seed=3).images
    assert samples.shape == (5, 1, 8, 8) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_array_equal(samples, pipe.sample(5, seed=3).images)
    # Image i of a batch is seed + i's alone (its noise at every level and its cluster).
    np.testing.assert_allclose(samples[4], pipe.sample(1, seed=7).images[0], atol=1e-6)
    walk = pipe.interpolate(3, 9, 5).images
    np.testing.assert_allclose(walk[0], pipe.sample(1, 3).images[0], atol=1e-5)
    np.testing.assert_allclose(walk[-1], pipe.sample(1, 9).images[0], atol=1e-5)
    truncated = pipe.sample(3, seed=3, truncation=0.5).images
    assert not np.allclose(truncated, samples[:3])


def test_levels_tool_shows_every_level_and_ends_on_the_sample(trained):
    _, _, pipe = trained
    result = pipe.levels(None, rows=3, seed=11, residuals=True, truncation=0.0)
    assert result.columns == 3 and result.images.shape == (9, 1, 8, 8)  # 4x4, 8x8, residual
    assert 0 <= result.images.min() and result.images.max() <= 1
    again = pipe.levels(None, rows=3, seed=11, residuals=True, truncation=0.0)
    np.testing.assert_array_equal(result.images, again.images)
    grid = result.images.reshape(3, 3, 1, 8, 8)
    np.testing.assert_allclose(grid[:, 1], pipe.sample(3, seed=11).images, atol=1e-6)
    # The coarse column is the 4x4 image enlarged: constant on each 2x2 block.
    coarse = grid[:, 0]
    np.testing.assert_array_equal(coarse, np.repeat(np.repeat(coarse[..., ::2, ::2], 2, 2), 2, 3))
    plain = pipe.levels(None, rows=2, seed=11, residuals=False, truncation=0.0)
    assert plain.columns == 2 and plain.images.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(plain.images.reshape(2, 2, 1, 8, 8), grid[:2, :2])


def test_mode_seeking_term_is_large_for_a_level_that_ignores_its_noise():
    """Mao et al. (2019): 1 / (|G(l, z1) - G(l, z2)| / |z1 - z2|). A level that copies its
    noise into the residual scores 1; one that ignores the noise scores 1e5."""
    torch.manual_seed(0)
    cond, noise = torch.rand(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    copies = lambda c, z, y: z                                       # noqa: E731
    ignores = lambda c, z, y: c * 0.5                                # noqa: E731
    assert mode_seeking_loss(copies, cond, noise, noise, None).item() == pytest.approx(1, 1e-4)
    assert mode_seeking_loss(ignores, cond, cond * 0.5, noise, None).item() == pytest.approx(1e5)
    # Through the gradient it pushes the level's output to follow its noise.
    g = torch.nn.Conv2d(2, 1, 3, padding=1)
    residual = g(torch.cat([cond, noise], 1))
    loss = mode_seeking_loss(lambda c, z, y: g(torch.cat([c, z], 1)), cond, residual, noise, None)
    loss.backward()
    assert g.weight.grad.abs().sum() > 0


def test_three_levels_at_32_px_colour():
    """An untrained 32 px colour model: coarse 8x8, then 16 and 32; sample() is the finest."""
    pipe = LAPGAN(LAPGAN.Config(width=4, level_width=4, hidden=16, z_dim=8,
                                self_conditioning=0),
                  {"channels": 3, "image_size": 32, "num_classes": 5})
    for module in pipe.modules.values():
        module.eval()
    assert pipe.level_sizes() == [8, 16, 32]
    # d_norm "auto" (the default): batch norm in every discriminator from 32 px, none below.
    has_bn = lambda net: any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # noqa: E731
    assert all(has_bn(d) for d in pipe.modules["discriminator"].levels)
    assert has_bn(pipe.modules["discriminator"].base)
    assert pipe.noise_dims == 8 + 16 * 16 + 32 * 32
    assert pipe.coarse_images() == 0     # conv coarsest nets: the batch's own images
    result = pipe.levels(None, rows=2, seed=4, residuals=True, truncation=0.0)
    assert result.columns == 5 and result.images.shape == (10, 3, 32, 32)
    np.testing.assert_allclose(result.images.reshape(2, 5, 3, 32, 32)[:, 2],
                               pipe.sample(2, seed=4).images, atol=1e-6)


def test_levels_tool_from_the_cli(trained, tmp_path):
    runs, run, _ = trained
    out = tmp_path / "levels.png"
    assert main(["--runs-dir", str(runs), "tool", run.id, "levels", "--set", "rows=2",
                 "--out", str(out)]) == 0
    assert out.is_file()


def test_bad_options_are_refused_before_a_run_exists(tmp_path):
    with pytest.raises(StudioError, match="base_size"):
        tiny(tmp_path, "bad1", base_size=8)          # digits are 8 px: no finer level
    with pytest.raises(StudioError, match="base_size"):
        tiny(tmp_path, "bad2", base_size=6)          # not a power of two
    with pytest.raises(StudioError, match="info_categories=0"):
        tiny(tmp_path, "bad3", info_categories=10)
    with pytest.raises(StudioError, match="d_norm=none"):
        tiny(tmp_path, "bad4", gradient_penalty=10)
    assert not any(tmp_path.iterdir())
