"""The bert pipeline: masked-LM pre-training then fine-tuning in one run, exact resume across
the phase boundary, fine-tuning from a finished run (init_from), the tools, the exports that
transformers loads alone, and one-line errors for bad input. Tiny models on a small CSV of
Shakespeare passages (three plays), so that the whole file takes seconds."""

import csv
import math
import os
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.core.checkpoints import FORMAT, save_weights  # noqa: E402
from pipelines.core.errors import StudioError  # noqa: E402
from pipelines.core.run_setup import load_data_for, start_run  # noqa: E402
from pipelines.core.training_run import train_run  # noqa: E402
from pipelines.data.language import load_labelled_text  # noqa: E402
from pipelines.registry import get_entry, load_pipeline_class  # noqa: E402
from pipelines.services.export import export_run  # noqa: E402
from pipelines.services.loading import load_for_sampling  # noqa: E402
from pipelines.services.sampling import run_tool  # noqa: E402

from helpers import records  # noqa: E402

TINY = {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32,
        "vocab_size": 300, "max_length": 32, "pretrain_steps": 4, "finetune_steps": 4,
        "warmup_steps": 2, "finetune_warmup_steps": 2, "val_mlm_passages": 16,
        "text": "passage", "target": "play"}
TRAINER = {"steps": 8, "batch_size": 8, "log_every": 1, "checkpoint_every": 3, "seed": 5,
           "final_eval": False, "sample_every": 0}


@pytest.fixture(scope="module")
def plays_csv(tmp_path_factory):
    """40 training-split passages of each of three plays as a user's CSV (passage, play)."""
    data = load_labelled_text("shakespeare-lines")
    path = tmp_path_factory.mktemp("bert-data") / "plays.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["passage", "play"])
        for k in (0, 3, 7):
            rows = [t for t, y in zip(data.train_texts, data.train_labels) if y == k][:40]
            writer.writerows([t, data.class_names[k]] for t in rows)
    return f"csv:{path}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("bert-runs")


def tiny(data, runs, name, config=None, **trainer):
    return start_run("bert", data, config_overrides={**TINY, **(config or {})},
                     trainer_overrides={**TRAINER, **trainer}, runs_dir=runs, name=name)


@pytest.fixture(scope="module")
def straight(plays_csv, runs):
    run = tiny(plays_csv, runs, "straight")
    assert train_run(run) == "done"
    return run


@pytest.fixture(scope="module")
def pipe(straight):
    return load_for_sampling(straight.path, device="cpu")


def tool(pipe, name, **options):
    return run_tool(pipe, name, options, cache_dir=tempfile.gettempdir())  # bert's use none


# --- training -----------------------------------------------------------------------------
def test_spec_declares_a_language_text_classifier():
    spec = get_entry("bert")
    assert (spec.family, spec.kind, spec.data_kind) == ("language", "text-classifier",
                                                        "labelled-text")
    assert spec.example_data == "shakespeare-lines" and "gpu" in spec.presets
    defaults = load_pipeline_class("bert").Config()
    assert spec.train_defaults["steps"] == defaults.pretrain_steps + defaults.finetune_steps


def test_pretrains_then_finetunes_and_resumes_exactly_across_the_boundary(straight, plays_csv,
                                                                          runs):
    rows = [r for r in straight.metrics() if "grad_norm" in r]
    assert [r["step"] for r in rows] == list(range(1, 9))
    pretrain, finetune = rows[:4], rows[4:]
    assert all("mlm_loss" in r and "loss" not in r for r in pretrain)
    assert all("loss" in r and "mlm_loss" not in r for r in finetune)
    assert all(r["lr_finetune"] == 0 and r["lr_pretrain"] > 0 for r in pretrain)
    assert all(r["lr_finetune"] > 0 and r["lr_pretrain"] == 0 for r in finetune)  # idle: 0
    # Validation: the masked-LM's numbers while it trains, then the classifier's; so the
    # best weights (by accuracy) are fine-tuned ones.
    assert all(0 < r["val/mlm_loss"] and "val/accuracy" not in r for r in pretrain)
    assert all(0 <= r["val/accuracy"] <= 1 and "val/mlm_loss" not in r for r in finetune)
    assert straight.info()["best"]["step"] > 4
    vocab = straight.info()["data_info"]["vocab_size"]
    assert math.isclose(pretrain[0]["mlm_loss"], math.log(vocab), rel_tol=0.1)  # ~uniform
    # Stopped at step 3 (inside pre-training), resumed to 8: the fine-tuning phase starts
    # after the resume and every logged number matches the uninterrupted run's.
    split = tiny(plays_csv, runs, "split", steps=3)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=8) == "done"
    assert records(split)[3:] == records(straight)[3:]


def test_bag_of_tokens_task_trains_the_cls_position_and_resumes_exactly(straight, plays_csv,
                                                                       runs):
    """bag_of_tokens > 0: pre-training logs the [CLS] bag-of-tokens loss beside the masked
    LM's (near the log of the vocabulary at first: uniform), and resume is still exact."""
    config = {"bag_of_tokens": 1.0}
    run = tiny(plays_csv, runs, "bag", config, steps=6)
    assert train_run(run) == "done"
    rows = [r for r in run.metrics() if "grad_norm" in r]
    vocab = run.info()["data_info"]["vocab_size"]
    assert all("bag_loss" in r for r in rows[:4]) and "bag_loss" not in rows[4]
    assert math.isclose(rows[0]["bag_loss"], math.log(vocab), rel_tol=0.1)
    split = tiny(plays_csv, runs, "bag-split", config, steps=3)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=6) == "done"
    assert records(split)[3:] == records(run)[3:]
    assert not any("bag_loss" in r for r in straight.metrics())   # off by default


def test_finetuning_starts_from_the_pretrained_encoder_and_so_does_its_average(plays_csv,
                                                                              runs):
    """With finetune_lr 0 the classifier holds the copied encoder; so does its weight average
    (ema_decay), which the loaded run uses: it began at fine-tuning's first step (Phase
    ema=False for pre-training). Had it counted the 4 pre-training steps, the random encoder
    the classifier was built with would weigh 0.8 in it (power 1: decay 1 - 1/5)."""
    for config in ({"ema_decay": 0.0}, {}):
        run = tiny(plays_csv, runs, f"frozen-finetune-{len(config)}",
                   {"finetune_lr": 0.0, **config}, steps=6)
        assert train_run(run) == "done"
        pipe = load_for_sampling(run.path, device="cpu")
        encoder = pipe.masked_lm.bert.state_dict()
        copied = pipe.classifier.bert.state_dict()
        assert set(copied) - set(encoder) == {"pooler.dense.weight", "pooler.dense.bias"}
        for key, value in encoder.items():   # lr 0: the classifier still holds the copy
            if config:
                assert torch.equal(copied[key], value), key
            else:   # the average's first update, a - (a - b), is b to within rounding
                torch.testing.assert_close(copied[key], value, rtol=0, atol=1e-7)


def test_init_from_a_finished_run_or_its_export_finetunes_only(straight, plays_csv, runs):
    for source in (str(straight.path), str(export_run(straight))):
        run = tiny(plays_csv, runs, "init", {"init_from": source, "pretrain_steps": 0,
                                             "hidden_size": 64}, steps=2)
        info = run.info()["data_info"]
        assert info["tokenizer"] == straight.info()["data_info"]["tokenizer"]
        assert info["model_config"]["hidden_size"] == 16      # the source's shape
        from pipelines.core.trainer import Trainer
        trainer = Trainer(run)   # builds the pipeline and its optimisers: the source weights
        start = load_for_sampling(straight.path, device="cpu").masked_lm.state_dict()
        for key, value in trainer.pipeline.masked_lm.state_dict().items():
            assert torch.equal(value, start[key]), key
        assert trainer.train(resume=False) == "done"
        assert all("mlm_loss" not in r for r in run.metrics() if "grad_norm" in r)
    other = runs / "other.safetensors"     # another pipeline's weights
    save_weights(other, {"net.weight": torch.zeros(1)},
                 {"studio_format": FORMAT, "studio_pipeline": "mlp"})
    with pytest.raises(StudioError, match="not a bert run"):
        tiny(plays_csv, runs, "bad-init", {"init_from": str(other)})


# --- tools --------------------------------------------------------------------------------
def test_classify_gives_probabilities_that_sum_to_one(pipe):
    result = tool(pipe, "classify", passage="O Romeo, Romeo, wherefore art thou Romeo?")
    assert set(result.probabilities) == set(pipe.info["class_names"])
    assert math.isclose(sum(result.probabilities.values()), 1.0, rel_tol=1e-5)
    assert result.text.startswith("predicted: ")
    assert result.values is None             # one source: the API puts them in its values
    assert set(tool(pipe, "classify").probabilities) == set(pipe.info["class_names"])  # val


def test_fill_mask_lists_k_fillings_for_each_mask(pipe):
    result = tool(pipe, "fill-mask", text="To be or not to [MASK], that is the [MASK].",
                  top_k=3)
    assert list(result.values) == ["mask 1", "mask 2"]
    for fillings in result.values.values():
        probs = [f["probability"] for f in fillings]
        assert len(fillings) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1
    assert "[MASK]" not in result.text.splitlines()[0]   # the text filled in


def test_attention_map_and_class_report(pipe, straight):
    result = tool(pipe, "attention", passage="Now is the winter of our discontent",
                  model="masked-lm")
    assert result.figure_png[:8] == b"\x89PNG\r\n\x1a\n" and result.values["layer"] == 0
    from pipelines.text.tools import attention_weights
    ids = pipe.passage_ids("Now is the winter of our discontent")[0].tolist()
    weights = attention_weights(pipe.classifier, ids, -1, 1)
    assert torch.allclose(weights.sum(-1), torch.ones(len(ids)), atol=1e-5)

    report = tool(pipe, "class-report", split="val")
    data = load_data_for(type(pipe), pipe.config, pipe.info["name"])
    assert report.figure_png[:8] == b"\x89PNG\r\n\x1a\n"
    names = pipe.info["class_names"]
    assert sum(report.values[f"support/{n}"] for n in names) == len(data.val_texts)
    assert all(0 <= report.values[f"{m}/{n}"] <= 1 for m in ("precision", "recall", "f1")
               for n in names)
    assert math.isclose(report.values["accuracy"], pipe.validate(data)["accuracy"],
                        rel_tol=1e-6)


def test_evaluate_reports_the_tfidf_baselines_beside_the_model(pipe, straight):
    data = load_data_for(type(pipe), pipe.config, pipe.info["name"])
    scores = pipe.evaluate(data, straight.path)
    for key in ("accuracy", "macro_f1", "mlm_loss", "mlm_accuracy",
                "baseline_tfidf_word_accuracy", "baseline_tfidf_char_accuracy",
                "baseline_tfidf_word_macro_f1", "baseline_tfidf_char_macro_f1"):
        assert 0 <= scores[key] <= (20 if key == "mlm_loss" else 1), key


def test_bad_input_is_refused_in_one_line(pipe, plays_csv, runs):
    with pytest.raises(StudioError, match="no \\[MASK\\]"):
        tool(pipe, "fill-mask", text="To be or not to be")
    with pytest.raises(StudioError, match="passage is empty"):
        tool(pipe, "classify", passage="  \n ")
    # Characters no training passage has still encode (byte-level BPE): a passage of them
    # is classified, not refused.
    unseen = tool(pipe, "classify", passage="\u2603\u2603 \u4e2d\u6587 \U0001f600")
    assert math.isclose(sum(unseen.probabilities.values()), 1.0, rel_tol=1e-5)
    with pytest.raises(StudioError, match="must divide by heads"):
        tiny(plays_csv, runs, "bad-heads", {"hidden_size": 18, "heads": 4})
    with pytest.raises(StudioError, match="writes none"):
        pipe.sample(1, seed=0)


# --- export -------------------------------------------------------------------------------
def test_exports_load_with_transformers_alone_and_give_the_studio_answer(pipe, straight):
    from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification,
                              AutoTokenizer)
    dest = export_run(straight)
    passage = "But soft, what light through yonder window breaks?"
    tok = AutoTokenizer.from_pretrained(str(dest / "classifier"), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(dest / "classifier"),
                                                               local_files_only=True).eval()
    assert [model.config.id2label[i] for i in range(3)] == pipe.info["class_names"]
    with torch.no_grad():
        probs = model(**tok(passage, truncation=True, return_tensors="pt")).logits.softmax(-1)
    ours = tool(pipe, "classify", passage=passage).probabilities
    expected = torch.tensor([ours[n] for n in pipe.info["class_names"]])
    assert torch.allclose(probs[0], expected, atol=1e-5)

    masked = AutoModelForMaskedLM.from_pretrained(str(dest / "masked-lm"),
                                                  local_files_only=True).eval()
    mlm_tok = AutoTokenizer.from_pretrained(str(dest / "masked-lm"), local_files_only=True)
    ids = mlm_tok("To be or not to [MASK].", return_tensors="pt").input_ids
    assert ids[0].tolist() == pipe.passage_ids("To be or not to [MASK].")[0].tolist()
    with torch.no_grad():
        assert torch.allclose(masked(input_ids=ids).logits,
                              pipe.masked_lm(input_ids=ids).logits, atol=1e-5)
    card = (dest / "README.md").read_text()
    assert "AutoModelForSequenceClassification.from_pretrained" in card and "fill-mask" in card


# --- the masking ------------------------------------------------------------------------------
def test_masking_chooses_15_percent_then_80_10_10(pipe):
    torch.manual_seed(0)
    fast = pipe.fast
    ids = torch.randint(0, pipe.info["vocab_size"] - 5, (400, 30))   # no special token
    ids[:, 0], ids[:, -1] = fast.cls_token_id, fast.sep_token_id      # [CLS] ... [SEP]
    inputs, targets = pipe.mask_tokens(ids)
    chosen = targets != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()     # never a special token
    assert abs(chosen[:, 1:-1].float().mean().item() - 0.15) < 0.01
    masked = ((inputs == fast.mask_token_id) & chosen).sum() / chosen.sum()
    unchanged = ((inputs == ids) & chosen).sum() / chosen.sum()
    assert abs(masked.item() - 0.8) < 0.02 and abs(unchanged.item() - 0.1) < 0.02
    assert torch.equal(targets[chosen], ids[chosen])
