"""Sequence-to-sequence translation (pipelines/language/seq2seq.py): both models train and resume
exactly, greedy and beam search decode deterministically through one path (one beam is greedy;
more beams find what greedy misses), the translate tool draws the alignment, the exports load
with transformers (and the GRU's with its documented snippet) and give the studio's answer,
and bad sources are refused in one line. Tiny models on a tiny hand-made set of date pairs."""

import datetime as dt
import math
import os
import re

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pipelines.core.run_setup as run_setup  # noqa: E402
import pipelines.core.trainer as trainer_module  # noqa: E402
import pipelines.services.evaluation as evaluation  # noqa: E402
from pipelines.cli import main  # noqa: E402
from pipelines.core.base import ToolContext  # noqa: E402
from pipelines.core.errors import StudioError  # noqa: E402
from pipelines.core.run_setup import start_run  # noqa: E402
from pipelines.core.training_run import train_run  # noqa: E402
from pipelines.data.language import TextPairsData  # noqa: E402
from pipelines.language import seq2seq_networks as N  # noqa: E402
from pipelines.language.seq2seq import BOS, EOS, NEVER_WRITTEN, PAD  # noqa: E402
from pipelines.registry import get_entry  # noqa: E402
from pipelines.services.export import export_run  # noqa: E402
from pipelines.services.loading import load_for_sampling  # noqa: E402

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
TINY = {"seq2seq-gru": {"embed_dim": 8, "hidden_size": 16, "attention_dim": 16,
                        "val_pairs": 8, "teacher_forcing": 0.5, "warmup_steps": 2},
        "seq2seq-transformer": {"d_model": 16, "layers": 1, "heads": 2, "ffn_dim": 32,
                                "val_pairs": 8, "warmup_steps": 2}}
TRAINER = {"steps": 6, "batch_size": 8, "log_every": 1, "sample_every": 0,
           "checkpoint_every": 3, "seed": 4, "final_eval": False, "sample_count": 2}
DATA = "tiny-dates"


def tiny_dates() -> TextPairsData:
    """Dates in two formats -> ISO, and a third format held out (as `dates` holds some out)."""
    days = [dt.date(1990, 1, 1) + dt.timedelta(days=37 * i) for i in range(120)]
    slash = [(f"{d.day}/{d.month}/{d.year}", d.isoformat()) for d in days]
    words = [(f"{MONTHS[d.month - 1]} {d.day}, {d.year}", d.isoformat()) for d in days]
    pairs = [p for pair in zip(slash, words) for p in pair]
    held = [(f"{d.year}.{d.month}.{d.day}", d.isoformat()) for d in days[:10]]
    return TextPairsData("tiny-dates", pairs[:200], pairs[200:], held, "formats never seen")


@pytest.fixture(scope="module", autouse=True)
def tiny_data():
    """The runs here read the hand-made pairs wherever the studio loads a run's data."""
    data, original = tiny_dates(), run_setup.load_data_for

    def load(cls, config, spec):
        return data if spec == DATA else original(cls, config, spec)
    with pytest.MonkeyPatch.context() as patch:
        for module in (run_setup, trainer_module, evaluation):
            patch.setattr(module, "load_data_for", load)
        yield data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("seq2seq-runs")


def tiny(name, runs, run_name, steps=6, config=None, **trainer):
    return start_run(name, DATA, config_overrides={**TINY[name], **(config or {})},
                     trainer_overrides={**TRAINER, "steps": steps, **trainer}, runs_dir=runs,
                     name=run_name)


@pytest.fixture(scope="module")
def trained(runs):
    """One 20-step run of each model: enough to write characters, not to be right."""
    out = {}
    for name in TINY:
        run = tiny(name, runs, f"{name}-trained", steps=20, checkpoint_every=20,
                   config={"lr": 1e-2})
        assert train_run(run) == "done"
        out[name] = run
    return out


def logged(run, after=0):
    return {r["step"]: (r["loss"], r["val/loss"], r["val/exact_match"])
            for r in run.metrics() if "loss" in r and r["step"] > after}


# --- training ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_each_model_trains_and_resumes_exactly(name, runs):
    spec = get_entry(name)
    assert (spec.family, spec.kind, spec.data_kind) == ("language", "translator", "text-pairs")
    straight = tiny(name, runs, f"{name}-straight")
    assert train_run(straight) == "done"
    rows = logged(straight)
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(loss) and 0 <= exact <= 1 for loss, _, exact in rows.values())
    # teacher forcing 0.5 (GRU) and dropout draw random numbers: the checkpoint restores them
    split = tiny(name, runs, f"{name}-split", steps=3)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=6) == "done"
    assert logged(split, after=3) == logged(straight, after=3)


def test_the_tokenizer_is_shared_and_appends_end_of_sequence(trained):
    pipe = load_for_sampling(trained["seq2seq-gru"].path, device="cpu")
    source = pipe.encode_sources(["3/1/1990", "May 5, 1991"])
    assert source.shape == (2, 12) and source[0, 8] == EOS and source[0, 9] == PAD
    target = pipe.encode_targets(["1990-01-03"])
    assert target[0, 0] == BOS and target[0, -1] == EOS and target.shape == (1, 12)
    assert pipe.tok.decode(source[0, :8].tolist()) == "3/1/1990"


# --- decoding ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_greedy_and_beam_are_deterministic_and_one_beam_is_greedy(name, trained):
    pipe = load_for_sampling(trained[name].path, device="cpu")
    sources = ["3/1/1990", "May 5, 1991", "1990.2.14"]
    greedy = pipe.translate(sources)
    again = pipe.translate(sources)
    assert [t for t, _ in greedy] == [t for t, _ in again]
    ids = pipe.encode_sources(sources)
    batched = N.greedy(pipe.stepper(), ids, ids != PAD, BOS, EOS, 24, NEVER_WRITTEN)
    for i, source in enumerate(sources):
        one = pipe.encode_sources([source])
        tokens, amap = N.beam_search(pipe.stepper(), one, one != PAD, BOS, EOS, 24, 1,
                                     NEVER_WRITTEN)
        assert tokens == batched[i][0]      # a batch decodes each source as alone
        assert torch.allclose(amap, batched[i][1], atol=1e-5)
        # attention: one row per written character, over the source and its [EOS]
        assert amap.shape == (len(tokens), len(source) + 1)
        assert torch.allclose(amap.sum(-1), torch.ones(len(tokens)), atol=1e-4)
    beams = [pipe.translate([s], num_beams=3)[0][0] for s in sources]
    assert beams == [pipe.translate([s], num_beams=3)[0][0] for s in sources]


class MarkovStepper:
    """A toy step function: the next token's log-probabilities depend on the last token only
    (a table), so the best sequence can be found by hand."""

    def __init__(self, table):
        self.table = torch.tensor(table).log()

    def start(self, source, mask):
        return {"n": torch.zeros(len(source))}

    def step(self, previous, state):
        return self.table[previous], torch.ones(len(previous), 1), state

    def select(self, state, index):
        return {"n": state["n"].index_select(0, index)}


def test_beam_search_finds_the_likelier_sequence_that_greedy_misses():
    # tokens: 0 start, 1 end, 2 "a", 3 "b". Greedy takes "a" (0.6) but after it every next
    # token is unlikely (0.3 at best); "b" (0.4) then ends with 0.9: 0.36 against 0.18.
    table = [[0.0, 0.0, 0.6, 0.4],
             [0.25, 0.25, 0.25, 0.25],
             [0.2, 0.3, 0.25, 0.25],
             [0.0, 0.9, 0.05, 0.05]]
    source = torch.zeros(1, 1, dtype=torch.long)
    mask = torch.ones(1, 1, dtype=torch.bool)
    (greedy, _), = N.greedy(MarkovStepper(table), source, mask, 0, 1, 5, (0,))
    assert greedy == [2]                 # "a", then the end (0.3): 0.18
    best, amap = N.beam_search(MarkovStepper(table), source, mask, 0, 1, 5, 2, (0,))
    assert best == [3] and amap.shape == (1, 1)
    assert N.beam_search(MarkovStepper(table), source, mask, 0, 1, 5, 1, (0,))[0] == greedy


# --- sampling, the tool, evaluation ------------------------------------------------------
def test_samples_are_validation_pairs_drawn_by_the_seed(trained, tiny_data):
    pipe = load_for_sampling(trained["seq2seq-transformer"].path, device="cpu")
    texts = pipe.sample(4, seed=1).texts
    assert texts == pipe.sample(4, seed=1).texts and texts != pipe.sample(4, seed=2).texts
    sources = {s for s, _ in tiny_data.val_pairs}
    for text in texts:
        source, _, rest = text.partition(" -> ")
        assert source in sources and re.fullmatch(r".* \(\d{4}-\d\d-\d\d\)", rest)
    one = pipe.sample(2, seed=0, source="May 5, 1991", num_beams=2).texts
    assert one == [f"May 5, 1991 -> {pipe.translate(['May 5, 1991'], 2)[0][0]}"] * 2


@pytest.mark.parametrize("name", list(TINY))
def test_translate_tool_draws_the_alignment(name, trained, tmp_path):
    out = tmp_path / "align.png"
    assert main(["tool", str(trained[name].path), "translate", "--set", "source=May 5, 1991",
                 "--set", "num_beams=2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pipe = load_for_sampling(trained[name].path, device="cpu")
    ctx = ToolContext(images=None, load_data=tiny_dates, cache_dir=tmp_path)
    result = pipe.translate_tool(ctx, source="", num_beams=1, max_length=0)
    first = tiny_dates().val_pairs[0][0]      # empty: the first validation source
    assert result.text == f"{first} -> {pipe.translate([first])[0][0]}"
    assert result.figure_png[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_sources_are_refused_in_one_line(trained, capsys):
    pipe = load_for_sampling(trained["seq2seq-gru"].path, device="cpu")
    with pytest.raises(StudioError, match=r"never saw.*'#@'"):
        pipe.sample(1, seed=0, source="@3/1/1990#")
    for empty in ("", "   "):
        with pytest.raises(StudioError, match="source is empty"):
            pipe.check_source(empty)
    with pytest.raises(StudioError, match="source is empty"):
        pipe.sample(1, seed=0, source=" ")
    with pytest.raises(StudioError, match="at most"):
        pipe.sample(1, seed=0, source="1" * pipe.info["positions"])
    assert main(["tool", str(trained["seq2seq-gru"].path), "translate",
                 "--set", "source=3/1/1990 \u00e9"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_evaluation_reports_exact_match_next_to_the_copy_baseline(trained, tiny_data):
    pytest.importorskip("pipelines.metrics.text_baselines")
    from pipelines.metrics.text_baselines import copy_digits_baseline
    pipe = load_for_sampling(trained["seq2seq-gru"].path, device="cpu")
    scores = pipe.evaluate(tiny_data, None)
    for key in ("exact_match", "char_accuracy", "held_out_exact_match",
                "held_out_char_accuracy", "baseline_copy_exact_match",
                "baseline_copy_held_out_exact_match", "loss"):
        assert key in scores, key
    assert scores["baseline_copy_exact_match"] == copy_digits_baseline(tiny_data.val_pairs)
    predictions = [t for t, _ in pipe.translate([s for s, _ in tiny_data.val_pairs])]
    exact = sum(p == t for p, (_, t) in zip(predictions, tiny_data.val_pairs))
    assert scores["exact_match"] == pytest.approx(exact / len(predictions))


# --- exports -----------------------------------------------------------------------------
def test_transformer_export_loads_with_transformers_and_gives_the_studio_answer(trained):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    run = trained["seq2seq-transformer"]
    dest = export_run(run)
    folder = str(dest / "transformers")
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    pipe = load_for_sampling(run.path, device="cpu")
    for source in ("3/1/1990", "May 5, 1991"):
        inputs = tok([source], return_tensors="pt")
        out = model.generate(**inputs)                       # its saved greedy settings
        ours = pipe.translate([source])[0][0]
        assert tok.decode(out[0], skip_special_tokens=True) == ours
    card = (dest / "README.md").read_text()
    assert "AutoModelForSeq2SeqLM.from_pretrained" in card


def test_gru_export_loads_with_its_documented_snippet(trained, monkeypatch):
    run = trained["seq2seq-gru"]
    dest = export_run(run)
    card = (dest / "README.md").read_text()
    code = re.search(r"```python\n(import json.*?)```", card, re.S).group(1)
    assert '"the 3rd of March, 1994"' in code
    code = code.replace('"the 3rd of March, 1994"', '"May 5, 1991"')   # the tiny data's
    monkeypatch.chdir(dest)
    scope = {}
    exec(compile(code, "loader", "exec"), scope)
    pipe = load_for_sampling(run.path, device="cpu")
    assert scope["tok"].decode(scope["tokens"]) == pipe.translate(["May 5, 1991"])[0][0]
