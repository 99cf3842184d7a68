"""The torch classifiers (pipelines/classifiers): every network trains through the trainer
with finite losses and resumes identically, draws no samples, the MLP logs per-layer gradient
norms, transfer learning freezes exactly the body, the tools draw, and classify_image answers
for every finished classifier run (torch and classic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.core.checkpoints import load_weights
from pipelines.classic import fit_run
from pipelines.classifiers.classify import classify_image, digit_like
from pipelines.cli import main
from pipelines.data import load_data
from pipelines.core.errors import StudioError
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

TINY_TRAINER = {"steps": 4, "batch_size": 16, "log_every": 1, "checkpoint_every": 2,
                "seed": 3, "final_eval": False}
TINY = {"mlp": {"width": 16}, "lenet5": {}, "alexnet": {"width": 4}, "vgg": {"width": 4},
        "resnet": {"width": 4}, "densenet": {"width": 8}, "rnn-rows": {"hidden": 8},
        "lstm-rows": {"hidden": 8}, "gru-rows": {"hidden": 8}, "bilstm-rows": {"hidden": 8}}
# No EMA in these tiny runs: the trainer's EMA (pipelines/core/ema.py) is tested with the
# GANs and in tests/test_ema.py.
NO_EMA = {"ema_decay": 0.0}


def train(runs_dir, name, data="digits", steps=4, config=None, **trainer):
    run = start_run(name, data, config_overrides={**TINY[name], **NO_EMA, **(config or {})},
                    trainer_overrides={**TINY_TRAINER, "steps": steps, **trainer},
                    runs_dir=runs_dir, name=name)
    assert train_run(run) == "done"
    return run


def losses(run):
    return [(r["step"], r["loss"], r["val/loss"]) for r in run.metrics() if "loss" in r]


@pytest.mark.parametrize("name", list(TINY))
def test_each_classifier_trains_and_resumes_identically(tmp_path, name):
    full = train(tmp_path / "a", name)
    records = losses(full)
    assert [s for s, _, _ in records] == [1, 2, 3, 4]
    assert all(np.isfinite([a, b]).all() for _, a, b in records)
    assert not any(full.samples_dir.iterdir())             # classifiers draw no grids

    half = train(tmp_path / "b", name, steps=2)
    assert train_run(half, resume=True, total_steps=4) == "done"
    assert losses(half) == records                          # bit-identical continuation

    pipe = load_for_sampling(full.path)
    proba = pipe.predict_proba(load_data("digits").val_images[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1.0)
    with pytest.raises(StudioError, match="do not draw samples"):
        pipe.sample(4, seed=0)


def test_evaluate_reports_accuracy_f1_and_each_class(tmp_path):
    run = train(tmp_path, "mlp", steps=30, final_eval=True,
                config={"lr_schedule": "constant", "lr": 0.01, "width": 64})
    results = run.info()["eval"]
    assert {"accuracy", "loss", "macro_f1", "parameters"} <= set(results)
    assert {f"accuracy/{d}" for d in range(10)} <= set(results)
    assert results["accuracy"] > 0.5                         # 30 steps of a small MLP


def test_sigmoid_gradients_vanish_toward_the_input_and_relu_ones_do_not(tmp_path):
    ratios = {}
    for activation in ("sigmoid", "relu"):
        run = train(tmp_path / activation, "mlp", steps=10, config={
            "depth": 5, "width": 32, "activation": activation, "optimizer": "sgd", "lr": 0.05,
            "lr_schedule": "constant"})
        rows = [r for r in run.metrics() if "grad/layer1" in r]
        assert {f"grad/layer{i}" for i in range(1, 6)} | {"grad/head"} <= set(rows[0])
        first = np.mean([r["grad/layer1"] for r in rows])
        last = np.mean([r["grad/layer5"] for r in rows])
        ratios[activation] = first / last
    assert ratios["sigmoid"] < 0.05 < ratios["relu"], ratios


def make_two_class_folder(root, count=12):
    rng = np.random.default_rng(0)
    for name in ("bars", "dots"):
        (root / name).mkdir(parents=True)
    for i in range(count):
        bar = (rng.random((8, 8)) * 60).astype(np.uint8)
        bar[:, i % 6:i % 6 + 2] = 250
        Image.fromarray(bar).save(root / "bars" / f"{i}.png")
        dot = (rng.random((8, 8)) * 60).astype(np.uint8)
        dot[i % 7, i % 5] = 255
        Image.fromarray(dot).save(root / "dots" / f"{i}.png")


def test_transfer_learning_freezes_exactly_the_body(tmp_path):
    source = train(tmp_path / "src", "resnet")
    src, _ = load_weights(source.sampling_weights_path)   # init_from takes the best weights
    folder = tmp_path / "pics"
    make_two_class_folder(folder)
    spec = f"folder:{folder}"
    frozen = train(tmp_path / "dst", "resnet", data=spec, steps=6,
                   config={"init_from": str(source.path), "freeze": "body", "image_size": 8})
    after, meta = load_weights(frozen.weights_path)
    body = [k for k in src if not k.startswith("net.head.")]
    assert body and all(torch.equal(after[k], src[k]) for k in body)   # weights and BN stats
    assert after["net.head.weight"].shape == (2, src["net.head.weight"].shape[1])
    # the head did learn: it differs from a fresh head built with the same seed
    pipe = load_for_sampling(frozen.path)
    assert pipe.info["num_classes"] == 2
    opt = pipe.make_optimizers()["opt"]
    trainable = {id(p) for g in opt.param_groups for p in g["params"]}
    assert trainable == {id(p) for p in pipe.modules["net"].head.parameters()}

    tuned = train(tmp_path / "tuned", "resnet", data=spec, steps=6,
                  config={"init_from": str(source.path), "image_size": 8})
    changed, _ = load_weights(tuned.weights_path)
    assert not torch.equal(changed["net.body.0.weight"], src["net.body.0.weight"])

    with pytest.raises(StudioError, match="needs init_from"):
        train(tmp_path / "x", "resnet", config={"freeze": "body"})
    with pytest.raises(StudioError, match="takes a whole body only from a vgg run"):
        train(tmp_path / "y", "vgg", config={"init_from": str(source.path)})


def test_transfer_from_an_autoencoders_encoder(tmp_path):
    """init_part=encoder: an MLP starts from an autoencoder run's encoder, layer by layer
    while the shapes match; frozen, those layers stay the encoder's; transfer_lr gives them
    their own learning rate; the inspector says where each came from."""
    from pipelines.services.inspector import inspect_pipeline
    ae = start_run("ae", "digits", config_overrides={"hidden": 16},   # the tiny MLP's width
                   trainer_overrides=TINY_TRAINER, runs_dir=tmp_path / "src", name="ae")
    assert train_run(ae) == "done"
    src, _ = load_weights(ae.sampling_weights_path)
    config = {"init_from": str(ae.path), "init_part": "encoder"}
    frozen = train(tmp_path / "dst", "mlp", steps=6, config={**config, "freeze": "body"})
    after, _ = load_weights(frozen.weights_path)
    for mine, theirs in (("body.1", "trunk.1"), ("body.3", "trunk.3")):
        for kind in ("weight", "bias"):
            assert torch.equal(after[f"net.{mine}.{kind}"],
                               src[f"model.encoder.{theirs}.{kind}"])
    pipe = load_for_sampling(train(tmp_path / "lr", "mlp", steps=2, config={
        **config, "transfer_lr": 1e-5}).path)
    groups = pipe.make_optimizers()["opt"].param_groups
    assert sorted(g["lr"] for g in groups) == [1e-5, pipe.config.lr]
    report = inspect_pipeline("mlp", "digits", {**TINY["mlp"], **config}, {"batch_size": 2})
    layers = report["networks"][0]["calls"][0]["layers"]
    assert [layer["from"].split(": ")[-1] for layer in layers if layer["from"]] == [
        "model.encoder.trunk.1.weight", "model.encoder.trunk.3.weight"]
    with pytest.raises(StudioError, match="does not fit this network"):
        train(tmp_path / "cnn", "lenet5", config=config)
    with pytest.raises(StudioError, match="takes a whole body only from a mlp run"):
        train(tmp_path / "whole", "mlp", config={"init_from": str(ae.path)})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A runs folder with a tiny resnet, an MLP, a LeNet-5 and a classic model on digits."""
    root = tmp_path_factory.mktemp("runs")
    runs = {name: train(root, name, steps=6) for name in ("resnet", "mlp", "lenet5")}
    runs["logistic"] = fit_run("logistic", "digits", runs_dir=root, name="logistic")
    return root, runs


def test_tools_draw_filters_feature_maps_and_confusion(trained, tmp_path, capsys):
    root, runs = trained
    pipe = load_for_sampling(runs["resnet"].path)
    filters = run_tool(pipe, "filters", {}, cache_dir=tmp_path)
    assert filters.images.shape == (4, 1, 3, 3)              # width 4: four 3x3 kernels
    assert filters.images.min() >= 0 and filters.images.max() <= 1
    maps = run_tool(pipe, "feature-maps", {"channels": "4", "layers": "3"}, cache_dir=tmp_path)
    assert maps.images.shape == (3 * 5, 1, 8, 8) and maps.columns == 5
    confusion = run_tool(pipe, "confusion", {}, cache_dir=tmp_path)
    assert confusion.figure_png[:4] == b"\x89PNG" and confusion.values["n"] == 180
    mlp = load_for_sampling(runs["mlp"].path)
    assert run_tool(mlp, "filters", {"count": "5"}, cache_dir=tmp_path).images.shape == (5, 1, 8, 8)
    out = tmp_path / "f.png"
    assert main(["--runs-dir", str(root), "tool", runs["resnet"].id, "filters", "--out",
                 str(out)]) == 0
    assert Image.open(out).size[0] > 8


def drawn_one(size=64) -> np.ndarray:
    """A "1" drawn in black ink on white paper, the way a sketch pad gives it."""
    picture = np.full((size, size, 3), 255, np.uint8)
    picture[8:56, 24:40] = 0
    return picture


def test_classify_image_answers_for_every_finished_classifier(trained, tmp_path, capsys):
    root, runs = trained
    grey = digit_like(drawn_one(), 8)
    assert grey.shape == (8, 8) and grey[4, 3:5].mean() > 0.8 and grey[4, 0] < 0.1  # inverted
    answers = classify_image(drawn_one(), root)
    assert sorted(a["run"] for a in answers) == sorted(r.id for r in runs.values())
    for a in answers:
        p = a["probabilities"]
        assert list(p) == [str(d) for d in range(10)] and sum(p.values()) == pytest.approx(1.0)
        assert a["prediction"] == max(p, key=p.get)
    logistic = next(a for a in answers if a["pipeline"] == "logistic")
    assert logistic["prediction"] == "1"                     # a fitted model reads a clear "1"
    path = tmp_path / "one.png"
    Image.fromarray(drawn_one()).save(path)
    assert main(["--runs-dir", str(root), "classify", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(r.id in out for r in runs.values()) and "prediction" in out
    with pytest.raises(StudioError, match="must be"):
        classify_image(np.zeros((2, 2, 7)), root)
