"""Sequence-to-sequence translation: a GRU encoder-decoder with additive attention and a BART
transformer, on pairs of strings (dates: "the 3rd of March, 1994" -> "1994-03-03").

Read top to bottom: the character tokenizer shared by sources and targets (derived once from
the data, stored in the run), the shared pipeline (training with teacher forcing, exact-match
validation and evaluation next to the copy-digits baseline, sampling, the translate tool with
its alignment map), then the two models. The networks, the one generation path (greedy and
beam search over a step function) and the exported folders are in seq2seq_networks.py; the
declarations in seq2seq_spec.py.

Defaults, measured on `dates` (20,000 training pairs; 2,000 validation pairs in the 18
training formats; 2,000 held-out pairs in 4 formats never seen), 3,000 steps of 64 pairs, one
CPU thread (the 2 cores shared with other work, load average 4.4-5), exact match greedily:

    seq2seq-gru          4.7 min; validation 99.4% at step 250, 100.0% at the end; held out
                         72.0% (characters 93.7%): 100% on "Thu, 3 March 1994" and "March the
                         3rd, 1994", 85% on "3 MAR 1994", 2% on "1994.03.03" (every dotted
                         training format writes the day first, and so it reads this one)
    seq2seq-transformer  5.9 min; validation 99.0% at step 1,000, 100.0% at the end; held out
                         92.5% (characters 99.0%): 98% on "1994.03.03", 97% on the two
                         weekday / capitals formats, 77% on "March the 3rd, 1994"
    copy the digits      validation 5.8%, held out 24.7% (pipelines/metrics/text_baselines.py)

Beam search (4 beams) changed neither held-out number. The transformer's held-out score moves
a lot between checkpoints whose validation is already 100% (67.7% at step 1,000, 60.4% at
1,750, 92.1% at 2,000): the best weights are chosen by validation loss, never by held-out.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from torch import nn

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.schedules import Schedule
from ..data.language import TextPairsData
from . import seq2seq_networks as N
from . import seq2seq_spec as S

# --- the tokenizer -------------------------------------------------------------------------
SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
PAD, BOS, EOS, UNK = range(4)
NEVER_WRITTEN = (PAD, BOS, UNK)   # decoding suppresses them (transformers' suppress_tokens)


def train_char_tokenizer(texts: list[str]) -> Tokenizer:
    """One token per character of `texts` (sources and targets alike), after the four special
    tokens; encoding a text appends [EOS] (the encoder's input, here and in transformers)."""
    chars = sorted(set("".join(texts)) - set(SPECIALS))
    vocab = {token: i for i, token in enumerate((*SPECIALS, *chars))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.add_special_tokens(list(SPECIALS))
    # [\s\S] matches any one character, newline included: every character is a token.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()   # glue characters back (WordLevel would join with spaces)
    tok.post_processor = processors.TemplateProcessing(single="$A [EOS]",
                                                       special_tokens=[("[EOS]", EOS)])
    return tok


def fast_tokenizer(tok: Tokenizer):
    """The transformers wrapper that AutoTokenizer.from_pretrained gives back."""
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[EOS]", unk_token="[UNK]",
                                   clean_up_tokenization_spaces=False)


def exact_and_chars(predictions: list[str], targets: list[str]) -> tuple[float, float]:
    """Whole-string exact match, and character accuracy: characters right at their position,
    over the longer of prediction and target (a missing or extra character counts wrong)."""
    exact = np.mean([p == t for p, t in zip(predictions, targets)])
    right = sum(sum(a == b for a, b in zip(p, t)) for p, t in zip(predictions, targets))
    total = sum(max(len(p), len(t)) for p, t in zip(predictions, targets))
    return float(exact), right / max(total, 1)


# --- the shared pipeline -------------------------------------------------------------------
class Seq2Seq(Pipeline):
    """Shared by both models; each names its network (build), how it computes teacher-forced
    logits, and its step function for decoding."""
    spec = S.SEQ2SEQ_BASE
    # The best weights: lowest validation loss. Exact match on the validation slice reaches
    # 100% within a few hundred steps on dates and then only ties (the first 100% would stay
    # best); the loss keeps ranking the weights after that.
    best_metric = ("loss", "min")
    EVAL_CHUNK = 256                         # sources decoded together
    attention_note = ""                      # what the alignment map shows, for its title

    def __init__(self, config: Any, info: dict[str, Any]):
        super().__init__(config, info)
        self.tok = Tokenizer.from_str(info["tokenizer"])
        self._data: TextPairsData | None = None

    @classmethod
    def describe_data(cls, data: TextPairsData, config: Any) -> dict[str, Any]:
        if not data.train_pairs or not data.val_pairs:
            raise StudioError(f"{data.name} needs training and validation pairs; it has "
                              f"{len(data.train_pairs)} and {len(data.val_pairs)}")
        pairs = data.train_pairs + data.val_pairs + data.held_out
        # Every character of every split, so that all of them encode; one that occurs only
        # outside training keeps its untrained embedding (the held-out formats test that).
        tok = train_char_tokenizer([text for pair in pairs for text in pair])
        longest_source = max(len(s) for s, _ in pairs) + 1            # + [EOS]
        longest_target = max(len(t) for _, t in data.train_pairs) + 2   # [BOS] ... [EOS]
        info = {"name": data.name, "kind": data.kind, "tokenizer": tok.to_str(),
                "vocab_size": tok.get_vocab_size(), "longest_source": longest_source,
                "longest_target": longest_target,
                # the transformer's positions: room for sources twice the longest seen
                "positions": max(64, 2 * max(longest_source, longest_target))}
        return {**info, **cls.model_info(config, info)}

    @classmethod
    def model_info(cls, config: Any, info: dict[str, Any]) -> dict[str, Any]:
        return {}

    @property
    def model(self) -> nn.Module:
        return self.modules["model"]

    # --- encoding --------------------------------------------------------------------------
    def _padded(self, rows: list[list[int]], length: int | None = None) -> torch.Tensor:
        out = torch.full((len(rows), length or max(map(len, rows))), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row)
        return out

    def encode_sources(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        """(B, S) ids: each text's characters and [EOS], padded with [PAD]."""
        return self._padded([e.ids for e in self.tok.encode_batch(texts)], length)

    def encode_targets(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        """(B, T) ids: [BOS], the characters, [EOS], padded."""
        encoded = self.tok.encode_batch(texts, add_special_tokens=False)
        return self._padded([[BOS, *e.ids, EOS] for e in encoded], length)

    def check_source(self, text: str) -> None:
        """A user's source: refused if empty or with characters the model never saw (one
        longer than the model reads is refused by `translate`)."""
        if not text.strip():
            raise StudioError("the source is empty; give some text to translate")
        unseen = sorted({c for c in text if self.tok.token_to_id(c) is None})
        if unseen:
            raise StudioError(f"the source has characters the model never saw in its data "
                              f"({''.join(unseen)!r}); leave them out")

    # --- training --------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # nanoGPT's split: decay the matrices (linear and embedding weights), not biases/norms.
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2],
                   "weight_decay": self.config.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return {"model": adamw(groups, lr=self.config.lr, betas=(0.9, self.config.beta2))}

    def schedules(self) -> dict[str, Schedule]:
        c = self.config
        return {"model": Schedule(warmup_steps=c.warmup_steps, decay="cosine",
                                  decay_steps=c.decay_steps,
                                  floor=c.min_lr / c.lr if c.lr > 0 else 0.0)}

    def train_tensors(self, data: TextPairsData) -> dict[str, torch.Tensor]:
        self._data = data   # sampling during training translates its validation sources
        sources, targets = zip(*data.train_pairs)
        return {"source": self.encode_sources(list(sources), self.info["longest_source"]),
                "target": self.encode_targets(list(targets), self.info["longest_target"])}

    def logits(self, model: nn.Module, source: torch.Tensor, target_in: torch.Tensor
               ) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) of the next target token at each position."""
        raise NotImplementedError

    def loss(self, model: nn.Module, source: torch.Tensor, target: torch.Tensor
             ) -> torch.Tensor:
        """Mean cross-entropy (nats per target token, [EOS] included, padding not)."""
        # The batch's own lengths: the tensors are padded to the longest pair of the data.
        source = source[:, :int((source != PAD).sum(1).max())]
        target = target[:, :int((target != PAD).sum(1).max())]
        logits = self.logits(model, source, target[:, :-1])                    # (B, T-1, V)
        return F.cross_entropy(logits.float().flatten(0, 1), target[:, 1:].flatten(),
                               ignore_index=PAD)

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, Any]:
        loss = self.loss(ctx.modules["model"], batch["source"], batch["target"])
        norm = ctx.backward_step(loss, "model", "model")
        return {"loss": loss.detach(), "grad_norm": norm}

    # --- decoding --------------------------------------------------------------------------
    def stepper(self) -> Any:
        raise NotImplementedError

    def _max_length(self, max_length: int) -> int:
        limit = self.info["positions"] - 1
        return min(max_length or 2 * self.info["longest_target"], limit)

    @torch.no_grad()
    def translate(self, sources: list[str], num_beams: int = 1, max_length: int = 0
                  ) -> list[tuple[str, torch.Tensor]]:
        """Each source's translation and its alignment (t, S): the attention over the source
        tokens (its characters and [EOS]) while writing each output character. Greedy sources
        are decoded EVAL_CHUNK at a time; beam search one source at a time."""
        longest = max(map(len, sources), default=0)
        if longest + 1 > self.info["positions"]:
            raise StudioError(f"a source is {longest} characters long; this model reads at "
                              f"most {self.info['positions'] - 1}")
        self.model.eval()
        length, stepper, out = self._max_length(max_length), self.stepper(), []
        for start in range(0, len(sources), self.EVAL_CHUNK if num_beams == 1 else 1):
            chunk = sources[start:start + (self.EVAL_CHUNK if num_beams == 1 else 1)]
            ids = self.encode_sources(chunk).to(self.device)
            if num_beams == 1:
                found = N.greedy(stepper, ids, ids != PAD, BOS, EOS, length, NEVER_WRITTEN)
            else:
                found = [N.beam_search(stepper, ids, ids != PAD, BOS, EOS, length, num_beams,
                                       NEVER_WRITTEN)]
            out += [(self.tok.decode(tokens), amap) for tokens, amap in found]
        return out

    # --- metrics ---------------------------------------------------------------------------
    @torch.no_grad()
    def val_loss(self, pairs: list[tuple[str, str]]) -> float:
        model, total, count = self.model.eval(), 0.0, 0
        for start in range(0, len(pairs), self.EVAL_CHUNK):
            sources, targets = zip(*pairs[start:start + self.EVAL_CHUNK])
            source = self.encode_sources(list(sources)).to(self.device)
            target = self.encode_targets(list(targets)).to(self.device)
            tokens = int((target[:, 1:] != PAD).sum())
            total += float(self.loss(model, source, target)) * tokens
            count += tokens
        return total / max(count, 1)

    def validate(self, data: TextPairsData) -> dict[str, float]:
        self._data = data
        pairs = data.val_pairs[:self.config.val_pairs]
        predictions = [text for text, _ in self.translate([s for s, _ in pairs])]
        exact, _ = exact_and_chars(predictions, [t for _, t in pairs])
        return {"loss": self.val_loss(pairs), "exact_match": exact}

    def evaluate(self, data: TextPairsData, cache_dir: Path | None = None) -> dict[str, float]:
        """Exact match and character accuracy on all validation pairs and on the held-out
        ones, each next to the copy-digits baseline on the same pairs."""
        from ..metrics.text_baselines import copy_digits_baseline
        out = {}
        for prefix, pairs in (("", data.val_pairs), ("held_out_", data.held_out)):
            if not pairs:
                continue
            predictions = [text for text, _ in self.translate([s for s, _ in pairs])]
            exact, chars = exact_and_chars(predictions, [t for _, t in pairs])
            out[f"{prefix}exact_match"] = exact
            out[f"{prefix}char_accuracy"] = chars
            out[f"baseline_copy_{prefix}exact_match"] = float(copy_digits_baseline(pairs))
        out["loss"] = self.val_loss(data.val_pairs)
        return out

    # --- sampling and the tool -------------------------------------------------------------
    def data(self) -> TextPairsData:
        """The run's data set: the one training or validation saw, or loaded again."""
        if self._data is None:
            from ..core.run_setup import load_data_for
            self._data = load_data_for(type(self), self.config, self.info["name"])
        return self._data

    def sample(self, n: int, seed: int, labels: Any = None, source: str = "",
               num_beams: int = 1, max_length: int = 0) -> Samples:
        """n validation sources (which ones: drawn by `seed`) translated, as "source ->
        translation (target)"; with `source`, that text (n times the same translation)."""
        if labels is not None:
            raise StudioError(f"{self.name} is not class-conditional; leave out --class")
        if source != "":
            self.check_source(source)
            text, _ = self.translate([source], num_beams, max_length)[0]
            return Samples(texts=[f"{source} -> {text}"] * n)
        pairs = self.data().val_pairs
        picked = np.random.default_rng(seed).choice(len(pairs), size=n,
                                                    replace=n > len(pairs))
        chosen = [pairs[i] for i in picked]
        found = self.translate([s for s, _ in chosen], num_beams, max_length)
        return Samples(texts=[f"{s} -> {text} ({t})" for (s, t), (text, _) in zip(chosen, found)])

    def translate_tool(self, ctx: Any, source: str, num_beams: int,
                       max_length: int) -> ToolResult:
        if not source:
            source = ctx.load_data().val_pairs[0][0]
        self.check_source(source)
        text, amap = self.translate([source], num_beams, max_length)[0]
        how = "greedy" if num_beams == 1 else f"beam search, {num_beams} beams"
        png = alignment_figure(amap, [*source, "[EOS]"], list(text),
                               f"{self.name} ({how}): {self.attention_note}")
        return ToolResult(figure_png=png, text=f"{source} -> {text}",
                          values={"source": source, "translation": text,
                                  "num_beams": num_beams})


def alignment_figure(weights: torch.Tensor, source: list[str], output: list[str],
                     title: str) -> bytes:
    """A heat map: source characters on x, written characters on y, one row per character
    written (the layout of Bahdanau et al. 2015, figure 3)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..text.tools import token_label
    fig, ax = plt.subplots(figsize=(max(4.0, 0.28 * len(source) + 2),
                                    max(3.0, 0.28 * len(output) + 1.5)))
    image = ax.imshow(weights.numpy() if len(output) else np.zeros((1, len(source))),
                      cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), [token_label(c) for c in source], rotation=90,
                  fontsize=8, family="monospace")
    ax.set_yticks(range(len(output)), [token_label(c) for c in output], fontsize=8,
                  family="monospace")
    ax.set_xlabel("source character")
    ax.set_ylabel("written character")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# --- the two models ------------------------------------------------------------------------
class GRUSeq2Seq(Seq2Seq):
    spec = S.SEQ2SEQ_GRU
    attention_note = "additive attention"

    def build(self) -> dict[str, nn.Module]:
        return {"model": N.GRUEncoderDecoder(**self.shape())}

    def shape(self) -> dict[str, Any]:
        c = self.config
        return {"vocab_size": self.info["vocab_size"], "embed_dim": c.embed_dim,
                "hidden_size": c.hidden_size, "attention_dim": c.attention_dim,
                "dropout": c.dropout, "pad_id": PAD}

    def logits(self, model, source, target_in):
        forcing = self.config.teacher_forcing if model.training else 1.0
        return model(source, source != PAD, target_in, forcing)

    def stepper(self) -> N.GRUStepper:
        return N.GRUStepper(self.model)

    def export_ecosystem(self, dest: Path) -> str:
        return N.export_gru(self.model, fast_tokenizer(self.tok), dest, {
            "shape": self.shape(), "bos_id": BOS, "eos_id": EOS,
            "never_written": list(NEVER_WRITTEN)})


class TransformerSeq2Seq(Seq2Seq):
    spec = S.SEQ2SEQ_TRANSFORMER
    attention_note = "last layer's cross-attention, mean of heads"

    @classmethod
    def model_info(cls, config: Any, info: dict[str, Any]) -> dict[str, Any]:
        if config.d_model % config.heads:
            raise StudioError(f"d_model ({config.d_model}) must divide by heads "
                              f"({config.heads})")
        return {"model_config": N.bart_config(
            info["vocab_size"], info["positions"], config.d_model, config.layers, config.heads,
            config.ffn_dim, config.dropout, {"pad": PAD, "bos": BOS, "eos": EOS})}

    def build(self) -> dict[str, nn.Module]:
        return {"model": N.build_bart(self.info["model_config"])}

    def logits(self, model, source, target_in):
        # No decoder mask: padding only follows the real tokens, which the causal mask already
        # keeps from seeing it (transformers' generate passes none either).
        return model(input_ids=source, attention_mask=(source != PAD).long(),
                     decoder_input_ids=target_in, use_cache=False).logits

    def stepper(self) -> N.BartStepper:
        return N.BartStepper(self.model)

    def export_ecosystem(self, dest: Path) -> str:
        return N.export_bart(self.model, fast_tokenizer(self.tok), dest, self._max_length(0),
                             {"pad": PAD, "bos": BOS, "eos": EOS}, NEVER_WRITTEN)


VARIANTS = (GRUSeq2Seq, TransformerSeq2Seq)
