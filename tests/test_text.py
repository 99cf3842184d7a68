"""The text family: every model trains and resumes exactly, one generation path that matches
transformers' `generate`, exports that load with the libraries alone, fine-tuning from a local
folder, bits per character. Tokenizers and bad text files: tests/test_text_input.py."""

import json
import math
import os
import re

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.cli import main  # noqa: E402
from pipelines.data import load_data  # noqa: E402
from pipelines.data.text import read_shakespeare  # noqa: E402
from pipelines.core.errors import StudioError  # noqa: E402
from pipelines.services.export import export_run  # noqa: E402
from pipelines.services.loading import load_for_sampling  # noqa: E402
from pipelines.registry import get_entry  # noqa: E402
from pipelines.text import tokenizer as T  # noqa: E402
from pipelines.text.generation import logits_processors, sample_tokens  # noqa: E402
from pipelines.text.tools import RECURRENT_LOADER  # noqa: E402
from pipelines.core.run_setup import start_run  # noqa: E402
from pipelines.core.training_run import train_run  # noqa: E402

from helpers import TEXT_TRAINER, plays_file  # noqa: E402

TINY = {"transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 16},
        "rnn": {"embed_dim": 8, "hidden_size": 16, "layers": 2, "context": 16},
        "lstm": {"embed_dim": 8, "hidden_size": 16, "layers": 2, "context": 16},
        "gru": {"embed_dim": 8, "hidden_size": 16, "layers": 1, "context": 16}}
MODELS = list(TINY)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return plays_file(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("text-runs")


def tiny(name, corpus, runs, run_name, steps=6, config=None, **trainer):
    run = start_run(name, f"text:{corpus}", config_overrides={**TINY[name], **(config or {})},
                    trainer_overrides={**TEXT_TRAINER, "steps": steps, **trainer}, runs_dir=runs,
                    name=run_name)
    return run


def logged(run, after=0):
    return {r["step"]: r["loss"] for r in run.metrics() if "loss" in r and r["step"] > after}


@pytest.fixture(scope="module")
def transformer_run(corpus, runs):
    run = tiny("transformer", corpus, runs, "tf", steps=6, sample_every=3)
    assert train_run(run) == "done"
    return run


# --- training ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_each_model_trains_and_resumes_exactly(name, corpus, runs):
    assert get_entry(name).family == "text"
    # grad_accum 2 on two of them: the accumulated step must resume exactly too.
    extra = {"grad_accum": 2} if name in ("transformer", "lstm") else {}
    straight = tiny(name, corpus, runs, f"{name}-straight", config=extra)
    assert train_run(straight) == "done"
    rows = [r for r in straight.metrics() if "loss" in r]
    assert len(rows) == 6 and all(math.isfinite(r["loss"]) for r in rows)
    assert all(math.isfinite(r["val/bpc"]) and r["val/perplexity"] > 1 for r in rows)
    split = tiny(name, corpus, runs, f"{name}-split", steps=3, config=extra)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=6) == "done"
    assert logged(split, after=3) == logged(straight, after=3)


def test_llama_dropout_drops_the_residual_stream_in_training_only():
    from pipelines.text.models import add_residual_dropout, build_transformer, transformer_config
    torch.manual_seed(0)
    plain = build_transformer(transformer_config("llama", 20, 8, 2, 2, 16, 0.5))
    dropped = build_transformer(plain.config.to_dict())
    dropped.load_state_dict(plain.state_dict())
    add_residual_dropout(dropped, 0.5)
    assert dropped.state_dict().keys() == plain.state_dict().keys()  # hooks, no weights
    for layer in dropped.model.layers:  # attention dropout off: what is left is the new one
        layer.self_attn.attention_dropout = 0.0
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    a, b = (dropped.train()(input_ids=ids, use_cache=False).logits for _ in range(2))
    assert not torch.allclose(a, b)
    a, b, c = (m.eval()(input_ids=ids, use_cache=False).logits for m in (dropped, dropped, plain))
    assert torch.equal(a, b) and torch.equal(a, c)  # evaluation and sampling: no dropout
    gpt2 = build_transformer(transformer_config("gpt2", 20, 8, 1, 2, 16, 0.5))
    hooks = sum(len(m._forward_hooks) for m in gpt2.modules())
    add_residual_dropout(gpt2, 0.5)  # GPT-2 has its own resid/embd dropout: left alone
    assert sum(len(m._forward_hooks) for m in gpt2.modules()) == hooks


def test_dropout_changes_training_but_not_the_weights_files(corpus, runs):
    from safetensors import safe_open
    losses, keys = {}, {}
    for p in (0.0, 0.5):
        run = tiny("transformer", corpus, runs, f"dropout-{p}", steps=3,
                   config={"dropout": p})
        assert train_run(run) == "done"
        losses[p] = logged(run)[3]
        with safe_open(str(run.weights_path), "pt") as f:
            keys[p] = set(f.keys())
        load_for_sampling(run.path, device="cpu")  # loads into a freshly built model
    assert losses[0.5] != losses[0.0] and keys[0.5] == keys[0.0]


def test_learning_rate_warms_up_then_follows_the_cosine(transformer_run):
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    pipe.config.warmup_steps, pipe.config.decay_steps = 10, 110
    c = pipe.config
    schedule = pipe.schedules()["model"]   # the trainer applies it (pipelines/core/schedules.py)

    def lr_at(step):
        return c.lr * schedule.factor(step)
    assert lr_at(0) == pytest.approx(c.lr / 10) and lr_at(9) == pytest.approx(c.lr)
    assert lr_at(60) == pytest.approx((c.lr + c.min_lr) / 2)
    assert lr_at(110) == lr_at(500) == pytest.approx(c.min_lr)
    logged = [r["lr"] for r in transformer_run.metrics() if "lr" in r]
    assert logged and all(0 < lr <= c.lr for lr in logged)   # the trainer logs what it set


def test_periodic_samples_are_text_files(transformer_run):
    files = sorted((transformer_run.path / "samples").glob("step_*.txt"))
    assert [f.name for f in files] == ["step_000003.txt", "step_000006.txt"]
    assert len(files[-1].read_text()) >= 400  # 400 new characters by default


# --- sampling ----------------------------------------------------------------------------
def test_same_seed_same_sample_and_each_sample_repeats_alone(transformer_run):
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    a = pipe.sample(3, seed=7, prompt="ROMEO:", max_new_tokens=30).texts
    assert a == pipe.sample(3, seed=7, prompt="ROMEO:", max_new_tokens=30).texts
    assert a[1] == pipe.sample(1, seed=8, prompt="ROMEO:", max_new_tokens=30).texts[0]
    assert all(t.startswith("ROMEO:") and "<unk>" not in t for t in a) and len(set(a)) > 1
    streamed = list(pipe.stream(8, prompt="ROMEO:", max_new_tokens=30))
    assert len(streamed) > 2 and "".join(streamed) == a[1]


def test_top_k_one_equals_greedy(transformer_run, corpus, runs):
    lstm = tiny("lstm", corpus, runs, "lstm-greedy", steps=3)
    train_run(lstm)
    for run in (transformer_run, lstm):
        pipe = load_for_sampling(run.path, device="cpu")
        greedy = pipe.sample(1, seed=0, max_new_tokens=40, greedy=True).texts
        assert pipe.sample(1, seed=123, max_new_tokens=40, top_k=1).texts == greedy


def test_sampler_matches_transformers_generate(transformer_run):
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    model, prompt = pipe.model, pipe.prompt_ids("ROMEO:")
    unk = T.unknown_id(pipe.tok)
    n = pipe.config.context - len(prompt)  # generate cannot go past the positions
    common = {"max_new_tokens": n, "suppress_tokens": [unk], "pad_token_id": 0}
    cases = [({"greedy": True}, {"do_sample": False}),
             ({"greedy": True, "repetition_penalty": 1.3},
              {"do_sample": False, "repetition_penalty": 1.3}),
             ({"temperature": 0.7, "top_k": 5, "top_p": 0.9, "repetition_penalty": 1.2},
              {"do_sample": True, "temperature": 0.7, "top_k": 5, "top_p": 0.9,
               "repetition_penalty": 1.2}),
             ({"num_beams": 3}, {"do_sample": False, "num_beams": 3})]
    for ours, theirs in cases:
        mine = list(pipe.tokens(11, prompt="ROMEO:", max_new_tokens=n, **ours))
        torch.manual_seed(11)  # generate draws from the global generator; ours from its own
        out = model.generate(torch.tensor([prompt]), **common, **theirs)
        assert out[0, len(prompt):].tolist() == mine, (ours, theirs)


def test_generation_slides_past_the_context(transformer_run):
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    procs = logits_processors(greedy=True)
    tokens = list(sample_tokens(pipe.model, pipe.prompt_ids("ROMEO:"), 3 * pipe.config.context,
                                procs, greedy=True, generator=None))
    assert len(tokens) == 3 * pipe.config.context


def test_generation_past_the_context_rereads_the_window_every_half_context(monkeypatch):
    from pipelines.text import generation as G
    from pipelines.text.models import build_transformer, step_logits, transformer_config
    torch.manual_seed(0)
    model = build_transformer(transformer_config("llama", 20, 8, 1, 2, 16, 0.0)).eval()
    reads = []  # tokens of each read without a cache: the prompt, then each re-read window

    def counting(model, ids, state=None):
        if state is None:
            reads.append(ids.shape[1])
        return step_logits(model, ids, state)

    monkeypatch.setattr(G, "step_logits", counting)
    greedy = G.logits_processors(greedy=True)
    tokens = list(G.sample_tokens(model, [1, 2, 3], 40, greedy, True, None))
    # The cache fills after 6 tokens; then a 4-token re-read (context 8 // 2) every 5 tokens:
    # 7 re-reads for the 34 tokens past the context, where recomputing the window per token
    # (nanoGPT's slide) would be 34 reads of 8 tokens.
    assert reads == [3] + [4] * 7
    assert len(tokens) == 40 and all(0 <= t < 20 for t in tokens)
    assert tokens == list(G.sample_tokens(model, [1, 2, 3], 40, greedy, True, None))
    # The same tokens as reading each step's visible window afresh, without a cache.
    ids, start = [1, 2, 3], 0
    with torch.no_grad():
        for token in tokens:
            logits = model(input_ids=torch.tensor([ids[start:]]), use_cache=False).logits
            assert int(logits[0, -1].argmax()) == token
            ids.append(token)
            start = len(ids) - 4 if len(ids) - start > 8 else start
    g = torch.Generator().manual_seed(0)
    sampled = list(G.sample_tokens(model, [1], 40, G.logits_processors(), False, g))
    beams = G.beam_search(model, [1], 40, 3, greedy)
    assert len(sampled) == len(beams) == 40 and all(0 <= t < 20 for t in sampled + beams)


def test_sampling_from_the_cli(transformer_run, tmp_path, capsys):
    out = tmp_path / "s.txt"
    assert main(["sample", str(transformer_run.path), "--n", "2", "--seed", "0", "--prompt",
                 "ROMEO:", "--set", "temperature=0.8", "--set", "top_k=40", "--set",
                 "max_new_tokens=20", "--out", str(out)]) == 0
    assert out.read_text().count("ROMEO:") == 2
    assert main(["sample", str(transformer_run.path), "--prompt", "\u00e9\u00e9"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_attention_tool_draws_a_heat_map(transformer_run, tmp_path):
    out = tmp_path / "att.png"
    assert main(["tool", str(transformer_run.path), "attention", "--set", "prompt=ROMEO: O",
                 "--set", "head=1", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    from pipelines.text.tools import attention_weights
    w = attention_weights(pipe.model, pipe.prompt_ids("ROMEO: O"), -1, -1)
    assert w.shape == (8, 8) and torch.allclose(w.sum(-1), torch.ones(8), atol=1e-5)
    assert torch.all(w.triu(1) == 0)  # causal: nothing attends to the future


# --- metrics -----------------------------------------------------------------------------
def test_bits_per_character_and_eval_on_a_text_file(transformer_run, corpus, runs, tmp_path,
                                                    capsys):
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    s = pipe.score(load_data(f"text:{corpus}").val_text)
    assert s["characters"] == s["tokens"]  # char-level: one character per token
    assert s["bpc"] == pytest.approx(s["loss"] / math.log(2))
    assert s["perplexity"] == pytest.approx(math.exp(s["loss"]))
    assert main(["eval", str(transformer_run.path)]) == 0
    assert transformer_run.info()["eval"]["bpc"] == pytest.approx(s["bpc"])
    other = tmp_path / "other.txt"
    other.write_text(read_shakespeare()[50_000:53_000], encoding="utf-8")
    assert main(["eval", str(transformer_run.path), "--data", f"text:{other}"]) == 0
    assert "bpc" in capsys.readouterr().out
    scored = transformer_run.info()["eval_other"][f"text:{other}"]
    assert scored["characters"] == 2999  # all of the file, every character after the first

    bpe = tiny("transformer", corpus, runs, "bpe", steps=2, checkpoint_every=2,
               config={"tokenizer": "bpe", "vocab_size": 300})
    train_run(bpe)
    pipe = load_for_sampling(bpe.path, device="cpu")
    s = pipe.score(load_data(f"text:{corpus}").val_text)
    assert s["characters"] > 1.3 * s["tokens"]  # BPE tokens span characters ...
    assert s["bpc"] == pytest.approx(s["loss"] * s["tokens"] / s["characters"] / math.log(2))


# --- export and fine-tuning --------------------------------------------------------------
def test_exported_transformer_loads_and_generates_with_transformers_alone(transformer_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    dest = export_run(transformer_run)
    folder = dest / "transformers"
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = tok("ROMEO:", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    pipe = load_for_sampling(transformer_run.path, device="cpu")
    ours = pipe.sample(1, seed=0, prompt="ROMEO:", max_new_tokens=8, greedy=True).texts[0]
    # The same model: greedy continuations agree (ours never writes <unk>; neither does a
    # model this far from uniform on these 8 tokens, which the assertion checks).
    assert tok.decode(out[0]) == ours
    card = (dest / "README.md").read_text()
    assert "AutoModelForCausalLM.from_pretrained" in card and "temperature" in card


def test_the_gpt2_block_trains_resumes_and_exports_too(corpus, runs):
    """The default block is Llama-style; GPT-2's (learned positions, LayerNorm) is the other
    choice and goes through the same training, resume and export."""
    from transformers import AutoModelForCausalLM
    gpt2 = {"architecture": "gpt2"}
    straight = tiny("transformer", corpus, runs, "gpt2-straight", steps=4, config=gpt2)
    assert train_run(straight) == "done"
    split = tiny("transformer", corpus, runs, "gpt2-split", steps=2, config=gpt2)
    assert train_run(split) == "done" and train_run(split, resume=True, total_steps=4) == "done"
    assert logged(split, after=2) == logged(straight, after=2)
    model = AutoModelForCausalLM.from_pretrained(str(export_run(straight) / "transformers"),
                                                 local_files_only=True)
    assert model.config.model_type == "gpt2"


def test_exported_rnn_loads_with_the_documented_loader(corpus, runs, monkeypatch):
    run = tiny("gru", corpus, runs, "gru-export", steps=3)
    train_run(run)
    dest = export_run(run)
    card = (dest / "README.md").read_text()
    code = re.search(r"```python\n(import json.*?)```", card, re.S).group(1)
    assert code == RECURRENT_LOADER
    monkeypatch.chdir(dest)
    scope = {}
    exec(compile(code, "loader", "exec"), scope)  # plain torch; no studio import inside
    assert "pipelines" not in code and scope["text"].startswith("\n")
    assert len(scope["new"]) == 200
    pipe = load_for_sampling(run.path, device="cpu")
    ids = torch.tensor([pipe.prompt_ids("ROMEO:")])
    assert torch.allclose(scope["model"](ids)[0], pipe.model(ids)[0], atol=1e-6)


def test_init_from_a_local_folder_works_offline(transformer_run, corpus, runs, tmp_path):
    folder = export_run(transformer_run) / "transformers"
    run = start_run("transformer", f"text:{corpus}", runs_dir=runs, name="ft",
                    config_overrides={"init_from": str(folder), "context": 16},
                    trainer_overrides={**TEXT_TRAINER, "steps": 2, "checkpoint_every": 2})
    assert run.info()["data_info"]["tokenizer_kind"] == "pretrained"
    from pipelines.core.trainer import Trainer
    trainer = Trainer(run)  # builds the pipeline and its optimiser: the pretrained weights
    start = load_for_sampling(transformer_run.path, device="cpu").model.state_dict()
    for key, value in trainer.pipeline.model.state_dict().items():
        assert torch.equal(value, start[key]), key
    assert trainer.train(resume=False) == "done"
    # With the folder's own tokenizer, not one trained on this corpus.
    source = json.loads(transformer_run.info()["data_info"]["tokenizer"])
    assert json.loads(run.info()["data_info"]["tokenizer"])["model"] == source["model"]
    assert all(math.isfinite(r["loss"]) for r in run.metrics() if "loss" in r)
    # The CLI flag, and a folder that is not a model.
    assert main(["--runs-dir", str(runs), "train", "transformer", "--data", f"text:{corpus}",
                 "--init-from", str(folder), "--steps", "1", "--batch-size", "4",
                 "--no-final-eval", "--quiet", "--set", "context=16", "--checkpoint-every", "1"]) == 0
    with pytest.raises(StudioError, match="not a transformers model folder"):
        start_run("transformer", f"text:{corpus}", runs_dir=runs,
                  config_overrides={"init_from": str(tmp_path)})
    assert main(["--runs-dir", str(runs), "train", "lstm", "--data", f"text:{corpus}",
                 "--init-from", str(folder)]) == 2
