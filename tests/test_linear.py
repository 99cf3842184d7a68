"""The linear family (probabilistic PCA, factor analysis): gradient training reaches
scikit-learn's maximum-likelihood fit, resumes exactly, samples repeat per seed, the
components tool shows the mean and the loadings, and bad requests are refused in one line."""

import math

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool

TRAINER = {"steps": 1000, "batch_size": 256, "log_every": 100, "sample_every": 0,
           "checkpoint_every": 500, "seed": 3, "final_eval": False}


def run_of(name, runs_dir, run_name, **trainer):
    return start_run(name, "digits", config_overrides={"latent_dim": 8},
                     trainer_overrides={**TRAINER, **trainer}, runs_dir=runs_dir, name=run_name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("linear-runs")


@pytest.fixture(scope="module")
def trained(runs):
    out = {}
    for name in ("ppca", "factor-analysis"):
        run = run_of(name, runs, name)
        assert train_run(run) == "done"
        out[name] = (run, load_for_sampling(run.path, device="cpu"))
    return out


@pytest.mark.parametrize("name", ["ppca", "factor-analysis"])
def test_training_reaches_the_maximum_likelihood_fit(name, trained):
    run, pipe = trained[name]
    data = load_data("digits")
    scores = pipe.evaluate(data)            # no cache folder: the likelihoods, not the judge
    # Gradient training of the exact likelihood ends within 0.02 nats per pixel of
    # scikit-learn's fit of the same model (PCA's closed form: the maximum itself).
    assert math.isfinite(scores["val_nll_per_dim"])
    assert abs(scores["val_nll_per_dim"] - scores["reference_val_nll_per_dim"]) < 0.02
    first = next(r for r in run.metrics() if "val/nll_per_dim" in r)["val/nll_per_dim"]
    assert scores["val_nll_per_dim"] < first - 0.05          # and it learned on the way


def test_resume_is_exact(trained, runs):
    straight = trained["ppca"][0]
    split = run_of("ppca", runs, "split", steps=500)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=1000) == "done"
    rows = lambda run: [(r["step"], r["nll_per_dim"]) for r in run.metrics()  # noqa: E731
                        if "nll_per_dim" in r and r["step"] > 500]
    assert rows(split) == rows(straight)


def test_samples_repeat_per_seed_and_interpolation_ends_at_the_seeds(trained):
    _, pipe = trained["ppca"]
    batch = pipe.sample(4, 10).images
    assert batch.shape == (4, 1, 8, 8) and 0 <= batch.min() and batch.max() <= 1
    np.testing.assert_allclose(pipe.sample(1, 13).images[0], batch[3], atol=1e-6)  # alone
    noisy = pipe.sample(4, 10, add_noise=True).images
    assert np.abs(noisy - batch).max() > 1e-3
    walk = pipe.interpolate(10, 11, 5).images
    np.testing.assert_allclose(walk[0], batch[0], atol=1e-6)
    np.testing.assert_allclose(walk[-1], batch[1], atol=1e-6)


def test_components_tool_shows_the_mean_then_the_loadings(trained, tmp_path):
    _, pipe = trained["factor-analysis"]
    result = run_tool(pipe, "components", {"count": "5"}, cache_dir=tmp_path)
    assert result.images.shape == (6, 1, 8, 8)
    mean = pipe.modules["model"].mean.detach().clamp(0, 1).reshape(1, 8, 8).numpy()
    np.testing.assert_allclose(result.images[0], mean, atol=1e-6)
    norms = result.values["loading_norms"]
    assert norms == sorted(norms, reverse=True) and len(norms) == 5


def test_bad_requests_are_refused_in_one_line(trained, runs, tmp_path, capsys):
    _, pipe = trained["ppca"]
    with pytest.raises(StudioError, match="not class-conditional"):
        pipe.sample(2, 0, labels=3)
    with pytest.raises(StudioError, match="latent_dim must be below the 64 pixels"):
        start_run("ppca", "digits", config_overrides={"latent_dim": 64}, runs_dir=tmp_path)
    assert main(["--runs-dir", str(tmp_path), "train", "ppca", "--data", "shakespeare"]) == 2
    assert "needs image data" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
