"""The embedding explorer, shared by word2vec's word vectors and the input embedding of every
text model (pipelines/text: transformer, rnn, lstm, gru, whose "words" are characters or BPE
pieces).

    space = EmbeddingSpace(keys, vectors, labels, aliases, ...)   what a model hands over
    neighbours(space, "king", 10)          -> [(key, cosine)], nearest first
    analogy(space, ["king", "woman"], ["man"], 5)   -> the words nearest king - man + woman
    map_png(space, words, "pca", seed)     -> (PNG bytes, {label: (x, y)})
    analogy_accuracy(space, ANALOGY_PAIRS) -> accuracy@1 and @5, questions asked and skipped
    EmbeddingTools                         the three tools, for any pipeline that has an
                                           `embedding_space()`

Reading order: the space and how a typed word is found in it (exact key, then an alias, then
lower case; an unknown word's error lists the close ones, difflib), the three operations, the
analogy test, then the tools. Similarities are gensim's KeyedVectors.most_similar: cosine
similarity, and for analogies 3CosAdd (the mean of the unit vectors of the positive words
minus the negative ones; Mikolov et al. 2013), the query's own words excluded.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..core.base import ToolResult
from ..core.errors import StudioError

# The analogy test (word2vec's evaluation): two of the categories of Mikolov et al.'s 2013
# test set (their "family" and "gram8-plural" sections), with pairs an Early Modern English
# corpus has. Every ordered pair of two different pairs (a, b), (c, d) of a category is one
# question, a : b :: c : d, answered by the word nearest b - a + c; a question is asked only
# when its four words are all in the vocabulary (the rest are counted as skipped).
ANALOGY_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "family": (("man", "woman"), ("men", "women"), ("king", "queen"), ("kings", "queens"),
               ("prince", "princess"), ("duke", "duchess"), ("lord", "lady"),
               ("lords", "ladies"), ("father", "mother"), ("son", "daughter"),
               ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"),
               ("husband", "wife"), ("uncle", "aunt"), ("nephew", "niece"), ("boy", "girl"),
               ("sir", "madam"), ("gentleman", "gentlewoman"), ("master", "mistress"),
               ("he", "she"), ("his", "her"), ("himself", "herself")),
    "plural": (("king", "kings"), ("lord", "lords"), ("man", "men"), ("woman", "women"),
               ("son", "sons"), ("brother", "brothers"), ("friend", "friends"),
               ("eye", "eyes"), ("hand", "hands"), ("heart", "hearts"), ("day", "days"),
               ("word", "words"), ("thing", "things"), ("enemy", "enemies"),
               ("tear", "tears"), ("soul", "souls"), ("sword", "swords"),
               ("tongue", "tongues"), ("year", "years"), ("hour", "hours"),
               ("child", "children"), ("knee", "knees"), ("head", "heads"),
               ("night", "nights"), ("god", "gods")),
}


@dataclass
class EmbeddingSpace:
    """A model's vectors, one row per word (or token), and how to find and show them."""
    keys: list[str]                       # each row's unique name (a word, a raw token)
    vectors: np.ndarray                   # (V, D) float32
    what: str = "word"                    # "word" or "token": what the messages call them
    labels: list[str] | None = None       # what each row is shown as; None: its key
    # other spellings a user may type: {"␣": row of " ", "king": row of "Ġking"}
    aliases: dict[str, int] = field(default_factory=dict)
    # the tools' defaults when an option is left empty: the first that is in the space
    probe_words: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    map_words: tuple[str, ...] = ()

    def label(self, i: int) -> str:
        return self.labels[i] if self.labels else self.keys[i]

    @cached_property
    def index_of(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.keys)}

    @cached_property
    def keyed_vectors(self):
        """The vectors as gensim KeyedVectors (unit norms computed once, on first use)."""
        from gensim.models import KeyedVectors
        kv = KeyedVectors(self.vectors.shape[1])      # (no `count`: it adds empty rows)
        kv.add_vectors(self.keys, np.ascontiguousarray(self.vectors, dtype=np.float32))
        return kv

    def find(self, word: str) -> int | None:
        """The row of `word`: its key, else an alias, else its lower case; None if none."""
        for candidate in (word, word.lower()):
            for table in (self.index_of, self.aliases):
                if candidate in table:
                    return table[candidate]
        return None

    def index(self, word: str) -> int:
        """The row of `word`, or a StudioError naming it and the closest words there are."""
        found = self.find(word)
        if found is not None:
            return found
        if not word:
            raise StudioError(f"give a {self.what}")
        names = list(self.index_of) + list(self.aliases)
        close = difflib.get_close_matches(word.lower(), names, n=6, cutoff=0.6)
        shown = ", ".join(dict.fromkeys(self.label(self.find(n)) for n in close))
        some = ", ".join(self.label(i) for i in range(min(8, len(self.keys))))
        hint = f"close ones: {shown}" if close else f"some that are: {some}"
        raise StudioError(f"{word!r} is not in the model's vocabulary of "
                          f"{len(self.keys):,} {self.what}s; {hint}")

    def default(self, candidates: tuple[str, ...]) -> str | None:
        return next((w for w in candidates if self.find(w) is not None), None)


def split_words(text: str) -> list[str]:
    """"king, queen  lord" -> ["king", "queen", "lord"]; a lone "," stays a word (a
    character model has one)."""
    return [w.strip(",") or w for w in text.split()]


# --- the three operations ----------------------------------------------------------------------
def neighbours(space: EmbeddingSpace, word: str, k: int) -> list[tuple[str, float]]:
    """The k rows nearest `word` by cosine similarity, itself excluded: [(key, cosine)]."""
    key = space.keys[space.index(word)]
    k = min(k, len(space.keys) - 1)
    return [(w, float(s)) for w, s in space.keyed_vectors.most_similar(key, topn=k)]


def parse_query(query: str) -> tuple[list[str], list[str]]:
    """"king - man + woman" -> (["king", "woman"], ["man"]): words with a + or - between them,
    written apart ("king-man" is one word); the first is added unless a sign comes first."""
    tokens = query.replace("+", " + ").split()
    positive, negative = [], []
    sign: str | None = tokens[0] if tokens and tokens[0] in ("+", "-") else "+"
    for token in tokens[1:] if tokens and tokens[0] in ("+", "-") else tokens:
        if token in ("+", "-"):
            if sign is not None:
                raise StudioError(f"the query {query!r} has two signs in a row; write it as "
                                  f"'king - man + woman'")
            sign = token
            continue
        if sign is None:
            raise StudioError(f"the query {query!r} needs + or - between its words; write "
                              f"it as 'king - man + woman'")
        (positive if sign == "+" else negative).append(token)
        sign = None
    if sign is not None or not positive or len(positive) + len(negative) < 2:
        raise StudioError(f"the query {query!r} is not a sum of words; write it as "
                          f"'king - man + woman' (at least two words, one of them added)")
    return positive, negative


def analogy(space: EmbeddingSpace, positive: list[str], negative: list[str],
            k: int) -> list[tuple[str, float]]:
    """The k rows nearest the sum (3CosAdd), the query's words excluded."""
    keys = [[space.keys[space.index(w)] for w in words] for words in (positive, negative)]
    k = min(k, len(space.keys) - len(set(keys[0] + keys[1])))
    if k < 1:
        raise StudioError("the query uses every word of the vocabulary; nothing is left to rank")
    return [(w, float(s)) for w, s in
            space.keyed_vectors.most_similar(positive=keys[0], negative=keys[1], topn=k)]


def map_png(space: EmbeddingSpace, words: list[str], method: str,
            seed: int) -> tuple[bytes, dict[str, tuple[float, float]], str]:
    """A scatter of `words` in 2-D (PCA or t-SNE of their unit vectors, so that the map shows
    directions, as cosine similarity does), each written next to its point. Returns the PNG,
    each word's (x, y) and a one-line description of the projection."""
    rows = list(dict.fromkeys(space.index(w) for w in words))    # unique, in order
    if len(rows) < 3:
        raise StudioError(f"a map needs at least 3 different {space.what}s; got {len(rows)}")
    x = space.vectors[rows].astype(np.float64)                          # (N, D)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA
        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(x)                                        # (N, 2)
        shares = pca.explained_variance_ratio_
        how = (f"PCA of {len(rows)} unit vectors: the axes hold {shares[0]:.0%} and "
               f"{shares[1]:.0%} of their variance")
    elif method == "tsne":
        from sklearn.manifold import TSNE
        # perplexity must stay below the number of points; ~N/3 suits a few dozen words
        perplexity = float(max(1.0, min(30.0, (len(rows) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                  random_state=seed).fit_transform(x)
        how = f"t-SNE of {len(rows)} {space.what}s (perplexity {perplexity:.3g}, cosine)"
    else:
        raise StudioError(f"method must be pca or tsne, not {method!r}")
    labels = [space.label(i) for i in rows]
    return _scatter_png(xy, labels, how), \
        {label: (float(a), float(b)) for label, (a, b) in zip(labels, xy)}, how


def _scatter_png(xy: np.ndarray, labels: list[str], title: str) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="tab:blue")
    for (a, b), label in zip(xy, labels):
        ax.annotate(label, (a, b), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# --- the analogy test -------------------------------------------------------------------------
def analogy_accuracy(space: EmbeddingSpace, categories: dict[str, tuple[tuple[str, str], ...]]
                     = ANALOGY_PAIRS) -> dict[str, float]:
    """accuracy@1 and @5 over every question whose four words are in the vocabulary (exact
    keys: no aliases, no lower-casing), overall and per category, with how many questions
    were asked and skipped. An accuracy with no question asked is left out (not NaN)."""
    kv = space.keyed_vectors
    out: dict[str, float] = {}
    totals = np.zeros(4)                                         # asked, @1, @5, skipped
    for name, pairs in categories.items():
        counts = np.zeros(4)
        for a, b in pairs:
            for c, d in pairs:
                if (a, b) == (c, d):
                    continue
                if not all(w in space.index_of for w in (a, b, c, d)):
                    counts[3] += 1
                    continue
                ranked = [w for w, _ in kv.most_similar(positive=[b, c], negative=[a], topn=5)]
                counts += (1, ranked[0] == d, d in ranked, 0)
        totals += counts
        if counts[0]:
            out[f"analogy_{name}_top1"] = counts[1] / counts[0]
    asked, top1, top5, skipped = totals
    if asked:
        out.update({"analogy_top1": top1 / asked, "analogy_top5": top5 / asked})
    return {**out, "analogy_questions": float(asked), "analogy_skipped": float(skipped)}


# --- the tools ---------------------------------------------------------------------------------
class EmbeddingTools:
    """The explorer's tools (declared in word2vec_spec.py's EMBEDDING_TOOLS) for a pipeline
    that defines `embedding_space() -> EmbeddingSpace`."""

    def embedding_space(self) -> EmbeddingSpace:
        raise NotImplementedError

    def tool_neighbours(self, ctx, word: str, top_k: int) -> ToolResult:
        space = self.embedding_space()
        word = word or space.default(space.probe_words) or space.keys[0]
        found = neighbours(space, word, top_k)
        shown = space.label(space.index(word))
        rows = [{space.what: space.label(space.index_of[w]), "similarity": s} for w, s in found]
        lines = [f"{s:6.3f}  {space.label(space.index_of[w])}" for w, s in found]
        return ToolResult(values={space.what: shown, "neighbours": rows},
                          text=f"nearest to {shown} (cosine similarity):\n" + "\n".join(lines))

    def tool_analogy(self, ctx, query: str, top_k: int) -> ToolResult:
        space = self.embedding_space()
        if not query:   # the first default whose words are all in the vocabulary
            query = next((q for q in space.queries
                          if all(space.find(w) is not None for w in q.split()[::2])), "")
            if not query:
                raise StudioError("give a query such as 'king - man + woman' (words of this "
                                  "model's vocabulary)")
        positive, negative = parse_query(query)
        found = analogy(space, positive, negative, top_k)
        rows = [{space.what: space.label(space.index_of[w]), "similarity": s} for w, s in found]
        lines = [f"{s:6.3f}  {space.label(space.index_of[w])}" for w, s in found]
        return ToolResult(values={"query": query, "answers": rows},
                          text=f"{query} = ?\n" + "\n".join(lines))

    def tool_map(self, ctx, words: str, method: str, seed: int) -> ToolResult:
        space = self.embedding_space()
        chosen = split_words(words) if words.strip() else \
            [w for w in space.map_words if space.find(w) is not None]
        png, where, how = map_png(space, chosen, method, seed)
        return ToolResult(figure_png=png, values={"method": method,
                                                  space.what + "s": list(where)}, text=how)
