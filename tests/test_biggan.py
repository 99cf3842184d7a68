"""BigGAN (pipelines/gan/biggan.py): it trains, resumes exactly and samples deterministically;
its evaluation adds the truncation curve; truncated draws are deterministic and inside the
threshold; it draws the classes asked for; orthogonal regularisation is zero exactly for
orthogonal filters; the mode-seeking term pairs fakes of one class; the truncation-curve tool
draws a picture; unlabelled data is refused."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.gan import losses as L
from pipelines.gan.biggan import CURVE_THRESHOLDS, orthogonal_penalty
from pipelines.gan.biggan_networks import Generator
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool

from helpers import built_now_and_before

# z_dim 9: 8 px images have two generator blocks, so z is cut into three chunks of 3.
TINY_CONFIG = {"width": 8, "z_dim": 9, "shared_dim": 8}
TINY_TRAINER = {"steps": 10, "batch_size": 16, "log_every": 1, "sample_every": 5,
                "checkpoint_every": 5, "sample_count": 10, "seed": 5, "final_eval": False}


def tiny(runs_dir, run_name, steps=10):
    return start_run("biggan", "digits", config_overrides=TINY_CONFIG,
                     trainer_overrides={**TINY_TRAINER, "steps": steps},
                     runs_dir=runs_dir, name=run_name)


def logged(run, after=0):
    return {r["step"]: {k: v for k, v in r.items() if k.startswith(("loss", "d_", "grad",
                                                                      "ortho"))}
            for r in run.metrics() if "loss_d" in r and r["step"] > after}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run (the judge, when a test needs it, is trained once in its runs folder)."""
    runs = tmp_path_factory.mktemp("biggan-runs")
    run = tiny(runs, "straight")
    assert train_run(run) == "done"
    return runs, run


def test_trains_resumes_exactly_and_samples_deterministically(trained):
    runs, straight = trained
    rows = logged(straight)
    assert len(rows) == 10 and all(math.isfinite(v) for r in rows.values() for v in r.values())
    # n_critic 2: the generator (and its orthogonal penalty) steps on every second step.
    assert [s for s, r in rows.items() if "loss_g" in r] == [2, 4, 6, 8, 10]
    assert all("ortho_reg" in r for r in rows.values() if "loss_g" in r)

    split = tiny(runs, "split", steps=5)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=10) == "done"
    assert logged(split, after=5) == logged(straight, after=5)

    pipe = load_for_sampling(straight.path)
    samples = pipe.sample(7, seed=2)
    assert samples.images.shape == (7, 1, 8, 8) and samples.images.dtype == np.float32
    assert 0 <= samples.images.min() and samples.images.max() <= 1
    assert np.array_equal(samples.images, pipe.sample(7, seed=2).images)
    # Image i comes from seed + i alone (and its class, which cycles from 0).
    assert np.allclose(pipe.sample(1, seed=4, labels=2).images[0], samples.images[2], atol=1e-5)


def test_evaluation_holds_the_truncation_curve_with_flat_numeric_keys(trained, monkeypatch):
    from pipelines.data import load_data
    from pipelines.gan import biggan
    runs, run = trained
    # Two thresholds of the five (each is a judged sample set, seconds on a CPU).
    monkeypatch.setattr(biggan, "CURVE_THRESHOLDS", (0.0, 0.5))
    ev = load_for_sampling(run.path).evaluate(load_data("digits"), runs / ".judges")
    assert "fd" in ev and "fd_floor" in ev and 0 <= ev["conditional_accuracy"] <= 1
    for t in (0.0, 0.5):
        for key in ("fd", "precision", "recall", "conditional_accuracy"):
            assert isinstance(ev[f"trunc_{t:.1f}_{key}"], float)
    assert ev["trunc_0.0_fd"] == ev["fd"]                  # threshold 0 is the untruncated set
    assert ev["trunc_0.5_fd"] != ev["fd"]
    assert len(CURVE_THRESHOLDS) == 5 and 0.0 in CURVE_THRESHOLDS


def test_truncated_draws_are_deterministic_and_within_the_threshold(trained):
    pipe = load_for_sampling(trained[1].path)
    z, _, _ = pipe.latents(list(range(200)), truncation=0.5)
    again, _, _ = pipe.latents(list(range(200)), truncation=0.5)
    assert torch.equal(z, again) and z.abs().max() <= 0.5 and z.std() > 0.2
    assert np.array_equal(pipe.sample(5, seed=9, truncation=1.0).images,
                          pipe.sample(5, seed=9, truncation=1.0).images)
    assert not np.array_equal(pipe.sample(5, seed=9, truncation=1.0).images,
                              pipe.sample(5, seed=9).images)


def test_conditional_sampling_draws_the_asked_classes(trained):
    pipe = load_for_sampling(trained[1].path)
    assert pipe.sample(6, seed=0, labels=3).labels.tolist() == [3] * 6
    asked = [9, 0, 4]
    drawn = pipe.sample(3, seed=0, labels=asked)
    assert drawn.labels.tolist() == asked
    # The class reaches the generator: the same seeds in another class draw other images.
    assert not np.array_equal(drawn.images, pipe.sample(3, seed=0, labels=[1, 1, 1]).images)
    with pytest.raises(StudioError, match="between 0 and 9"):
        pipe.sample(2, seed=0, labels=10)


def test_orthogonal_regularisation_is_zero_only_for_orthogonal_filters():
    q, _ = torch.linalg.qr(torch.randn(16, 16))
    conv_like = q[:8].reshape(8, 4, 2, 2)                   # 8 orthonormal filters of 4x2x2
    assert orthogonal_penalty([q]).item() == pytest.approx(0, abs=1e-8)
    assert orthogonal_penalty([conv_like]).item() == pytest.approx(0, abs=1e-8)
    # BigGAN's form leaves the norms free: orthogonal rows of any length cost nothing.
    assert orthogonal_penalty([q * torch.linspace(0.5, 3, 16)[:, None]]).item() == \
        pytest.approx(0, abs=1e-6)
    assert orthogonal_penalty([torch.randn(8, 12)]).item() > 0.1
    assert orthogonal_penalty([q, torch.randn(4, 4)]).item() > 0


def test_mode_seeking_pairs_fakes_of_one_class_and_grows_as_g_ignores_z(tmp_path,
                                                                        monkeypatch):
    z_a, z_b, fake = torch.randn(6, 9), torch.randn(6, 9), torch.randn(6, 1, 8, 8)
    assert L.mode_seeking(fake, fake, z_a, z_b) > 1e4                 # z ignored: huge
    apart = fake + (z_a - z_b).abs().mean()                           # as far apart as z
    assert L.mode_seeking(fake, apart, z_a, z_b).item() == pytest.approx(1, rel=1e-3)

    drawn = []                          # the classes G draws with a graph: generator steps
    forward = Generator.forward

    def recording(self, z, labels):
        if torch.is_grad_enabled():
            drawn.append(labels.clone())
        return forward(self, z, labels)
    monkeypatch.setattr(Generator, "forward", recording)
    run = start_run("biggan", "digits", config_overrides={**TINY_CONFIG, "mode_seeking": 0.1},
                    trainer_overrides={**TINY_TRAINER, "steps": 4, "sample_every": 0},
                    runs_dir=tmp_path)
    assert train_run(run) == "done"
    assert [s for s, r in logged(run).items() if "loss_mode_seeking" in r] == [2, 4]
    assert len(drawn) == 2 and all(y[:8].equal(y[8:]) for y in drawn)   # batches of 16


def test_truncation_curve_tool_draws_rows_and_the_curve(trained):
    runs, run = trained
    pipe = load_for_sampling(run.path)
    result = run_tool(pipe, "truncation-curve", {"thresholds": "0,1,0.5", "columns": 4,
                                                "judge": False}, cache_dir=runs / ".judges")
    assert result.images.shape == (12, 1, 8, 8) and result.columns == 4
    assert Image.open(io.BytesIO(result.figure_png)).format == "PNG"
    judged = run_tool(pipe, "truncation-curve", {"thresholds": "0.5,1", "columns": 3},
                      cache_dir=runs / ".judges")
    assert set(judged.values) >= {f"trunc_{t}_{key}" for t in ("0.5", "1.0") for key in
                                  ("fd", "precision", "recall", "conditional_accuracy")}
    picture = Image.open(io.BytesIO(judged.figure_png))
    assert picture.size[0] > Image.open(io.BytesIO(result.figure_png)).size[0]  # the curve too
    with pytest.raises(StudioError, match="thresholds"):
        run_tool(pipe, "truncation-curve", {"thresholds": "1,x"}, cache_dir=runs / ".judges")


def test_unlabelled_data_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(8):
        Image.fromarray((np.random.default_rng(i).random((16, 16, 3)) * 255)
                        .astype(np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(StudioError, match="has no classes") as refused:
        start_run("biggan", f"folder:{folder}", runs_dir=tmp_path / "runs", name="flat")
    assert "\n" not in str(refused.value)


def test_the_nets_width_is_picked_once_and_kept_with_the_run(tmp_path):
    """width=0 picks by image size when the run begins (48 at 8 px since session 21) and
    run.json keeps it; a run begun before, with no such record, still builds the 32 channels
    its weights were saved with."""
    run = start_run("biggan", "digits", config_overrides={**TINY_CONFIG, "width": 0},
                    trainer_overrides={**TINY_TRAINER, "steps": 1}, runs_dir=tmp_path)
    assert run.info()["data_info"]["width"] == 48
    nets = [pipe.modules["discriminator"] for pipe in built_now_and_before(run, "width")]
    first = [next(p for p in d.parameters() if p.ndim == 4).shape[0] for d in nets]
    assert first == [48, 32]              # D's first conv: width channels at 8 px
