"""The `word2vec` pipeline's declaration, without torch (pipelines/core/spec.py): skip-gram with
negative sampling (Mikolov et al. 2013, "Distributed Representations of Words and Phrases and
their Compositionality"), trained with gensim's Word2Vec on a text corpus, and the embedding
explorer's three tools, which the text family's models offer too (pipelines/text/spec.py).

Read in order: Word2VecConfig (how the corpus becomes words, then gensim's options), the
sampling controls (the neighbour lists `studio sample` writes), the explorer's tool options,
then the measured training defaults. The implementation is pipelines/language/word2vec.py; the
explorer is pipelines/language/embeddings.py.

The run's seed is the trainer's `--seed` (as for every model): it seeds gensim's initial
vectors and the random numbers of every step (negative samples, window sizes, subsampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import option, seed_option
from ..core.spec import PipelineSpec, Tool


@dataclass
class Word2VecConfig:
    # --- the corpus as words (word2vec.py's `corpus_words`) ----------------------------------
    skip_capital_lines: bool = option(True, "Leave out lines written all in capitals: in the "
                                      "bundled plays, the speaker tags (\"KING RICHARD.\") and "
                                      "headings, which would otherwise sit in the context of "
                                      "every speech's first words.")
    min_count: int = option(5, "Words seen fewer times in the training text are left out of "
                            "the vocabulary and the training (gensim's min_count; Mikolov "
                            "et al. 2013 used 5).", low=1, high=1_000_000)
    max_vocab: int = option(50_000, "Keep at most this many of the most frequent words "
                            "(gensim's max_final_vocab): the vocabulary is stored with the "
                            "weights.", low=2, high=1_000_000)
    # --- the model (gensim.models.Word2Vec, sg=1, hs=0) --------------------------------------
    vector_size: int = option(50, "Dimensions of each word vector (gensim's vector_size). "
                              "Mikolov et al. used 300 on billions of words; on Shakespeare's "
                              "~170,000, 50 found more analogies than 100 (word2vec.py).",
                              low=2, high=1000)
    window: int = option(5, "Context words on each side of a word; each step draws a window "
                         "of 1..window per word, so near words count more (gensim's window; "
                         "Mikolov et al. 2013: 5).", low=1, high=50)
    negative: int = option(5, "Noise words drawn per (word, context) pair in negative "
                           "sampling (Mikolov et al. 2013: 5-20 for small data sets, 2-5 for "
                           "large ones).", low=1, high=50)
    ns_exponent: float = option(0.75, "Noise distribution: unigram counts to this power "
                                "(Mikolov et al. 2013 found 0.75 best; gensim's ns_exponent).",
                                low=-1.0, high=1.0)
    sample: float = option(1e-3, "Subsampling of frequent words: a word of frequency f is "
                           "kept with probability about sqrt(sample / f) (Mikolov et al. 2013, "
                           "section 2.3; gensim's sample, 1e-3 by default); 0 keeps all.",
                           low=0.0, high=1.0)
    alpha: float = option(0.025, "Learning rate of gensim's plain SGD at the first step (the "
                          "word2vec tool's default for skip-gram).", low=1e-6, high=1.0)
    min_alpha: float = option(1e-4, "Learning rate at decay_steps: it falls linearly from "
                              "alpha, as in word2vec (gensim's min_alpha).", low=0.0, high=1.0)
    decay_steps: int = option(1200, "The step where the learning rate reaches min_alpha "
                              "(held there after); set it to --steps. 0: alpha throughout.",
                              low=0)
    val_pairs: int = option(20_000, "(word, context) pairs of the validation text whose "
                            "negative-sampling loss is logged at every log step (always the "
                            "same ones); evaluation scores up to ten times as many.", low=100,
                            high=10_000_000)


@dataclass
class Word2VecSampleControls:
    words: str = option("king love sword lord death heaven night father", "Words whose "
                        "nearest neighbours each sample lists (one word a sample), separated "
                        "by spaces; a word missing from the vocabulary says so.")
    top_k: int = option(8, "Neighbours listed per word, nearest first.", low=1, high=100)


# --- the embedding explorer's tools (embeddings.py's EmbeddingTools implements them) ----------
WORDS_HELP = ("a text model's \"words\" are its tokens: characters, or BPE pieces (\"king\" "
              "finds the piece \"Ġking\", a word after a space); write a space as ␣ and a "
              "newline as \\n")


@dataclass
class NeighboursOptions:
    word: str = option("", f"The word whose nearest neighbours to list; {WORDS_HELP}. Empty: "
                       "a common one (king; a character model: e).")
    top_k: int = option(10, "How many neighbours, by cosine similarity, nearest first.",
                        low=1, high=200)


@dataclass
class AnalogyOptions:
    query: str = option("", "Vector arithmetic on words, e.g. \"king - man + woman\" (the "
                        "answer ranks words near king - man + woman, the query's words "
                        "excluded: gensim's most_similar, 3CosAdd, Mikolov et al. 2013); "
                        f"{WORDS_HELP}. Empty: king - man + woman (a character model: "
                        "A - a + b).")
    top_k: int = option(5, "How many answers, best first.", low=1, high=100)


@dataclass
class MapOptions:
    words: str = option("", "The words to place on the map, separated by spaces (a comma "
                        f"after a word is ignored), at least 3; {WORDS_HELP}. Empty: a list "
                        "of people, places and things (a character model: all its "
                        "characters).")
    method: str = option("pca", "pca: the two principal components of the words' unit "
                         "vectors (scikit-learn's PCA; distances along them are real); "
                         "tsne: t-SNE (van der Maaten & Hinton 2008, scikit-learn), which "
                         "keeps neighbours together but not distances.",
                         choices=("pca", "tsne"))
    seed: int = seed_option(0, "t-SNE's seed (PCA needs none).")


EMBEDDING_TOOLS = (
    Tool("neighbours", "tool_neighbours", NeighboursOptions,
         "A word's nearest neighbours in the embedding, with their cosine similarity."),
    Tool("analogy", "tool_analogy", AnalogyOptions,
         "Analogy arithmetic: the words nearest a - b + c (\"king - man + woman\"), ranked."),
    Tool("map", "tool_map", MapOptions,
         "A 2-D map (PCA or t-SNE) of chosen words, each written next to its point."),
)

# Measured on `shakespeare`, one thread of the shared 2-core CPU (word2vec.py's docstring has
# the numbers): 512 passages (~12,000 words) a step, 7,405 training passages, so 1,200 steps
# are ~83 passes over the corpus, in about a minute. Eight samples: one neighbour list for
# each default probe word. gensim trains on the CPU whatever the machine: on a GPU the
# trainer keeps the vectors there and each step copies them over and back (~1 MB).
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 1200, "batch_size": 512, "log_every": 100,
                                  "sample_every": 400, "checkpoint_every": 400,
                                  "sample_count": 8}

# `--preset gpu`: word2vec gains nothing from a GPU (gensim trains on one CPU thread, so that
# a run repeats exactly); on a GPU machine this is a longer run, ~250 passes over Shakespeare
# in batches of 1,024 passages, about 2 minutes. It keeps 50 dimensions: on Shakespeare 100
# answered fewer analogies (3.7% vs 5.3% at 160 epochs, one gensim call each; word2vec.py).
GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"decay_steps": 1800},
    "trainer": {"steps": 1800, "batch_size": 1024, "mixed_precision": "auto",
                "sample_every": 600, "checkpoint_every": 600}}

WORD2VEC_SPEC = PipelineSpec(
    name="word2vec", family="language", kind="embeddings",
    summary="Skip-gram word vectors with negative sampling (gensim's Word2Vec); nearest "
            "neighbours, analogies and a 2-D map of words",
    impl="pipelines.language.word2vec:Word2Vec", Config=Word2VecConfig,
    SampleControls=Word2VecSampleControls, tools=EMBEDDING_TOOLS,
    train_defaults=TRAIN_DEFAULTS, presets={"gpu": GPU_PRESET}, data_kind="text",
    example_data="shakespeare")

SPECS = (WORD2VEC_SPEC,)
