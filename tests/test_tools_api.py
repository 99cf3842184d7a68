"""Every tool every family declares, through the page's API (`/tool`, what the Tools panels
of the Images, Text and Classify tabs call): one tiny run per family covers all the tool names
(infogan, stylegan, biggan, lapgan, vae, vqvae, ppca, lenet5, ddpm, transformer, pix2pix,
srresnet, dann, bert, seq2seq-gru, and a classic decision tree fit on iris), and each tool of each of those runs answers with a picture or
numbers, never an `error:` line. Tools that need pictures get two 8x8 grey ones (the second is
inpaint's mask). Then a classifier's probabilities through `studio tool` (likeliest first), and
a free-text tool option's taller box in the page's form."""

import numpy as np
import pytest
from PIL import Image

from helpers import TEXT_TRAINER, free_port
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.registry import get_entry, list_pipelines

RUNS = {"infogan": "digits", "stylegan": "digits", "biggan": "digits", "lapgan": "digits",
        "vae": "digits", "vqvae": "digits", "ppca": "digits",
        "lenet5": "digits", "ddpm": "digits", "transformer": "shakespeare",
        "pix2pix": "shapes-edges", "srresnet": "shapes", "decision-tree": "iris",
        "dann": "digits-m", "bert": "shakespeare-lines", "seq2seq-gru": "dates"}
CONFIG = {"ddpm": {"width": 8, "num_train_timesteps": 50, "lr_warmup_steps": 1},
          "transformer": {"n_layer": 1, "n_embd": 32, "n_head": 2, "context": 32},
          "pix2pix": {"width": 4, "d_width": 4},
          "srresnet": {"width": 4, "blocks": 1, "image_size": 32},
          "dann": {"width": 4, "baseline_steps": 2},
          "stylegan": {"style_channels": 8, "w_dim": 16, "z_dim": 8, "mapping_layers": 2,
                       "width": 8},
          "biggan": {"width": 8, "z_dim": 9, "shared_dim": 8},
          "lapgan": {"width": 4, "level_width": 8, "hidden": 16, "z_dim": 8},
          "bert": {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32,
                   "vocab_size": 300, "max_length": 32, "pretrain_steps": 1,
                   "finetune_steps": 1, "warmup_steps": 1, "finetune_warmup_steps": 1,
                   "val_mlm_passages": 16},
          "seq2seq-gru": {"embed_dim": 8, "hidden_size": 16, "attention_dim": 16,
                          "val_pairs": 8}}
# Tool options other than the defaults: the truncation curve's judge (five thresholds, ten
# draws each, ~30 s here) is tested in test_biggan.py; here its rows come through the API.
OPTIONS = {("biggan", "truncation-curve"): {"judge": False}}
TRAINER = {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 0,
           "checkpoint_every": 2, "final_eval": False, "seed": 1}
CALLS = [(p, t.name) for p in RUNS for t in get_entry(p).tools]


def test_the_runs_cover_every_declared_tool():
    declared = {t.name for e in list_pipelines() for t in e.tools}
    assert declared == {tool for _, tool in CALLS}


@pytest.fixture(scope="module")
def studio_api(tmp_path_factory):
    from gradio_client import Client
    from studio.app import launch_studio
    runs_dir = tmp_path_factory.mktemp("runs")
    made = {}
    from pipelines.classic.fit import fit_run
    for pipeline, data in RUNS.items():
        if get_entry(pipeline).trains == "fit":
            made[pipeline] = fit_run(pipeline, data, runs_dir=runs_dir, name=pipeline).id
            continue
        trainer = {**TEXT_TRAINER, **TRAINER} if data == "shakespeare" else TRAINER
        run = start_run(pipeline, data, config_overrides=CONFIG.get(pipeline, {}),
                        trainer_overrides=trainer, runs_dir=runs_dir, name=pipeline)
        assert train_run(run) == "done", pipeline
        made[pipeline] = run.id
    pictures = tmp_path_factory.mktemp("pictures")
    for name, value in (("a.png", 40), ("b.png", 255)):
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(pictures / name)
    port = free_port()
    app = launch_studio(runs_dir, port=port, inbrowser=False, prevent_thread_lock=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), made, pictures
    finally:
        app.studio.worker.close()
        app.close()


@pytest.mark.parametrize("pipeline, tool", CALLS, ids=[f"{p}-{t}" for p, t in CALLS])
def test_every_tool_answers_through_the_api(studio_api, pipeline, tool):
    from gradio_client import handle_file
    client, made, pictures = studio_api
    spec = next(t for t in get_entry(pipeline).tools if t.name == tool)
    inputs = ([handle_file(str(pictures / n)) for n in ("a.png", "b.png")]
              if spec.needs_images else None)
    image, values, message = client.predict(made[pipeline], tool, inputs,
                                            OPTIONS.get((pipeline, tool)), "latest",
                                            api_name="/tool")
    assert not message.startswith("error"), (pipeline, tool, message)
    assert image or values, (pipeline, tool, message)


def test_a_classifiers_probabilities_come_back_from_the_api(studio_api):
    client, made, _ = studio_api
    _, values, message = client.predict(made["bert"], "classify", None,
                                        {"passage": "To be or not to be"}, "latest",
                                        api_name="/tool")
    probabilities = values["probabilities"]
    assert len(probabilities) == 8 and sum(probabilities.values()) == pytest.approx(1, abs=1e-3)
    assert max(probabilities, key=probabilities.get) in message      # the answer it names


def test_a_classic_runs_tools_say_what_it_drew(studio_api):
    client, made, _ = studio_api
    image, values, message = client.predict(made["decision-tree"], "plot", None,
                                            {"which": "tree"}, "latest", api_name="/tool")
    assert image and values["picture"] == "tree" and "boundary" in values["drawn"]
    *_, message = client.predict(made["decision-tree"], "plot", None, {"which": "residuals"},
                                 "latest", api_name="/tool")
    assert message.startswith("error: ") and "drew no residuals picture" in message
    _, values, _ = client.predict(made["decision-tree"], "summary", None, None, "latest",
                                  api_name="/tool")
    assert 0 < values["accuracy"] <= 1


def test_a_classic_runs_tools_from_the_cli(tmp_path, capsys):
    from pipelines.classic.fit import fit_run
    from pipelines.cli import main
    run = fit_run("logistic", "breast_cancer", runs_dir=tmp_path, name="logit")
    args = ["--runs-dir", str(tmp_path), "tool", run.id]
    assert main(args + ["summary"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# logistic on breast_cancer") and "| intercept |" in out
    assert main(args + ["plot", "--set", "which=roc", "--out", str(tmp_path / "roc.png")]) == 0
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(args + ["plot", "--set", "which=tree"]) == 2
    assert "drew no tree picture; it drew confusion, roc, boundary" in capsys.readouterr().err


def test_a_classifiers_probabilities_reach_the_cli_likeliest_first(tmp_path, capsys):
    """`studio tool RUN classify`: the verdict and the passage line by line, then each class's
    probability (the model's own, as run_tool gives it) likeliest first, printed once; --out
    x.json keeps them under "probabilities"."""
    import csv
    import json

    from pipelines.cli import main
    from pipelines.data.language import load_labelled_text
    from pipelines.services.loading import load_for_sampling
    from pipelines.services.sampling import run_tool
    lines = load_labelled_text("shakespeare-lines")
    passages = tmp_path / "plays.csv"
    with passages.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["passage", "play"]] + [
            [t, lines.class_names[y]] for t, y in zip(lines.train_texts, lines.train_labels)
            if y in (1, 2, 5)][::20])
    run = start_run("bert", f"csv:{passages}", runs_dir=tmp_path,
                    config_overrides={**CONFIG["bert"], "text": "passage", "target": "play"},
                    trainer_overrides=TRAINER, name="bert")
    assert train_run(run) == "done"
    passage = "Speak, speak.\nWhat news from Rome?"
    expected = run_tool(load_for_sampling(run.path, device="cpu"), "classify",
                        {"passage": passage}, cache_dir=tmp_path).probabilities
    assert set(expected) == {lines.class_names[k] for k in (1, 2, 5)}
    capsys.readouterr()
    out_json = tmp_path / "answer.json"
    assert main(["--runs-dir", str(tmp_path), "tool", run.id, "classify", "--set",
                 f"passage={passage}", "--out", str(out_json)]) == 0
    printed = capsys.readouterr().out.splitlines()
    likeliest = sorted(expected, key=lambda name: -expected[name])
    assert printed[0].startswith(f"predicted: {likeliest[0]} (")
    assert printed[3:5] == passage.splitlines()                 # after "passage:"
    bars = [line for line in printed if line.endswith(tuple(f"  {n}" for n in expected))]
    assert bars == [f"{expected[n]:8.2%}  {n}" for n in likeliest]   # once each, sorted
    assert json.loads(out_json.read_text())["probabilities"] == pytest.approx(expected)


def test_a_free_text_option_asks_the_page_for_a_taller_box():
    """option(..., lines=4) reaches the spec's field dicts and the form's Textbox; a one-line
    option stays one line; lines on a number is a mistake in the declaration."""
    import gradio as gr

    from pipelines.core.config import option
    from studio.common import describe
    from studio.forms import field_input
    tools = {t["name"]: t for t in describe("bert")["tools"]}
    passage = next(f for f in tools["classify"]["options"] if f["name"] == "passage")
    mask_text = next(f for f in tools["fill-mask"]["options"] if f["name"] == "text")
    assert passage["lines"] == 4 and mask_text["lines"] == 1
    box = field_input(passage)
    assert isinstance(box, gr.Textbox) and box.lines == 4
    assert field_input(mask_text).lines == 1
    with pytest.raises(TypeError, match="for text options"):
        option(3, "a count", lines=2)
