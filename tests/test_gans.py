"""The GAN family: every variant trains, samples and resumes; the gradient penalty, spectral
norm, slerp and truncation do what they claim; the sampling controls and tools work from the
CLI."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.cli import main
from pipelines.gan import VARIANTS, slerp, truncated_normal
from pipelines.gan import losses as L
from pipelines.gan.networks import ConvDiscriminator, group_variance
from pipelines.services.loading import load_for_sampling
from pipelines.registry import list_pipelines
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

TINY_CONFIG = {"width": 8, "z_dim": 8, "hidden": 32}
TINY_TRAINER = {"steps": 10, "batch_size": 16, "log_every": 1, "sample_every": 5,
                "checkpoint_every": 5, "sample_count": 10, "seed": 5, "final_eval": False}
NAMES = [cls.name for cls in VARIANTS]


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory):
    """One runs folder for the module, so the quality judge is trained once and reused."""
    return tmp_path_factory.mktemp("gan-runs")


def tiny(name, runs_dir, run_name, steps=10, final_eval=False, **config):
    run = start_run(name, "digits", config_overrides={**TINY_CONFIG, **config},
                    trainer_overrides={**TINY_TRAINER, "steps": steps, "final_eval": final_eval},
                    runs_dir=runs_dir, name=run_name)
    return run


def logged(run, after=0):
    return {r["step"]: {k: v for k, v in r.items() if k.startswith(("loss", "d_", "grad"))}
            for r in run.metrics() if "loss_d" in r and r["step"] > after}


def test_every_variant_is_registered():
    assert set(NAMES) <= {e.name for e in list_pipelines()}
    assert set(NAMES) == {"gan", "dcgan", "cgan", "wgan", "wgan-gp", "lsgan", "sngan", "infogan"}


@pytest.mark.parametrize("name", NAMES)
def test_variant_trains_samples_and_resumes_exactly(name, shared_runs):
    straight = tiny(name, shared_runs, f"{name}-straight", final_eval=True)
    assert train_run(straight) == "done"
    rows = logged(straight)
    assert len(rows) == 10 and all(math.isfinite(v) for r in rows.values() for v in r.values())
    # A generator loss is logged on generator steps only (every n_critic-th step).
    assert any("loss_g" in r for r in rows.values())
    assert "fd" in straight.info()["eval"] and "fd_floor" in straight.info()["eval"]
    if name == "infogan":
        # Its categories are mapped to classes for conditional accuracy, but its samples are
        # judged as an unconditional model's: its floor is an unconditional copy of the
        # training split, not class-matched.
        from pipelines.data import load_data
        from pipelines.metrics import judge_samples
        ev = straight.info()["eval"]
        assert "->" in ev["category_to_class"] and 0 <= ev["conditional_accuracy"] <= 1
        unconditional = judge_samples(load_data("digits"), np.zeros((ev["n"], 1, 8, 8)),
                                      cache_dir=shared_runs / ".judges")
        assert ev["fd_floor"] == pytest.approx(unconditional["fd_floor"])

    # Train 5 steps, then resume to 10: the same losses as the uninterrupted run.
    split = tiny(name, shared_runs, f"{name}-split", steps=5)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=10) == "done"
    assert logged(split, after=5) == logged(straight, after=5)

    pipe = load_for_sampling(straight.path)
    samples = pipe.sample(7, seed=2)
    assert samples.images.shape == (7, 1, 8, 8) and samples.images.dtype == np.float32
    assert 0 <= samples.images.min() and samples.images.max() <= 1


def test_wasserstein_diagnostics_are_logged(shared_runs):
    run = tiny("wgan-gp", shared_runs, "diag", n_critic=5)
    train_run(run)
    rows = [r for r in run.metrics() if "loss_d" in r]
    assert all("gradient_penalty" in r and "wasserstein_estimate" in r and "diversity" in r
               and "grad_norm_d" in r for r in rows)
    # n_critic = 5: the generator stepped at steps 5 and 10 only.
    assert [r["step"] for r in rows if "loss_g" in r] == [5, 10]


def test_gradient_penalty_matches_hand_computation():
    # A linear critic C(x) = <w, x>: grad_x C = w everywhere, so the penalty is (|w| - 1)^2.
    w = torch.tensor([[[[3.0, 0.0], [0.0, 4.0]]]])          # (1, 1, 2, 2), |w| = 5
    linear = lambda x, labels: ((x * w).flatten(1).sum(1), None)  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    gp = L.gradient_penalty(linear, real, fake, None, torch.rand(4))
    assert gp.item() == pytest.approx((5 - 1) ** 2)
    # A quadratic critic C(x) = sum(x^2): grad = 2 x_hat, at the point mixed by hand.
    square = lambda x, labels: ((x ** 2).flatten(1).sum(1), None)  # noqa: E731
    mix = torch.tensor([0.0, 0.25, 1.0, 0.5])
    x_hat = mix.view(4, 1, 1, 1) * real + (1 - mix.view(4, 1, 1, 1)) * fake
    expected = ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert L.gradient_penalty(square, real, fake, None, mix).item() == pytest.approx(
        expected.item(), rel=1e-5)


def test_spectral_norm_bounds_every_discriminator_layer():
    torch.manual_seed(0)
    d = ConvDiscriminator(1, 8, 16, num_classes=10, conditioning="projection",
                          spectral_norm=True)
    for module in d.modules():   # large raw weights: without the norm, sigma would be >> 1
        if hasattr(module, "parametrizations"):
            with torch.no_grad():
                module.parametrizations.weight.original.mul_(50)
    for _ in range(30):          # training-mode forwards run the power iteration
        d(torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,)))
    layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 4  # 2 convs (8 px), the linear head, the projection embedding
    for m in layers:
        raw = m.parametrizations.weight.original
        normed = m.weight
        assert torch.linalg.matrix_norm(raw.flatten(1), ord=2) > 10
        assert torch.linalg.matrix_norm(normed.flatten(1), ord=2).item() == pytest.approx(1, abs=0.02)


def test_losses_match_their_formulas():
    d = torch.tensor([2.0, -1.0, 0.5])
    p = torch.sigmoid(d)
    assert L.generator_loss("minimax", d).item() == pytest.approx(torch.log(1 - p).mean().item(), rel=1e-5)
    assert L.generator_loss("non-saturating", d).item() == pytest.approx(-torch.log(p).mean().item(), rel=1e-5)
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.3])
    assert L.discriminator_loss("hinge", real, fake).item() == pytest.approx(
        (0.5 + 0.0) / 2 + (0.5 + 1.3) / 2)
    assert L.discriminator_loss("wasserstein", real, fake).item() == pytest.approx(-0.1 - 1.25)
    assert L.discriminator_loss("least-squares", real, fake, real_target=0.9).item() == pytest.approx(
        0.5 * ((0.4 ** 2 + 1.1 ** 2) / 2) + 0.5 * ((0.25 + 0.09) / 2))


def test_minibatch_std_variance_is_torch_var_bit_for_bit_forward_and_backward():
    """The hand-written group variance (networks.py, for speed) gives exactly torch.var's
    numbers and gradients: a run trains the same with it as without it."""
    g = torch.Generator().manual_seed(0)
    for trial in range(200):
        size = (1, 2, 3, 4)[trial % 4]                         # images per group
        shape = (1 + trial % 7, size, *torch.randint(1, 7, (1 + trial % 3,), generator=g).tolist())
        scale, offset = 10.0 ** (trial % 7 - 3), (0.0, 1.0, -30.0)[trial % 3]
        x = (torch.randn(*shape, generator=g) * scale + offset).requires_grad_(True)
        y = x.detach().clone().requires_grad_(True)
        expected, got = x.var(dim=1, unbiased=False), group_variance(y)
        upstream = torch.randn(expected.shape, generator=g)
        expected.backward(upstream)
        got.backward(upstream)
        assert torch.equal(got, expected), (shape, scale, offset)
        assert torch.equal(y.grad, x.grad), (shape, scale, offset)


def test_slerp_and_truncation():
    a, b = torch.randn(1, 16), torch.randn(1, 16)
    path = slerp(a[0], b[0], torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a[0], atol=1e-6) and torch.allclose(path[-1], b[0], atol=1e-5)
    z = truncated_normal((1000, 8), torch.Generator().manual_seed(0), 0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2


@pytest.mark.parametrize("name", ["cgan", "infogan"])
def test_interpolation_endpoints_are_the_two_seeds_samples(name, shared_runs):
    run = tiny(name, shared_runs, f"{name}-walk", steps=5)
    train_run(run)
    pipe = load_for_sampling(run.path)
    walk = pipe.interpolate(3, 17, 6, labels=2).images
    assert walk.shape[0] == 6
    np.testing.assert_allclose(walk[0], pipe.sample(1, 3, labels=2).images[0], atol=1e-5)
    np.testing.assert_allclose(walk[-1], pipe.sample(1, 17, labels=2).images[0], atol=1e-5)
    # Image i of a batch is the sample of seed + i, so a batch's images can be redrawn alone.
    batch = pipe.sample(4, 10, labels=2).images
    np.testing.assert_allclose(batch[3], pipe.sample(1, 13, labels=2).images[0], atol=1e-5)


def test_self_conditioning_clusters_the_images_and_draws_each_by_its_share(shared_runs):
    """An unconditional model conditioned on k-means clusters of its training images: the
    clusters are fitted once and stored with the run, they group digits much as the classes
    do (no label was read), and sampling draws them by their share of the training set."""
    from sklearn.metrics import adjusted_rand_score
    from pipelines.data import load_data
    from pipelines.gan import clusters as C
    digits = load_data("digits")
    found = C.fit_clusters(digits.train_images, 10)
    assigned = C.assign(digits.train_images, found)
    assert adjusted_rand_score(digits.train_labels, assigned) > 0.4     # chance: 0
    np.testing.assert_allclose(np.bincount(assigned, minlength=10) / len(assigned),
                               found["frequency"], atol=0.01)

    run = tiny("dcgan", shared_runs, "self-cond", steps=5, self_conditioning=4)
    assert train_run(run) == "done"
    pipe = load_for_sampling(run.path)
    clusters = pipe.info["clusters"]
    assert run.info()["data_info"]["clusters"] == clusters     # stored with the run
    assert len(clusters["centroids"]) == 4 and sum(clusters["frequency"]) == pytest.approx(1)
    assert pipe.modules["generator"].embed.num_embeddings == 4 and pipe.num_classes == 0
    drawn = pipe.latents(list(range(2000)))[2]
    np.testing.assert_allclose(np.bincount(drawn.numpy(), minlength=4) / 2000,
                               clusters["frequency"], atol=0.04)
    # A walk between seeds of different clusters passes between their embeddings and ends
    # exactly on each seed's sample.
    a, b = 0, next(i for i in range(1, 50) if drawn[i] != drawn[0])
    walk = pipe.interpolate(a, b, 5).images
    np.testing.assert_allclose(walk[0], pipe.sample(1, a).images[0], atol=1e-6)
    np.testing.assert_allclose(walk[-1], pipe.sample(1, b).images[0], atol=1e-6)
    # Classes, or InfoGAN's codes, take the clusters' place.
    for name in ("cgan", "infogan"):
        run = tiny(name, shared_runs, f"self-cond-{name}", steps=1, self_conditioning=4)
        assert "clusters" not in run.info()["data_info"]


def test_mode_collapse_warning():
    trainer_cls = VARIANTS[1]
    pipe = trainer_cls(trainer_cls.Config(width=8), {"channels": 1, "image_size": 8,
                                                    "num_classes": 10})
    assert pipe.log_warnings({"diversity": 0.9, "d_real": 0.6, "d_fake": 0.4}, 500) == []
    assert pipe.log_warnings({"diversity": 0.1, "d_real": 0.6, "d_fake": 0.4}, 25) == []
    collapsed = pipe.log_warnings({"diversity": 0.1, "d_real": 0.99, "d_fake": 0.01}, 500)
    assert "mode collapse" in collapsed[0] and "wins outright" in collapsed[1]


def test_cli_sampling_controls_walks_and_code_sweep(shared_runs, tmp_path, capsys):
    run = tiny("infogan", shared_runs, "cli-info", steps=5)
    train_run(run)
    rd = ["--runs-dir", str(shared_runs)]
    gif = tmp_path / "walk.gif"
    assert main([*rd, "sample", run.id, "--interpolate", "1", "2", "--frames", "5",
                 "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.info.get("loop") == 0
    assert main([*rd, "sample", run.id, "--n", "6", "--set", "truncation=0.5",
                 "--set", "codes=0.5,-1", "--out", str(tmp_path / "t.npz")]) == 0
    assert np.load(tmp_path / "t.npz")["images"].shape == (6, 1, 8, 8)
    assert main([*rd, "tool", run.id, "code-sweep", "--set", "rows=3", "--set", "columns=4",
                 "--out", str(tmp_path / "sweep.png")]) == 0
    assert (tmp_path / "sweep.png").is_file()
    capsys.readouterr()
    # Bad controls are one line and exit 2.
    assert main([*rd, "sample", run.id, "--set", "temperature=2", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown option 'temperature'" in capsys.readouterr().err
    assert main([*rd, "sample", run.id, "--set", "codes=1", "--out", str(tmp_path / "x.png")]) == 2
    assert "2 continuous codes" in capsys.readouterr().err
    assert main([*rd, "tool", run.id, "code-sweep", "--set", "code=5", "--out",
                 str(tmp_path / "x.png")]) == 2


def test_bad_variant_options_are_refused_before_a_run_exists(tmp_path):
    from pipelines.core.errors import StudioError
    with pytest.raises(StudioError, match="d_norm=none"):
        tiny("wgan-gp", tmp_path, "bad1", d_norm="batch")
    with pytest.raises(StudioError, match="label_smoothing"):
        tiny("sngan", tmp_path, "bad2", label_smoothing=0.1)
    with pytest.raises(StudioError, match="conditioning=none"):
        tiny("infogan", tmp_path, "bad3", conditioning="projection")
    assert not any(tmp_path.iterdir())


def test_walk_gif_bounces(tmp_path):
    from pipelines.services.imaging import save_gif
    frames = np.linspace(0, 1, 5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 8, 8),
                                                                             np.float32)
    save_gif(frames, tmp_path / "w.gif")
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == 8  # 5 forward, 3 back: the loop has no jump


def _image_folder(root, mode, size, per_class=12):
    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            base = 60 if label == "dark" else 190
            pixels = rng.integers(base - 40, base + 40, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / label / f"{i}.png")
    return f"folder:{root}"


@pytest.mark.parametrize("name,mode,image_size,channels", [
    ("dcgan", "L", 64, 1),          # grey folder images at 64 px
    ("sngan", "RGB", 32, 3),        # colour at 32 px, conditional via projection below
    ("gan", "RGB", 16, 3),          # the MLP nets on colour
])
def test_image_folders_grey_and_colour_at_32_and_64_px(name, mode, image_size, channels,
                                                      tmp_path):
    spec = _image_folder(tmp_path / "pictures", mode, 48)
    run = start_run(name, spec, config_overrides={"width": 4, "z_dim": 8, "hidden": 16,
                                                  "image_size": image_size,
                                                  "conditioning": "projection"},
                    trainer_overrides={**TINY_TRAINER, "steps": 2, "batch_size": 8,
                                       "sample_count": 4, "final_eval": False},
                    runs_dir=tmp_path / "runs")
    assert train_run(run) == "done"
    samples = load_for_sampling(run.path).sample(3, seed=0, labels=1)
    assert samples.images.shape == (3, channels, image_size, image_size)


def test_standing_statistics_are_the_sampling_weights_own_and_never_reach_training(shared_runs):
    """BigGAN's standing statistics: with the option on, the saved sampling weights carry
    batch-norm statistics recomputed for the EMA generator (not the live weights' running
    ones), the same every time they are computed, and training is exactly as without them."""
    from safetensors.torch import load_file
    on = tiny("dcgan", shared_runs, "standing-on", standing_statistics=64)
    off = tiny("dcgan", shared_runs, "standing-off")
    assert train_run(on) == "done" and train_run(off) == "done"
    assert logged(on) == logged(off)                     # training never sees them
    sampling, raw = (load_file(on.checkpoint_dir(10) / f)
                     for f in ("model.safetensors", "training.safetensors"))
    stats = [k for k in sampling if k.startswith("generator.") and k.endswith("running_var")]
    assert stats and all(not torch.equal(sampling[k], raw[k]) for k in stats)
    off_sampling = load_file(off.checkpoint_dir(10) / "model.safetensors")
    assert all(torch.equal(off_sampling[k], raw[k]) for k in stats)   # off: the running ones
    # Recomputed from the loaded weights, they are what was saved, and put back on leaving.
    pipe = load_for_sampling(on.path)
    G = pipe.modules["generator"]
    saved = {k: v.clone() for k, v in G.state_dict().items()}
    for k in stats:
        G.get_buffer(k.removeprefix("generator.")).fill_(1.0)
    with pipe.sampling_statistics():
        for k in stats:
            torch.testing.assert_close(G.get_buffer(k.removeprefix("generator.")), saved[
                k.removeprefix("generator.")])
        images = pipe.sample(6, seed=3).images
    assert all(torch.all(G.get_buffer(k.removeprefix("generator.")) == 1.0) for k in stats)
    with pipe.sampling_statistics():
        np.testing.assert_array_equal(pipe.sample(6, seed=3).images, images)
