"""word2vec: skip-gram with negative sampling (Mikolov et al. 2013) trained by gensim's Word2Vec
on a text corpus, in the studio's trainer, with the embedding explorer's tools
(embeddings.py) on its word vectors.

Reading order: how text becomes words (a `tokenizers` word-level tokenizer: the rule and the
vocabulary, stored with the run), the vocabulary derived once from the training text
(describe_data), the two matrices and the gensim model around them (build), one training step,
validation and evaluation, the neighbour lists that `sample` writes, the export.

Words: the text is lower-cased (curly apostrophes made straight) and a word is a run of
letters with inner apostrophes kept ("o'er", "romeo's", "ne'er"; a leading or trailing one
is dropped: "'tis" is "tis"); digits, punctuation and all else separate words. A sentence, for
gensim, is a passage: the text between blank lines (in the bundled plays, one speech), lines
written all in capitals left out (`skip_capital_lines`: speaker tags and headings), cut into
pieces of at most 1,000 words (a text with no blank lines is then still many sentences).

Why the trainer's steps and not one `fit` call (pipelines/classic's way, made for tables: one
call, no weights file, nothing to resume): a run gets what every other model has, a live loss
and ETA, checkpoints, an exact resume, samples (the neighbour lists) as it trains, and a run
folder with weights that `studio tool` and `studio export` read. One step trains gensim on one
batch of passages (`batch_size` of them, in the trainer's seeded order: an epoch is passages /
batch_size steps), calling `Word2Vec.train(batch, epochs=1)` with the learning rate of this
step. The two matrices live in a torch module, `vectors` (words: gensim's wv.vectors;
contexts: its syn1neg), whose memory gensim's arrays share, so the trainer's safetensors
checkpoints hold the model's whole state. gensim does its own SGD on them: the `sgd`
optimiser is never stepped; it holds the learning rate (alpha), which the trainer's linear
schedule sets before every step and checkpoints, as word2vec's own linear decay.
Exact resume: gensim with one worker is deterministic, and the random numbers of a step
(negatives, window sizes, subsampling) come from a generator seeded by torch's, which the
trainer seeds and checkpoints; the vocabulary and counts are in the run's info. A resumed run
repeats the uninterrupted one bit for bit (tests/test_word2vec.py).

Measured on `shakespeare` (7,405 training passages, 173,088 words, 3,001 of them seen 5
times or more), one thread: a step of 512 passages takes 27-31 ms, of which the trainer's own
work is ~1 ms (cProfile); 1,200 steps (~83 epochs) are ~40 s of work, 55-66 s measured on the
shared 2-core machine. One `gensim.models.Word2Vec(...)` call over the same 83 epochs took
34.5 s and answered the same 52 of 980 analogy questions: the steps cost neither speed nor
quality, so no torch re-implementation is needed. On an earlier 378-question gender analogy
test, 50 dimensions beat 100 (35 vs 21 right at 40 and 20 epochs; 46 at 80 epochs vs 26 at 60),
and a wider window (10) with sample=1e-4 did worse (11); on the final 980-question test, 100
dimensions at 160 epochs answered 3.7% (50 at 83 epochs: 5.3%). The default run (seed 0): analogy
accuracy@1 5.3% (family 11.3%, plural 1.5%), @5 14.1%, 980 questions asked, 126 skipped;
nearest to king: richard, queen, royalty, bolingbroke, crown, elizabeth; to love: cherish,
pains, modesty, forswear, devotion, hate; to sword (47 occurrences): nest, eight, pay, tailor,
unrelated: too few contexts. The validation pair loss stays at 2.73-2.77 from step 100 on
while the analogies improve (2.7% to 5.3%): it measures predicting the last play's contexts,
not how well the vectors are arranged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from torch import nn

from ..core.base import Pipeline, Samples, data_info
from ..core.errors import StudioError
from ..core.schedules import Schedule
from ..data import TextData
from .embeddings import EmbeddingSpace, EmbeddingTools, analogy_accuracy, neighbours, split_words
from .word2vec_spec import WORD2VEC_SPEC, Word2VecConfig

WORD_PATTERN = r"\p{L}+(?:'\p{L}+)*"   # letters, with apostrophes inside a word
UNK = "<unk>"                           # the tokenizer's last id, for words not kept
MAX_PASSAGE_WORDS = 1000
# The explorer's defaults: probe words (the samples), analogies, the words of the map.
PROBE_WORDS = ("king", "love", "sword", "lord", "death", "heaven", "night", "father")
QUERIES = ("king - man + woman", "father - man + woman", "his - he + she")
MAP_WORDS = ("king queen prince princess duke duchess lord lady father mother son daughter "
             "brother sister husband wife man woman boy girl sword dagger crown throne love "
             "hate heaven hell day night sun moon life death blood tears eye hand heart head "
             "rome england france god").split()


# --- words ------------------------------------------------------------------------------------
def word_tokenizer(words: list[str]) -> Tokenizer:
    """A `tokenizers` WordLevel tokenizer: the word rule (normaliser and pre-tokenizer) and the
    vocabulary, ids 0..V-1 in `words` order (the vectors' rows), <unk> as id V."""
    tok = Tokenizer(models.WordLevel({**{w: i for i, w in enumerate(words)}, UNK: len(words)},
                                     unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Replace("\u2019", "'"),
                                           normalizers.Lowercase()])
    # invert: the pattern matches the words themselves; "removed" drops what lies between
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="removed",
                                             invert=True)
    return tok


def corpus_words(tok: Tokenizer, text: str, skip_capital_lines: bool) -> list[list[str]]:
    """The text as gensim's sentences: each passage's words (module docstring)."""
    sentences = []
    for passage in re.split(r"\n[ \t\r\f\v]*\n", text):
        lines = [line for line in passage.split("\n")
                 if not (skip_capital_lines and line.isupper())]   # cased letters: all capitals
        normal = tok.normalizer.normalize_str(" ".join(lines))
        words = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(normal)]
        sentences += [words[i:i + MAX_PASSAGE_WORDS]
                      for i in range(0, len(words), MAX_PASSAGE_WORDS)]
    return sentences


def vocabulary(tok: Tokenizer) -> list[str]:
    """The tokenizer's words in id order, <unk> left out."""
    return [w for w, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1]) if w != UNK]


class WordVectors(nn.Module):
    """The two matrices of skip-gram with negative sampling, (V, D) each: `words` (the input
    vectors, gensim's wv.vectors: what the explorer and the export show) and `contexts` (the
    output vectors of the noise-contrastive classifier, gensim's syn1neg)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.words = nn.Embedding(vocab_size, dim)
        self.contexts = nn.Embedding(vocab_size, dim)


class Word2Vec(EmbeddingTools, Pipeline):
    spec = WORD2VEC_SPEC
    config: Word2VecConfig
    # word2vec keeps its last vectors (the learning rate has decayed to ~0 by then); the
    # validation numbers are logged to watch, not to choose weights by
    best_metric = None

    def __init__(self, config: Word2VecConfig, info: dict[str, Any]):
        self.tok = Tokenizer.from_str(info["tokenizer"])
        self.words = vocabulary(self.tok)
        self.passages: list[list[str]] = []           # the training text's sentences
        self._scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # text -> val pairs
        super().__init__(config, info)

    # --- what is derived from the data once ------------------------------------------------
    @classmethod
    def describe_data(cls, data: TextData, config: Word2VecConfig) -> dict[str, Any]:
        """The vocabulary: words seen min_count times or more in the training text, at most
        max_vocab of them, most frequent first (ties alphabetical), with their counts (the
        noise distribution and subsampling are computed from them)."""
        from collections import Counter
        sentences = corpus_words(word_tokenizer([]), data.train_text, config.skip_capital_lines)
        counts = Counter(w for words in sentences for w in words)
        kept = sorted((w for w, n in counts.items() if n >= config.min_count),
                      key=lambda w: (-counts[w], w))[:config.max_vocab]
        if len(kept) < 2:
            raise StudioError(f"only {len(kept)} word(s) of {data.name!r} occur "
                              f"{config.min_count} times or more; lower min_count or give "
                              f"more text")
        return {**data_info(data), "tokenizer": word_tokenizer(kept).to_str(),
                "vocab_size": len(kept), "word_counts": [counts[w] for w in kept],
                "train_words": sum(counts.values()), "train_passages": len(sentences)}

    # --- the model --------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        from gensim.models import Word2Vec as GensimWord2Vec
        c, counts = self.config, self.info["word_counts"]
        if len(counts) != len(self.words) or len(self.words) != self.info["vocab_size"]:
            raise StudioError("the stored vocabulary and its counts disagree")
        # gensim seeds its initial vectors with the trainer's --seed (torch's, set before the
        # networks are built); nothing is drawn from torch's generator here
        seed = torch.initial_seed() % 2**31
        self.w2v = GensimWord2Vec(
            vector_size=c.vector_size, window=c.window, negative=c.negative, hs=0, sg=1,
            ns_exponent=c.ns_exponent, sample=c.sample, alpha=c.alpha, min_alpha=c.min_alpha,
            min_count=1, workers=1, seed=seed, sorted_vocab=0)   # our order: the rows'
        self.w2v.build_vocab_from_freq(dict(zip(self.words, counts)))
        if self.w2v.wv.index_to_key != self.words:
            raise StudioError("gensim ordered the vocabulary differently from the stored one")
        vectors = WordVectors(len(self.words), c.vector_size)
        with torch.no_grad():
            vectors.words.weight.copy_(torch.from_numpy(self.w2v.wv.vectors))
            vectors.contexts.weight.copy_(torch.from_numpy(self.w2v.syn1neg))   # zeros
        return {"vectors": vectors}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # Never stepped (gensim updates the vectors itself): it carries alpha, which the
        # trainer's schedule sets, logs as `lr` and checkpoints.
        return {"sgd": torch.optim.SGD(self.modules["vectors"].parameters(), lr=self.config.alpha)}

    def schedules(self) -> dict[str, Schedule]:
        """alpha falling linearly to min_alpha at decay_steps (word2vec's own decay)."""
        c = self.config
        return {"sgd": Schedule(decay="linear", decay_steps=c.decay_steps,
                                floor=min(1.0, c.min_alpha / c.alpha))}

    # --- training ---------------------------------------------------------------------------
    def train_tensors(self, data: TextData) -> dict[str, torch.Tensor]:
        self.passages = corpus_words(self.tok, data.train_text, self.config.skip_capital_lines)
        if not self.passages:
            raise StudioError(f"{data.name!r} has no words to train on")
        # One example = one passage: the trainer shuffles their numbers and hands out batches.
        return {"passages": torch.arange(len(self.passages))}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, float]:
        if ctx.accelerator.num_processes > 1:
            raise StudioError("word2vec trains in one process (gensim on the CPU); run it "
                              "without accelerate launch")
        sentences = [self.passages[i] for i in batch["passages"].tolist()]
        lr = ctx.optimizers["sgd"].param_groups[0]["lr"]
        model = self.w2v
        # This step's rate throughout (the schedule moves it between steps); setting
        # min_alpha_yet_reached keeps gensim from warning that alpha rose after a resume.
        model.alpha = model.min_alpha = model.min_alpha_yet_reached = lr
        model.random = np.random.RandomState(int(torch.randint(0, 2**32 - 1, ())))
        vectors = ctx.modules["vectors"]
        copied = self._share_arrays(vectors)
        trained, _ = model.train(sentences, total_examples=len(sentences), epochs=1,
                                 compute_loss=True)
        if copied:   # the module lives off the CPU (a GPU run): bring gensim's work back
            with torch.no_grad():
                vectors.words.weight.copy_(torch.from_numpy(model.wv.vectors))
                vectors.contexts.weight.copy_(torch.from_numpy(model.syn1neg))
        model.lifecycle_events = []   # gensim notes every train() call; nothing reads them
        # gensim sums the loss over the step's (word, context) pairs: per trained word here
        return {"loss_per_word": model.get_latest_training_loss() / max(trained, 1),
                "words": float(trained)}

    def _share_arrays(self, vectors: WordVectors) -> bool:
        """Point gensim's arrays at the module's weights: the same memory on the CPU (gensim
        then trains the checkpointed tensors themselves), copies elsewhere (returns True)."""
        words, contexts = vectors.words.weight.detach(), vectors.contexts.weight.detach()
        on_cpu = words.device.type == "cpu"
        self.w2v.wv.vectors = words.numpy() if on_cpu else words.cpu().numpy()
        self.w2v.syn1neg = contexts.numpy() if on_cpu else contexts.cpu().numpy()
        return not on_cpu

    # --- the explorer's view ------------------------------------------------------------------
    def embedding_space(self) -> EmbeddingSpace:
        vectors = self.modules["vectors"].words.weight.detach().float().cpu().numpy().copy()
        return EmbeddingSpace(list(self.words), vectors, what="word", probe_words=PROBE_WORDS,
                              queries=QUERIES, map_words=tuple(MAP_WORDS))

    # --- metrics ----------------------------------------------------------------------------
    def validation_pairs(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Every (word, context) pair of `text` within `window` words (the full window; words
        out of the vocabulary dropped first, as gensim does in training): (P,) ids each."""
        key = f"{len(text)}:{hash(text)}"
        if key not in self._scored:
            index = {w: i for i, w in enumerate(self.words)}
            centers, contexts = [], []
            for words in corpus_words(self.tok, text, self.config.skip_capital_lines):
                ids = np.array([index[w] for w in words if w in index], dtype=np.int64)
                for offset in range(1, self.config.window + 1):
                    centers += [ids[:-offset], ids[offset:]]
                    contexts += [ids[offset:], ids[:-offset]]
            self._scored = {key: (np.concatenate(centers or [np.zeros(0, np.int64)]),
                                  np.concatenate(contexts or [np.zeros(0, np.int64)]))}
        return self._scored[key]

    def pair_loss(self, text: str, max_pairs: int) -> float | None:
        """The negative-sampling loss per (word, context) pair of `text`: -log σ(w·c) - Σ
        log σ(-w·n) over `negative` noise words n drawn from the unigram^ns_exponent
        distribution. Written here because gensim scores held-out text only for
        hierarchical-softmax models (Word2Vec.score). At most `max_pairs` pairs, spread evenly
        over the text, with noise words from a fixed seed: the same pairs every time."""
        centers, contexts = self.validation_pairs(text)
        if len(centers) == 0:
            return None
        keep = np.unique(np.linspace(0, len(centers) - 1, min(max_pairs, len(centers)))
                         .astype(np.int64))
        centers, contexts = centers[keep], contexts[keep]
        noise = np.asarray(self.info["word_counts"], dtype=np.float64) ** self.config.ns_exponent
        rng = np.random.default_rng(0)
        negatives = rng.choice(len(noise), size=(len(centers), self.config.negative),
                               p=noise / noise.sum())                           # (P, K)
        module = self.modules["vectors"]
        w = module.words.weight.detach().float().cpu().numpy()                  # (V, D)
        c = module.contexts.weight.detach().float().cpu().numpy()               # (V, D)
        total = 0.0
        for s in range(0, len(centers), 8192):          # ~8k pairs at a time: bounded memory
            u = w[centers[s:s + 8192]]                                           # (p, D)
            positive = np.einsum("pd,pd->p", u, c[contexts[s:s + 8192]])         # (p,)
            noisy = np.einsum("pd,pkd->pk", u, c[negatives[s:s + 8192]])        # (p, K)
            # -log σ(x) = log(1 + e^-x), computed stably
            total += float(np.logaddexp(0, -positive).sum() + np.logaddexp(0, noisy).sum())
        return total / len(centers)

    def validate(self, data: TextData) -> dict[str, float]:
        """The validation text's pair loss (val_pairs pairs) and the analogy test's
        accuracy@1 (~1,000 questions, ~0.2 s)."""
        loss = self.pair_loss(data.val_text, self.config.val_pairs)
        scores = analogy_accuracy(self.embedding_space())
        return {**({"pair_loss": loss} if loss is not None else {}),
                **{k: float(scores[k]) for k in ("analogy_top1",) if k in scores}}

    def evaluate(self, data: TextData, cache_dir: Path) -> dict[str, float]:
        """The vocabulary, how much of the validation text it covers, the pair loss on up to
        10 x val_pairs pairs, and the whole analogy test (accuracy@1 and @5, per category,
        questions asked and skipped). The nearest neighbours are the samples (samples/)."""
        space = self.embedding_space()
        val_words = [w for words in corpus_words(self.tok, data.val_text,
                                                 self.config.skip_capital_lines) for w in words]
        known = set(self.words)
        loss = self.pair_loss(data.val_text, 10 * self.config.val_pairs)
        return {"vocabulary": float(len(self.words)),
                **({"val_coverage": sum(w in known for w in val_words) / len(val_words)}
                   if val_words else {}),
                **({"pair_loss": loss} if loss is not None else {}),
                **{k: float(v) for k, v in analogy_accuracy(space).items()}}

    # --- samples: the probe words' neighbours ---------------------------------------------
    def sample(self, n: int, seed: int, labels: Any = None, words: str = " ".join(PROBE_WORDS),
               top_k: int = 8) -> Samples:
        """One text per probe word (the first n): its nearest neighbours with their cosine
        similarity. Deterministic: the seed changes nothing."""
        if labels is not None:
            raise StudioError("word2vec is not class-conditional; leave out --class")
        space = self.embedding_space()
        texts = []
        for word in split_words(words)[:n]:
            if space.find(word) is None:
                texts.append(f"{word}: not in the vocabulary")
                continue
            found = neighbours(space, word, top_k)
            texts.append(f"{word}: " + ", ".join(f"{w} {s:.2f}" for w, s in found))
        return Samples(texts=texts)

    # --- export -------------------------------------------------------------------------------
    def export_ecosystem(self, dest: Path) -> str:
        folder = dest / "word2vec"
        folder.mkdir(parents=True, exist_ok=True)
        space = self.embedding_space()
        space.keyed_vectors.save_word2vec_format(str(folder / "vectors.txt"), binary=False)
        self.tok.save(str(folder / "tokenizer.json"))
        probe = space.default(PROBE_WORDS) or self.words[0]
        capitals = (" (training also left out the lines written all in capitals)"
                    if self.config.skip_capital_lines else "")
        query = next((q.split() for q in QUERIES
                      if all(space.find(w) is not None for w in q.split()[::2])), None)
        analogy = (f'\nprint(vectors.most_similar(positive=["{query[0]}", "{query[4]}"], '
                   f'negative=["{query[2]}"], topn=5))   # {" ".join(query)}') if query else ""
        return f"""## word2vec vectors

`word2vec/vectors.txt` holds the {len(self.words):,} word vectors ({self.config.vector_size}
dimensions) in the word2vec text format: a header line (words, dimensions), then a word and
its numbers on each line, most frequent word first. gensim, and most word-vector tools, read
it. `word2vec/tokenizer.json` is the studio's word rule and vocabulary (Hugging Face
`tokenizers`): `Tokenizer.from_file("word2vec/tokenizer.json").encode(text).tokens` splits a
text into the same lower-case words, unknown ones as {UNK}{capitals}.

```python
from gensim.models import KeyedVectors
vectors = KeyedVectors.load_word2vec_format("word2vec/vectors.txt", binary=False)
print(vectors.most_similar({probe!r}, topn=8)){analogy}
```
"""
