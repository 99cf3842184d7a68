"""The architecture inspector (pipelines/services/inspector.py): for every trainable pipeline,
each network's parameter count is the model's own and every traced call ran (shapes from a real
training step); the worked conv arithmetic of a known network; the CLI for a pipeline and for
a run, and its one-line errors."""

import json

import pytest

from helpers import TINY
from pipelines.cli import main
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.registry import list_pipelines
from pipelines.services.inspector import as_markdown, as_text, inspect_pipeline

TRAINABLE = [e.name for e in list_pipelines() if e.trains == "steps"]
# Small versions where a default is slow to build; the shapes' rules are the same.
SMALL = {"srgan": {"pretrain_steps": 1, "content": "pixels"},
         "ddpm-text": {"autoencoder_steps": 1}}
# Closed-form models whose step reads the parameters through a method, not a module call, and
# word2vec, whose step hands them to gensim: their networks are listed with their parameters
# and say so.
NOT_CALLED = {"ppca", "factor-analysis", "word2vec"}


@pytest.mark.parametrize("pipeline", TRAINABLE)
def test_every_pipeline_is_traced_with_its_real_parameter_count(pipeline):
    report = inspect_pipeline(pipeline, None, SMALL.get(pipeline, {}), {"batch_size": 2})
    assert report["batch_size"] == 2 and report["networks"], pipeline
    traced = 0
    for net in report["networks"]:
        assert net["params"] == net["trainable"] + net["frozen"]
        assert net["calls"] or "not called" in net["note"]
        for call in net["calls"]:
            assert not call.get("error"), (pipeline, net["name"], call.get("error"))
            assert call["layers"], (pipeline, call["root"])
            # every layer ran: its output has a shape, and the batch leads where it can
            assert all(layer["output"] for layer in call["layers"])
            assert call["params"] <= net["params"]
            if call["root"] == net["name"]:            # the whole network was the call
                assert call["params"] == net["params"], (pipeline, net["name"])
            traced += 1
    assert bool(traced) == (pipeline not in NOT_CALLED), pipeline


def test_dcgan_layers_shapes_and_arithmetic():
    import torch
    from pipelines.data import load_data
    report = inspect_pipeline("dcgan", "digits", {}, {"batch_size": 4})
    nets = {n["name"]: n for n in report["networks"]}
    gen, disc = nets["generator"]["calls"][0], nets["discriminator"]["calls"][0]
    data = load_data("digits")
    image = [4, data.channels, data.image_size, data.image_size]
    assert gen["layers"][-1]["output"] == image                   # it draws a batch of digits
    assert disc["layers"][0]["input"] == image                    # and D reads them
    assert disc["layers"][-1]["output"][0] == 4
    first = disc["layers"][0]
    assert first["kind"] == "Conv2d" and first["arithmetic"].endswith(f"= {image[-1]}")
    strided = next(layer for layer in disc["layers"] if layer["arithmetic"]
                   and "/ 2" in layer["arithmetic"])
    assert strided["arithmetic"] == "(8 - 4 + 2 x 1) / 2 + 1 = 4"
    assert disc["receptive_field"] == 6                           # 3x3, then 4x4 stride 2
    # the parameter counts are the modules' own: 448 = 3 x 3 x 3 x 16 + 16, in the seeds' sense
    conv = torch.nn.Conv2d(3, 16, 3)
    assert sum(p.numel() for p in conv.parameters()) == 448
    for text in (as_text(report), as_markdown(report)):
        assert "(8 - 4 + 2 x 1) / 2 + 1 = 4" in text and "164,961" in as_text(report)


def test_the_cli_for_a_pipeline_a_run_and_bad_targets(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    assert main(["inspect", "mlp", "--set", "batch_size=3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["batch_size"] == 3 and report["networks"][0]["params"] > 0
    assert main(["inspect", "svm-rbf"]) == 0
    assert "fit in one go" in capsys.readouterr().out
    run = start_run("dcgan", "digits", config_overrides={"width": 8, "z_dim": 8},
                    trainer_overrides={**TINY, "steps": 2}, runs_dir=runs_dir, name="gan")
    assert train_run(run) == "done"
    assert main(["--runs-dir", str(runs_dir), "inspect", run.id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {run.id}") and "ConvTranspose2d" in out
    assert main(["--runs-dir", str(runs_dir), "inspect", "nothing-like-it"]) == 2
    assert "neither a pipeline" in capsys.readouterr().err
    assert main(["--runs-dir", str(runs_dir), "inspect", run.id, "--set", "width=4"]) == 2
    assert "its own data and options" in capsys.readouterr().err
    assert main(["inspect", "dcgan", "--set", "width=-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("studio: error:") and "width" in err
