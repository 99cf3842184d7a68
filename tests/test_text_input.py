"""The text family's input: tokenizers that round-trip any text exactly and load with
transformers' AutoTokenizer, and clear errors, before any training, for what it cannot train
on (empty or binary files, a text shorter than the context, a transformer config that does
not fit together). Training, sampling and exports: tests/test_text.py."""

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.cli import main  # noqa: E402
from pipelines.data import load_data  # noqa: E402
from pipelines.data.text import read_shakespeare  # noqa: E402
from pipelines.core.errors import StudioError  # noqa: E402
from pipelines.text import Transformer  # noqa: E402
from pipelines.text import tokenizer as T  # noqa: E402
from pipelines.core.run_setup import start_run  # noqa: E402
from pipelines.core.training_run import train_run  # noqa: E402

from helpers import TEXT_TRAINER, plays_file  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The plays, outside the runs folders (the config check asserts its runs folder stays
    empty)."""
    return plays_file(tmp_path_factory.mktemp("text"))


# --- tokenizers --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizers_round_trip_exactly_and_load_with_autotokenizer(kind, tmp_path):
    from transformers import AutoTokenizer
    text = read_shakespeare()[:30_000]
    tok = T.train_tokenizer(text, kind, vocab_size=300)
    sample = text[-2000:] + "\n\n  two  spaces,\n"
    ids, ends = T.encode(tok, sample)
    assert tok.decode(ids) == sample and ends[-1] == len(sample)
    if kind == "char":  # one token per character; one it never saw is <unk>
        assert len(ids) == len(sample) and T.encode(tok, "\t")[0] == [T.unknown_id(tok)]
    else:  # byte-level: any text at all, accents and emoji included
        odd = "Tybalt — café ☕ 🎭\ttabs\n"
        assert tok.decode(T.encode(tok, odd)[0]) == odd and len(ids) < len(sample)
    T.save_for_transformers(tok, tmp_path)
    auto = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert auto.encode(sample, add_special_tokens=False) == ids
    assert auto.decode(ids) == sample


# --- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"", "holds only 0 characters"),
    (b"\x00" * 500, "binary"),
    (b"text\x00\x01\x02\x03" * 100, "binary"),
    (b"\xff\xfe\x00\x81" * 100, "not valid UTF-8"),
], ids=["empty", "nul-bytes", "control-codes", "not-utf8"])
def test_empty_or_binary_text_files_are_clear_errors(content, message, tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(StudioError, match=message):
        load_data(f"text:{path}")
    assert main(["--runs-dir", str(tmp_path), "train", "lstm", "--data", f"text:{path}"]) == 2
    assert message.split()[-1] in capsys.readouterr().err


def test_a_text_shorter_than_the_context_is_a_clear_error(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("To be, or not to be, that is the question. " * 4, encoding="utf-8")
    with pytest.raises(StudioError, match="lower context"):
        run = start_run("rnn", f"text:{path}", runs_dir=tmp_path,
                        config_overrides={"context": 400}, trainer_overrides=TEXT_TRAINER)
        train_run(run)


def test_transformer_config_is_checked_before_a_run_exists(corpus, tmp_path):
    with pytest.raises(StudioError, match="divide"):
        start_run("transformer", f"text:{corpus}", runs_dir=tmp_path,
                  config_overrides={"n_embd": 30, "n_head": 4})
    assert not any(tmp_path.iterdir())
    info = Transformer.describe_data(load_data(f"text:{corpus}"), Transformer.Config())
    assert json.loads(info["tokenizer"])["model"]["type"] == "WordLevel"
