"""word2vec (pipelines/language/word2vec.py) and the embedding explorer
(pipelines/language/embeddings.py): the words a text becomes, training in the trainer with an
exact resume, the neighbours / analogy / map tools and their one-line errors, the export that
gensim loads, and the same tools on a text model's token embedding."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.cli import main  # noqa: E402
from pipelines.core.checkpoints import load_weights  # noqa: E402
from pipelines.core.errors import StudioError  # noqa: E402
from pipelines.core.run_setup import start_run  # noqa: E402
from pipelines.core.training_run import train_run  # noqa: E402
from pipelines.data.text import read_shakespeare  # noqa: E402
from pipelines.language.embeddings import parse_query  # noqa: E402
from pipelines.language.word2vec import corpus_words, word_tokenizer  # noqa: E402
from pipelines.registry import get_entry  # noqa: E402
from pipelines.services.export import export_run  # noqa: E402
from pipelines.services.loading import load_for_sampling  # noqa: E402
from pipelines.services.sampling import run_tool  # noqa: E402

from helpers import TEXT_TRAINER, records  # noqa: E402

TINY = {"vector_size": 8, "window": 2, "min_count": 2, "decay_steps": 6, "val_pairs": 500}
TRAINER = {"steps": 6, "batch_size": 16, "log_every": 1, "sample_every": 3,
           "checkpoint_every": 3, "seed": 5, "final_eval": True, "sample_count": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """30,000 characters of the plays (~5,000 words) as a user's text file."""
    path = tmp_path_factory.mktemp("w2v") / "plays.txt"
    path.write_text(read_shakespeare()[:30_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("w2v-runs")


def tiny(corpus, runs, name, **trainer):
    return start_run("word2vec", f"text:{corpus}", config_overrides=TINY,
                     trainer_overrides={**TRAINER, **trainer}, runs_dir=runs, name=name)


@pytest.fixture(scope="module")
def straight(corpus, runs):
    run = tiny(corpus, runs, "straight")
    assert train_run(run) == "done"
    return run


@pytest.fixture(scope="module")
def pipe(straight):
    return load_for_sampling(straight.path, device="cpu")


def tool(pipe, name, tmp_path, **options):
    return run_tool(pipe, name, options, cache_dir=tmp_path)


# --- words --------------------------------------------------------------------------------
def test_words_are_lower_case_letters_with_inner_apostrophes_by_passage():
    text = ("KING RICHARD.\nO'er the HILL, 'tis Romeo\u2019s--love!\n\nACT II.\n"
            "3 swords, ne'er drawn")
    tok = word_tokenizer([])
    assert corpus_words(tok, text, True) == [["o'er", "the", "hill", "tis", "romeo's", "love"],
                                             ["swords", "ne'er", "drawn"]]
    # the speaker tag and the heading stay when capital lines are kept
    assert corpus_words(tok, text, False)[0][:2] == ["king", "richard"]
    assert corpus_words(tok, " ".join(["word"] * 2500), True) == \
        [["word"] * 1000, ["word"] * 1000, ["word"] * 500]


def test_too_few_words_is_one_line(tmp_path, runs):
    path = tmp_path / "short.txt"
    path.write_text("Each word here differs from every other one, said once only. " * 3
                    + "Zebra.", encoding="utf-8")
    with pytest.raises(StudioError, match="lower min_count"):
        start_run("word2vec", f"text:{path}", config_overrides={"min_count": 5},
                  runs_dir=runs, name="short")


# --- training ---------------------------------------------------------------------------------
def test_trains_logs_and_samples_neighbours(straight):
    rows = [r for r in straight.metrics() if "loss_per_word" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["loss_per_word"] > 0 and r["val/pair_loss"] > 0 for r in rows)
    # the learning rate falls linearly from alpha to min_alpha at decay_steps
    assert rows[0]["lr"] == pytest.approx(0.025) and rows[-1]["lr"] < 0.005
    info = straight.info()
    assert info["data_info"]["vocab_size"] == len(info["data_info"]["word_counts"]) > 50
    assert info["eval"]["vocabulary"] == info["data_info"]["vocab_size"]
    assert info["eval"]["analogy_questions"] + info["eval"]["analogy_skipped"] > 0
    text = (straight.path / "samples" / "step_000006.txt").read_text()
    assert text.startswith("king: ")       # the first probe words, one sample each


def test_resumes_exactly(corpus, runs, straight):
    split = tiny(corpus, runs, "split", steps=3, final_eval=False)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=6) == "done"
    steps = [r for r in records(split) if "loss_per_word" in r]
    assert steps[3:] == [r for r in records(straight) if "loss_per_word" in r][3:]
    a, _ = load_weights(straight.weights_path)
    b, _ = load_weights(split.weights_path)
    assert a.keys() == b.keys() == {"vectors.words.weight", "vectors.contexts.weight"}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_seed_changes_the_vectors(corpus, runs, straight):
    other = tiny(corpus, runs, "other-seed", steps=1, seed=6, final_eval=False)
    assert train_run(other) == "done"
    first = tiny(corpus, runs, "same-seed", steps=1, final_eval=False)
    assert train_run(first) == "done"
    same = load_weights(first.weights_path)[0]["vectors.words.weight"]
    assert not torch.equal(same, load_weights(other.weights_path)[0]["vectors.words.weight"])
    steps_1 = [r for r in records(straight) if r["step"] == 1 and "loss_per_word" in r]
    assert [r for r in records(first) if "loss_per_word" in r] == steps_1


# --- the tools ------------------------------------------------------------------------------
def test_neighbours_are_the_cosine_nearest(pipe, tmp_path):
    word = pipe.words[3]
    out = tool(pipe, "neighbours", tmp_path, word=word.upper(), top_k=4)
    found = out.values["neighbours"]
    vectors = pipe.modules["vectors"].words.weight.detach().numpy()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit[3]
    cosine[3] = -np.inf
    nearest = np.argsort(-cosine)[:4]
    assert [r["word"] for r in found] == [pipe.words[i] for i in nearest]
    assert [r["similarity"] for r in found] == pytest.approx(cosine[nearest], abs=1e-5)
    assert out.text.splitlines()[0] == f"nearest to {word} (cosine similarity):"


def test_analogy_ranks_a_minus_b_plus_c_without_the_query(pipe, tmp_path):
    a, b, c = pipe.words[5:8]
    out = tool(pipe, "analogy", tmp_path, query=f"{a} - {b} + {c}", top_k=5)
    answers = [r["word"] for r in out.values["answers"]]
    assert len(answers) == 5 and not {a, b, c} & set(answers)
    vectors = pipe.modules["vectors"].words.weight.detach().numpy().astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    target = unit[5] - unit[6] + unit[7]
    scores = unit @ target
    scores[[5, 6, 7]] = -np.inf
    assert answers == [pipe.words[i] for i in np.argsort(-scores)[:5]]


def test_query_parsing_and_its_errors():
    assert parse_query("king - man + woman") == (["king", "woman"], ["man"])
    assert parse_query("- man + king+woman") == (["king", "woman"], ["man"])
    for bad in ("king", "king woman", "king - - man", "king -", "- man"):
        with pytest.raises(StudioError, match="king - man \\+ woman"):
            parse_query(bad)


def test_map_draws_the_words(pipe, tmp_path):
    words = " ".join(pipe.words[:12]) + ","
    for method in ("pca", "tsne"):
        out = tool(pipe, "map", tmp_path, words=words, method=method)
        assert out.figure_png[:8] == b"\x89PNG\r\n\x1a\n"
        assert out.values["words"] == pipe.words[:12]
    with pytest.raises(StudioError, match="at least 3"):
        tool(pipe, "map", tmp_path, words=f"{pipe.words[0]} {pipe.words[1]}")


def test_an_unknown_word_names_it_and_close_ones(pipe, tmp_path):
    word = next(w for w in pipe.words if len(w) >= 6)
    with pytest.raises(StudioError) as e:
        tool(pipe, "neighbours", tmp_path, word=word + "q")
    message = str(e.value)
    assert f"'{word}q' is not in the model's vocabulary" in message and word in message
    assert "\n" not in message
    with pytest.raises(StudioError, match="'zzzzzz' is not in"):
        tool(pipe, "analogy", tmp_path, query=f"{pipe.words[0]} - zzzzzz + {pipe.words[1]}")


def test_tools_from_the_cli(straight, tmp_path, capsys):
    out = tmp_path / "map.png"
    assert main(["tool", str(straight.path), "map", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["tool", str(straight.path), "neighbours", "--set", "word=the"]) == 0
    assert "nearest to the" in capsys.readouterr().out


# --- export -------------------------------------------------------------------------------------
def test_export_loads_with_gensim_and_gives_the_studios_neighbours(straight, pipe, tmp_path):
    from gensim.models import KeyedVectors
    export_run(straight)
    folder = straight.path / "export" / "word2vec"
    vectors = KeyedVectors.load_word2vec_format(str(folder / "vectors.txt"), binary=False)
    assert vectors.index_to_key == pipe.words
    word = pipe.words[2]
    studio = tool(pipe, "neighbours", tmp_path, word=word, top_k=6).values["neighbours"]
    theirs = vectors.most_similar(word, topn=6)
    assert [w for w, _ in theirs] == [r["word"] for r in studio]
    assert [s for _, s in theirs] == pytest.approx([r["similarity"] for r in studio], abs=1e-6)
    card = (straight.path / "export" / "README.md").read_text()
    assert "load_word2vec_format" in card


# --- the same tools on a text model's token embedding ------------------------------------------
@pytest.fixture(scope="module")
def char_run(corpus, runs):
    run = start_run("transformer", f"text:{corpus}",
                    config_overrides={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 16},
                    trainer_overrides={**TEXT_TRAINER, "steps": 2}, runs_dir=runs,
                    name="char-tf")
    assert train_run(run) == "done"
    return run


def test_the_explorer_on_a_char_transformers_tokens(char_run, tmp_path):
    pipe = load_for_sampling(char_run.path, device="cpu")
    assert {t.name for t in get_entry("transformer").tools} == \
        {"attention", "neighbours", "analogy", "map"}
    near = tool(pipe, "neighbours", tmp_path, word="a", top_k=5)
    assert near.values["token"] == "a" and len(near.values["neighbours"]) == 5
    weight = pipe.model.get_input_embeddings().weight.detach().numpy()
    unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    a = pipe.tok.token_to_id("a")
    cosine = unit @ unit[a]
    cosine[a] = -np.inf
    assert near.values["neighbours"][0]["similarity"] == pytest.approx(cosine.max(), abs=1e-5)
    # a space is typed as ␣ and shown so
    spaced = tool(pipe, "neighbours", tmp_path, word="\u2423", top_k=3)
    assert spaced.values["token"] == "\u2423"
    assert tool(pipe, "analogy", tmp_path, query="", top_k=3).values["query"] == "A - a + b"
    drawn = tool(pipe, "map", tmp_path, words="")
    assert drawn.figure_png[:8] == b"\x89PNG\r\n\x1a\n" and "a" in drawn.values["tokens"]
    with pytest.raises(StudioError, match="not in the model's vocabulary of .* tokens"):
        tool(pipe, "neighbours", tmp_path, word="king")


def test_the_explorer_on_a_bpe_gru(corpus, runs, tmp_path):
    run = start_run("gru", f"text:{corpus}",
                    config_overrides={"embed_dim": 8, "hidden_size": 16, "layers": 1,
                                      "context": 16, "tokenizer": "bpe", "vocab_size": 300},
                    trainer_overrides={**TEXT_TRAINER, "steps": 1}, runs_dir=runs, name="bpe")
    assert train_run(run) == "done"
    pipe = load_for_sampling(run.path, device="cpu")
    space = pipe.embedding_space()
    the = space.find("the")                 # the piece " the" (Ġthe), typed without its space
    assert the is not None and space.label(the) == "\u2423the"
    out = tool(pipe, "neighbours", tmp_path, word="the", top_k=3)
    assert out.values["token"] == "\u2423the"
    assert len(tool(pipe, "map", tmp_path, words="").values["tokens"]) >= 3
