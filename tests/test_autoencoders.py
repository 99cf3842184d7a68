"""Autoencoders and VAEs: every model trains and resumes exactly; the losses match closed forms,
finite differences and hand-computed cases; the VQ codebook moves as it should; collapse is
flagged; non-digits score as anomalies; every tool runs through `studio tool`."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import pipelines.metrics
from pipelines.autoencoders.losses import (corrupt, gaussian_kl, jacobian_frobenius2,
                                           recon_nll, slerp, sparsity_kl)
from pipelines.autoencoders.latent_mixture import LatentMixture
from pipelines.autoencoders.networks import AENet
from pipelines.autoencoders.config import ContractiveAEConfig
from pipelines.autoencoders.vqvae import Codebook
from pipelines.cli import main
from pipelines.core.checkpoints import load_weights
from pipelines.data import load_data
from pipelines.data.shapes import make_shapes
from pipelines.services.loading import load_for_sampling
from pipelines.core.runs import RunFolder
from pipelines.services.sampling import run_tool
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

from helpers import TINY

TRAINER = {**TINY, "final_eval": True}   # the end-of-run evaluation is part of what is tested

MODELS = ("ae", "dae", "sparse-ae", "contractive-ae", "vae", "beta-vae", "cvae", "vqvae")
SMALL = {"hidden": 32, "depth": 1, "latent_dim": 4, "width": 8}
TINY_CONFIG = {name: dict(SMALL) for name in MODELS}
TINY_CONFIG["vqvae"] = {**SMALL, "codebook_size": 8, "dead_code_steps": 2}


@pytest.fixture(autouse=True)
def judge_stub(monkeypatch):
    """The judge (a CNN trained per data set) has its own tests; here its call is recorded."""
    calls = []

    def judge_samples(data, images, labels=None, *, cache_dir, seed=0, draws=1):
        calls.append({"images": images, "labels": labels, "draws": draws})
        return {"fd": 1.0, "fd_floor": 0.5}

    monkeypatch.setattr(pipelines.metrics, "judge_samples", judge_samples)
    return calls


def tiny(runs_dir, pipeline, name="t", callbacks=(), config=None, **trainer):
    config = {**TINY_CONFIG[pipeline], **(config or {})}
    run = start_run(pipeline, "digits", config_overrides=config,
                    trainer_overrides={**TRAINER, **trainer}, runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


def records(run):
    """Every logged line, without its wall time: what an exact resume must repeat."""
    return [{k: v for k, v in r.items() if k != "time"} for r in run.metrics()
            if not any(k.startswith("eval/") for k in r)]


# --- every model ------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", MODELS)
def test_each_model_trains_samples_and_resumes_exactly(runs_dir, pipeline, judge_stub):
    whole, status = tiny(runs_dir, pipeline, name="whole")
    assert status == "done"
    logged = records(whole)
    assert [r["step"] for r in logged] == list(range(1, 9))
    assert all(math.isfinite(v) for r in logged for v in r.values() if isinstance(v, float))
    assert "val/recon" in logged[-1] and "val/mse" in logged[-1]

    def stop_at_3(kind, event):
        if kind == "log" and event["step"] == 3:
            RunFolder(runs_dir / event["run"]).request_stop()

    part, status = tiny(runs_dir, pipeline, name="part", callbacks=(stop_at_3,))
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == logged                  # every number, before and after the stop

    pipe = load_for_sampling(whole.path)
    before = torch.get_rng_state()
    a, b = pipe.sample(10, seed=4), pipe.sample(10, seed=4)
    assert torch.equal(before, torch.get_rng_state())   # sampling leaves the global RNG alone
    assert a.images.shape == (10, 1, 8, 8) and a.images.dtype == np.float32
    assert 0 <= a.images.min() and a.images.max() <= 1
    assert np.array_equal(a.images, b.images)
    evaluated = whole.info()["eval"]
    assert evaluated["val_mse"] > 0
    assert ("fd" in evaluated) == pipe.draws_samples   # samplers are judged, the others not


def test_plain_autoencoder_grid_pairs_inputs_with_reconstructions(runs_dir):
    run, _ = tiny(runs_dir, "ae")
    pipe = load_for_sampling(run.path)
    images = pipe.sample(6, seed=0).images               # x0 r0 x1 r1 x2 r2
    val = load_data("digits").val_images
    for x in images[0::2]:
        assert any(np.array_equal(x, v) for v in val)
    three = pipe.sample(6, seed=0, labels=3).images[0::2]
    labels = load_data("digits").val_labels
    assert all(labels[[np.array_equal(x, v) for v in val].index(True)] == 3 for x in three)


def test_vae_judges_its_prior_samples_and_the_cvae_its_classes(runs_dir, judge_stub):
    tiny(runs_dir, "cvae")
    call = judge_stub[-1]
    # Half the 1,797 real digits (898), in whole rounds of the 10 classes: 890, ten draws of
    # them, each cycling the classes from the first.
    assert call["images"].shape == (10 * 890, 1, 8, 8) and call["draws"] == 10
    assert (call["labels"].reshape(10, 890) == np.arange(890) % 10).all()
    pipe = load_for_sampling(RunFolder(next(runs_dir.iterdir())).path)
    assert (pipe.sample(5, seed=0, labels=7).labels == 7).all()
    walk = pipe.interpolate(1, 2, frames=6, labels=4)
    assert walk.images.shape == (6, 1, 8, 8) and (walk.labels == 4).all()


def test_vae_samples_from_the_mixture_fitted_to_its_best_weights(runs_dir, tmp_path):
    run, _ = tiny(runs_dir, "vae", config={"prior_components": 3})
    pipe = load_for_sampling(run.path)                   # the best weights
    saved = {k: v.clone() for k, v in pipe.net.prior.state_dict().items()}
    assert pipe.net.prior.is_fitted and saved["log_weights"].exp().sum().item() == \
        pytest.approx(1.0)
    pipe.on_new_best(load_data("digits"))                # refit to the same weights: the same
    assert all(torch.equal(saved[k], v) for k, v in pipe.net.prior.state_dict().items())
    fitted, standard = pipe.sample(6, seed=1), pipe.sample(6, seed=1, prior="standard")
    assert not np.allclose(fitted.images, standard.images)

    # A file written before VAEs had a mixture loads unfitted and draws from N(0, I).
    tensors, meta = load_weights(run.sampling_weights_path)
    old = tmp_path / "old.safetensors"
    save_file({k: v for k, v in tensors.items() if ".prior." not in k}, old, meta)
    pipe = load_for_sampling(old)
    assert not pipe.net.prior.is_fitted
    assert np.array_equal(pipe.sample(6, seed=1).images, standard.images)


def test_latent_mixture_draws_each_class_from_its_own_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]])        # class 0: 0 and 1; 1: 2
    points = np.concatenate([c + 0.3 * rng.standard_normal((200, 2)) for c in centres])
    classes = np.repeat([0, 0, 1], 200)
    mixture = LatentMixture(groups=2, components=2, dim=2)
    mixture.fit(points, classes)
    generator = torch.Generator().manual_seed(0)
    z = mixture.draw(600, generator, torch.tensor([0, 1] * 300)).numpy()
    nearest = np.linalg.norm(z[:, None] - centres[None], axis=2).argmin(1)
    assert (nearest[1::2] == 2).all()                                # class 1: its one cluster
    assert set(nearest[0::2]) == {0, 1} and abs((nearest[0::2] == 0).mean() - 0.5) < 0.1
    assert (z[1::2] - centres[2]).std(0) == pytest.approx([0.3, 0.3], abs=0.05)
    tight = mixture.draw(600, torch.Generator().manual_seed(0), torch.ones(600), 0.5).numpy()
    assert (tight - centres[2]).std(0) == pytest.approx([0.15, 0.15], abs=0.03)


# --- the losses against what they should be ---------------------------------------------
def test_kl_matches_its_closed_form_and_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    exact = torch.distributions.kl_divergence(q, p)
    assert torch.allclose(gaussian_kl(mu, logvar).double(), exact, atol=1e-6)
    z = q.sample((200_000,))
    estimate = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar).double(), estimate, atol=0.03)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0   # q = prior


def test_reconstruction_nll_is_the_likelihood_in_nats_per_image():
    x = torch.tensor([[[[0.0, 1.0], [0.25, 1.0]]]])
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert torch.allclose(recon_nll(logits, x), bce.reshape(1), atol=1e-6)
    gauss = torch.distributions.Normal(p, 0.2).log_prob(x).sum()
    assert torch.allclose(recon_nll(logits, x, "gaussian", 0.2), -gauss.reshape(1), atol=1e-5)


def test_contractive_penalty_matches_a_finite_difference_jacobian():
    torch.manual_seed(0)
    config = ContractiveAEConfig(hidden=12, depth=2, latent_dim=3)
    net = AENet(config, {"channels": 1, "image_size": 4}, code="sigmoid").double()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    h = 1e-6
    expected = []
    for image in x:
        columns = []
        for i in range(image.numel()):
            step = torch.zeros(image.numel(), dtype=torch.float64)
            step[i] = h
            step = step.view_as(image)
            columns.append((net.encode((image + step)[None]) - net.encode((image - step)[None]))[0]
                           / (2 * h))
        expected.append(torch.stack(columns, 1).pow(2).sum())   # ||J||_F^2, J is (3, 16)
    penalty = jacobian_frobenius2(net.encode, x)
    assert torch.allclose(penalty, torch.stack(expected), rtol=1e-6)
    penalty.sum().backward()                            # it trains: gradients reach the encoder
    assert net.encoder.trunk[1].weight.grad.abs().sum() > 0
    with torch.no_grad():                               # and validation measures it too
        assert torch.allclose(jacobian_frobenius2(net.encode, x), penalty.detach())


def test_sparse_penalty_matches_a_hand_computed_case():
    code = torch.tensor([[0.1, 0.5], [0.3, 0.5]])      # mean activations 0.2 and 0.5
    # rho = 0.1: unit 1, 0.1 ln(0.1/0.2) + 0.9 ln(0.9/0.8) = 0.036690;
    #            unit 2, 0.1 ln(0.1/0.5) + 0.9 ln(0.9/0.5) = 0.368064
    assert sparsity_kl(code, 0.1).item() == pytest.approx(0.404755, abs=1e-5)
    assert sparsity_kl(torch.full((4, 3), 0.05), 0.05).item() == pytest.approx(0.0, abs=1e-7)


def test_corruptions_do_what_they_say():
    x = torch.full((4, 1, 16, 16), 0.5)
    g = lambda: torch.Generator().manual_seed(1)       # noqa: E731
    masked = corrupt(x, "masking", 0.3, g())
    assert set(masked.unique().tolist()) == {0.0, 0.5}
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.05)
    salted = corrupt(x, "salt-and-pepper", 0.2, g())
    assert set(salted.unique().tolist()) == {0.0, 0.5, 1.0}
    assert (salted != 0.5).float().mean().item() == pytest.approx(0.2, abs=0.05)
    noisy = corrupt(x, "gaussian", 0.1, g())
    assert 0 <= noisy.min() and noisy.max() <= 1
    assert (noisy - x).std().item() == pytest.approx(0.1, abs=0.01)
    assert torch.equal(corrupt(x, "gaussian", 0.1, g()), noisy)   # a seed repeats it


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_unit_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)


# --- the VQ codebook ---------------------------------------------------------------------
def test_codebook_ema_moves_each_code_toward_the_mean_of_what_it_drew():
    book = Codebook(k=3, d=2, ema=True, decay=0.5, dead_code_steps=0).train()
    book.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, -10.0]]))
    book.embed_sum.copy_(book.embed)                    # cluster_size starts at 1
    z_e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])   # two to code 0, one to code 1
    z_q, codes, reset = book(z_e.T.reshape(1, 2, 1, 3))   # (B=1, D=2, 1, 3)
    assert codes.flatten().tolist() == [0, 0, 1] and reset == 0
    assert torch.equal(z_q.reshape(2, 3).T, torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]]))
    size = torch.tensor([0.5 + 0.5 * 2, 0.5 + 0.5 * 1, 0.5])   # decay * 1 + (1 - decay) * n
    total = torch.tensor([[0.5, 0.5], [9.5, 9.5], [-5.0, -5.0]])   # decay * e + (1 - decay) * sum
    assert torch.allclose(book.cluster_size, size)
    assert torch.allclose(book.embed_sum, total)
    assert torch.allclose(book.embed, total / size[:, None], atol=1e-4)   # up to smoothing


def test_a_code_unused_for_dead_code_steps_is_moved_onto_the_data():
    torch.manual_seed(0)
    book = Codebook(k=3, d=2, ema=False, dead_code_steps=3).train()
    with torch.no_grad():
        book.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, -10.0]]))
    book.unused.zero_()
    data = torch.randn(1, 2, 4, 4) * 0.1                 # every vector lands on code 0
    resets = [book(data)[2] for _ in range(2)]
    assert resets == [0, 0] and book.unused.tolist() == [0, 2, 2]
    assert torch.equal(book.embed[1].detach(), torch.tensor([10.0, 10.0]))
    assert book(data)[2] == 2                            # third unused step: codes 1, 2 move
    vectors = data.permute(0, 2, 3, 1).reshape(-1, 2)
    for code in (1, 2):
        assert (vectors == book.embed[code].detach()).all(1).any()
    assert book.unused.tolist() == [0, 0, 0]
    book.eval()
    book(data * 100)                                     # no training step, no change
    assert book.unused.tolist() == [0, 0, 0]


def test_a_fresh_codebook_seeds_its_unchosen_codes_from_the_first_batch(runs_dir):
    run, _ = tiny(runs_dir, "vqvae", steps=1, sample_every=0, checkpoint_every=0)
    first = run.metrics()[0]
    assert first["codes_reset"] >= 1 and first["val/usage"] > 1 / 8


# --- warnings ------------------------------------------------------------------------------
def test_posterior_collapse_is_flagged_in_the_metrics_and_the_status_line(runs_dir):
    run, _ = tiny(runs_dir, "vae", steps=30, config={"beta": 200.0, "kl_warmup_steps": 0},
                  log_every=10, sample_every=0, checkpoint_every=0)
    last = records(run)[-1]
    assert "posterior collapse" in last["warning"] and last["val/active_units"] <= 1
    assert "posterior collapse" in run.info()["warning"]
    pipe = load_for_sampling(run.path)
    assert pipe.log_warnings({"val/active_units": 4, "val/kl": 6.0}) == []


# --- anomaly scores -------------------------------------------------------------------------
def _png(path, array):
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_noise_and_a_shape_score_clearly_higher_than_validation_digits(runs_dir, tmp_path):
    # A small, short VAE (2 layers of 128: the 3-layer default needs more than 400 steps).
    run = start_run("vae", "digits", config_overrides={"hidden": 128, "depth": 2},
                    trainer_overrides={"steps": 400, "batch_size": 64, "log_every": 400,
                                       "sample_every": 0, "checkpoint_every": 0,
                                       "final_eval": False},
                    runs_dir=runs_dir)
    train_run(run)
    pipe = load_for_sampling(run.path)
    data = load_data("digits")
    rng = np.random.default_rng(0)
    shape = make_shapes(32, count=1)[0][0].transpose(1, 2, 0)        # (32, 32, 3) colour
    paths = [_png(tmp_path / "noise.png", rng.random((8, 8))),
             _png(tmp_path / "shape.png", shape)]
    paths += [_png(tmp_path / f"digit{i}.png", data.val_images[i, 0]) for i in range(3)]
    result = run_tool(pipe, "anomaly", {}, input_paths=paths, cache_dir=tmp_path)
    v = result.values
    print(result.text)
    for key in ("mse", "neg_elbo"):
        p99 = v[f"val.{key}.p99"]
        for odd in (0, 1):                                # noise, shape: above every digit,
            assert v[f"image_{odd}.{key}_percentile"] == 100
            assert v[f"image_{odd}.{key}_z"] > 3          # by more than 3 standard deviations
        for digit in (2, 3, 4):
            assert v[f"image_{digit}.{key}"] < p99
    assert min(v["image_0.mse"], v["image_1.mse"]) > 2 * v["val.mse.p99"]
    assert result.images.shape == (10, 1, 8, 8) and result.columns == 2


# --- tools ---------------------------------------------------------------------------------
@pytest.fixture
def digit_pngs(tmp_path):
    val = load_data("digits").val_images
    return [_png(tmp_path / f"d{i}.png", val[i, 0]) for i in range(3)]


@pytest.mark.parametrize("pipeline", ["cvae", "vqvae", "sparse-ae"])
def test_every_tool_runs_and_returns_what_it_says(runs_dir, tmp_path, digit_pngs, pipeline):
    run, _ = tiny(runs_dir, pipeline)
    pipe = load_for_sampling(run.path)

    def tool(name, options=None, inputs=None):
        return run_tool(pipe, name, options or {}, input_paths=inputs, cache_dir=tmp_path)

    out = tool("reconstruct", inputs=digit_pngs)
    assert out.images.shape == (6, 1, 8, 8) and out.columns == 2 and len(out.values) == 3
    out = tool("interpolate", {"a": 5, "b": 9, "frames": 4})
    assert out.images.shape == (6, 1, 8, 8) and out.columns == 6
    val = load_data("digits").val_images
    assert np.array_equal(out.images[0], val[5]) and np.array_equal(out.images[-1], val[9])
    out = tool("interpolate", {"frames": 3}, digit_pngs[1:])   # two given images instead
    assert out.images.shape == (5, 1, 8, 8)
    assert np.allclose(out.images[0], val[1], atol=1 / 255) and np.allclose(out.images[-1], val[2], atol=1 / 255)
    out = tool("latent-map")
    assert out.figure_png.startswith(b"\x89PNG") and out.values["points"] == 180
    out = tool("denoise", {"corruption": "salt-and-pepper", "noise_level": 0.2}, digit_pngs)
    assert out.images.shape == (9, 1, 8, 8) and out.columns == 3
    assert set(out.values) == {"mse_noisy", "mse_denoised"}
    assert tool("denoise", {"corruption": "none"}, digit_pngs).columns == 2
    out = tool("anomaly", inputs=digit_pngs[:1])
    assert {"image_0.mse", "image_0.mse_percentile", "val.mse.mean"} <= set(out.values)
    if pipe.draws_samples and pipeline != "vqvae":
        assert "image_0.neg_elbo" in out.values
    if pipeline == "vqvae":
        out = tool("codes", inputs=digit_pngs)
        assert out.images.shape == (9, 3, 8, 8) and out.columns == 3
        assert len(out.values["image_0.codes"].split(" / ")) == 4      # a 4x4 map
        assert "traverse" not in [t.name for t in pipe.tools]
    else:
        out = tool("traverse", {"dims": 3, "steps": 5})
        assert out.images.shape == (15, 1, 8, 8) and out.columns == 5


def test_tools_from_the_command_line(runs_dir, tmp_path, digit_pngs, capsys):
    run, _ = tiny(runs_dir, "vae")
    assert main(["tool", run.id]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("reconstruct", "traverse", "latent-map", "anomaly"))
    assert main(["tool", run.id, "latent-map", "--out", str(tmp_path / "map.png")]) == 0
    assert Image.open(tmp_path / "map.png").size[0] > 300
    assert main(["tool", run.id, "traverse", "--set", "dims=2", "--out",
                 str(tmp_path / "t.png")]) == 0
    assert main(["tool", run.id, "anomaly", "--input", *digit_pngs, "--out",
                 str(tmp_path / "a.json")]) == 0
    assert "image_2.neg_elbo" in json.loads((tmp_path / "a.json").read_text())
    assert main(["sample", run.id, "--interpolate", "1", "2", "--frames", "5", "--out",
                 str(tmp_path / "walk.gif")]) == 0
    assert main(["tool", run.id, "reconstruct"]) == 2   # needs --input: one line, exit 2
