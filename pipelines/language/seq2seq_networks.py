"""The translation networks and the one generation path both of them decode through.

Read in this order:

    AdditiveAttention, GRUEncoderDecoder
                                    the RNN encoder-decoder with attention (Bahdanau, Cho &
                                    Bengio 2015), by hand in torch: no library ships it
                                    (torch has nn.GRU, not the attention decoder; transformers'
                                    encoder-decoders are all transformers)
    bart_config, build_bart         the transformer: transformers' BART (Lewis et al. 2020)
    GRUStepper, BartStepper         each model as a step function: decoder state and the last
                                    token -> next-token log-probabilities and cross-attention
    greedy, beam_search             decoding, written once over a step function
    export_gru, export_bart         the exported folders, and how to load them (model card)

Why BART and not T5 (both are transformers encoder-decoders built from a config; T5 was not
tried): BART is the original transformer of Vaswani et al. 2017 (learned absolute positions,
LayerNorm, GELU feed-forward), the natural counterpart of the 2015 RNN, where T5 changes the
recipe (relative-position buckets sized for long texts, RMSNorm without biases); and
BartConfig takes our special-token ids as they are ([BOS] starts the decoder, [EOS] ends it,
[PAD] pads), where T5 starts its decoder from [PAD] and has no [BOS]. The alignment shown is
the last decoder layer's cross-attention, averaged over its heads.

Shapes: B batch, S source tokens (characters + [EOS]), T target tokens, V vocabulary, E
embedding, H hidden units, A attention units, K beams.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


# --- the GRU encoder-decoder -------------------------------------------------------------
class AdditiveAttention(nn.Module):
    """e_j = v^T tanh(W s + U h_j), a = softmax(e) over the real source positions, c = sum_j
    a_j h_j (Bahdanau et al. 2015, section 3.1 and appendix A.1.2)."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int):
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)   # W
        self.key = nn.Linear(key_dim, attention_dim)                    # U (once per source)
        self.score = nn.Linear(attention_dim, 1, bias=False)            # v

    def forward(self, state: torch.Tensor, keys: torch.Tensor, annotations: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # state (B, H), keys = U h (B, S, A), annotations h (B, S, 2H), mask (B, S) True: real
        energy = self.score(torch.tanh(self.query(state)[:, None, :] + keys)).squeeze(-1)
        weights = energy.masked_fill(~mask, float("-inf")).softmax(dim=-1)       # (B, S)
        context = torch.bmm(weights[:, None, :], annotations).squeeze(1)          # (B, 2H)
        return context, weights


class GRUEncoderDecoder(nn.Module):
    """A bidirectional GRU reads the source into annotations h_j = [forward_j; backward_j]; a
    GRU decoder writes the target one character at a time, each step attending over them."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, attention_dim: int,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.hidden_size = hidden_size
        # One vocabulary for sources and targets (dates: digits on both sides), so one table.
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        # s_0 = tanh(W_s backward_1): the backward pass at the first character has read it all
        self.bridge = nn.Linear(hidden_size, hidden_size)
        self.attention = AdditiveAttention(hidden_size, 2 * hidden_size, attention_dim)
        self.decoder = nn.GRUCell(embed_dim + 2 * hidden_size, hidden_size)
        # The "deep output" p(y_i | s_i, c_i, y_{i-1}) of the paper, as one linear layer (its
        # maxout layer is dropped: a 40-character vocabulary needs no extra capacity there).
        self.out = nn.Linear(hidden_size + 2 * hidden_size + embed_dim, vocab_size)
        self.drop = nn.Dropout(dropout)

    def encode(self, source: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """source (B, S) ids, mask (B, S) -> the decoder's starting state."""
        x = self.drop(self.embed(source))                                          # (B, S, E)
        # Packed, so that the backward direction starts at each source's own last character,
        # not at its padding.
        packed = pack_padded_sequence(x, mask.sum(1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = pad_packed_sequence(self.encoder(packed)[0], batch_first=True,
                                   total_length=source.shape[1])                   # (B, S, 2H)
        start = torch.tanh(self.bridge(h[:, 0, self.hidden_size:]))               # (B, H)
        return {"hidden": start, "annotations": h, "keys": self.attention.key(h), "mask": mask}

    def step(self, previous: torch.Tensor, state: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """previous (B,) ids -> logits (B, V), attention (B, S), the new state. The context is
        computed from the previous decoder state s_{i-1}, as in the paper."""
        y = self.drop(self.embed(previous))                                        # (B, E)
        context, weights = self.attention(state["hidden"], state["keys"],
                                          state["annotations"], state["mask"])     # (B, 2H)
        hidden = self.decoder(torch.cat([y, context], dim=-1), state["hidden"])   # (B, H)
        logits = self.out(self.drop(torch.cat([hidden, context, y], dim=-1)))     # (B, V)
        return logits, weights, {**state, "hidden": hidden}

    def forward(self, source: torch.Tensor, mask: torch.Tensor, target_in: torch.Tensor,
                teacher_forcing: float = 1.0) -> torch.Tensor:
        """Training: (B, S), (B, S), (B, T) decoder inputs ([BOS] + target) -> (B, T, V).
        Each step is fed the true previous character with probability `teacher_forcing`, else
        the model's own greedy guess (drawn from torch's generator: a checkpoint restores it)."""
        state = self.encode(source, mask)
        previous, outputs = target_in[:, 0], []
        for t in range(target_in.shape[1]):
            logits, _, state = self.step(previous, state)
            outputs.append(logits)
            if t + 1 < target_in.shape[1]:
                previous = target_in[:, t + 1]
                if teacher_forcing < 1.0:
                    truth = torch.rand(previous.shape, device=previous.device) < teacher_forcing
                    previous = torch.where(truth, previous, logits.argmax(dim=-1))
        return torch.stack(outputs, dim=1)


# --- the transformer ---------------------------------------------------------------------
def bart_config(vocab_size: int, positions: int, d_model: int, layers: int, heads: int,
                ffn_dim: int, dropout: float, ids: dict[str, int]) -> dict[str, Any]:
    """A small BartConfig (as a dict, stored with the run). Eager attention: only it returns
    the attention weights the alignment map shows (and at ~30 characters it costs nothing)."""
    from transformers import BartConfig
    return BartConfig(
        vocab_size=vocab_size, max_position_embeddings=positions, d_model=d_model,
        encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=ffn_dim, decoder_ffn_dim=ffn_dim,
        dropout=dropout, pad_token_id=ids["pad"], bos_token_id=ids["bos"],
        eos_token_id=ids["eos"], decoder_start_token_id=ids["bos"], forced_eos_token_id=None,
        attn_implementation="eager").to_dict()


def build_bart(config: dict[str, Any]) -> nn.Module:
    from transformers import BartConfig, BartForConditionalGeneration
    cfg = BartConfig.from_dict(config)
    cfg._attn_implementation = "eager"
    return BartForConditionalGeneration(cfg)


# --- step functions: what decoding needs from a model ------------------------------------
class GRUStepper:
    def __init__(self, model: GRUEncoderDecoder):
        self.model = model

    def start(self, source: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.encode(source, mask)

    def step(self, previous: torch.Tensor, state: dict[str, torch.Tensor]):
        logits, weights, state = self.model.step(previous, state)
        return F.log_softmax(logits.float(), dim=-1), weights, state              # (B, V)

    def select(self, state: dict[str, torch.Tensor], index: torch.Tensor):
        return {k: v.index_select(0, index) for k, v in state.items()}


class BartStepper:
    """One decoder token at a time on transformers' key/value cache; the encoder runs once."""

    def __init__(self, model: nn.Module):
        from pipelines.text.models import cache_keyword
        self.model, self.cache = model, cache_keyword(model)

    def start(self, source: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        encoded = self.model.get_encoder()(input_ids=source, attention_mask=mask.long())
        return {"encoded": encoded.last_hidden_state, "mask": mask.long(), "cache": None}

    def step(self, previous: torch.Tensor, state: dict[str, Any]):
        out = self.model(encoder_outputs=(state["encoded"],), attention_mask=state["mask"],
                         decoder_input_ids=previous[:, None], use_cache=True,
                         output_attentions=True, **{self.cache: state["cache"]})
        # the last decoder layer's cross-attention (B, heads, 1, S), averaged over its heads
        weights = out.cross_attentions[-1][:, :, -1, :].float().mean(dim=1)       # (B, S)
        logp = F.log_softmax(out.logits[:, -1, :].float(), dim=-1)                 # (B, V)
        return logp, weights, {**state, "cache": getattr(out, self.cache)}

    def select(self, state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        if state["cache"] is not None:
            state["cache"].reorder_cache(index)   # index_select on the batch axis, in place
        return {**state, "encoded": state["encoded"].index_select(0, index),
                "mask": state["mask"].index_select(0, index)}


# --- decoding, once for both -------------------------------------------------------------
def _without(logp: torch.Tensor, suppress: tuple[int, ...]) -> torch.Tensor:
    """Never write these tokens ([PAD], [BOS], [UNK]): transformers' `suppress_tokens`."""
    if suppress:
        logp = logp.clone()
        logp[:, list(suppress)] = float("-inf")
    return logp


@torch.no_grad()
def greedy(stepper: Any, source: torch.Tensor, mask: torch.Tensor, bos: int, eos: int,
           max_length: int, suppress: tuple[int, ...] = ()
           ) -> list[tuple[list[int], torch.Tensor]]:
    """The likeliest next token at each step, for a batch: per source, its tokens (without
    [EOS]) and the attention (t, S_b) over its own S_b source tokens while writing each one."""
    state = stepper.start(source, mask)
    previous = torch.full((len(source),), bos, dtype=torch.long, device=source.device)
    written, attention = [], []
    done = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    for _ in range(max_length):
        logp, weights, state = stepper.step(previous, state)
        previous = _without(logp, suppress).argmax(dim=-1)                        # (B,)
        written.append(previous)
        attention.append(weights)
        done |= previous == eos
        if bool(done.all()):     # a finished row keeps going until all are; it is cut below
            break
    ids = torch.stack(written, dim=1).tolist()                                     # (B, t)
    maps = torch.stack(attention, dim=1).cpu()                                     # (B, t, S)
    lengths = mask.sum(1).tolist()
    out = []
    for row, amap, length in zip(ids, maps, lengths):
        n = row.index(eos) if eos in row else len(row)
        out.append((row[:n], amap[:n, :length]))
    return out


@torch.no_grad()
def beam_search(stepper: Any, source: torch.Tensor, mask: torch.Tensor, bos: int, eos: int,
                max_length: int, num_beams: int, suppress: tuple[int, ...] = ()
                ) -> tuple[list[int], torch.Tensor]:
    """One source (1, S): the likeliest translation found by keeping `num_beams` partial ones,
    scored by summed log-probability (no length penalty: both models learn the [EOS], and
    dates' targets all have one length). A hypothesis ends when [EOS] is among the best 2K
    continuations; the search stops once the best ended one scores at least as high as the
    best still open (scores only fall as tokens are added, so nothing open can overtake it).
    With one beam this is exactly greedy decoding. Returns its tokens (without [EOS]) and
    attention (t, S)."""
    k, device = num_beams, source.device
    state = stepper.select(stepper.start(source, mask), torch.zeros(k, dtype=torch.long,
                                                                   device=device))
    previous = torch.full((k,), bos, dtype=torch.long, device=device)
    # The K copies start identical: only the first may expand, or each result comes K times.
    scores = torch.full((k,), float("-inf"), device=device)
    scores[0] = 0.0
    history = torch.zeros(k, 0, dtype=torch.long, device=device)                   # (K, t)
    maps = torch.zeros(k, 0, source.shape[1], device=device)                       # (K, t, S)
    ended: list[tuple[float, list[int], torch.Tensor]] = []
    for _ in range(max_length):
        logp, weights, state = stepper.step(previous, state)                       # (K, V)
        total = scores[:, None] + _without(logp, suppress)                         # (K, V)
        vocab = total.shape[1]
        top, flat = total.view(-1).topk(min(2 * k, total.numel()))
        live: list[tuple[float, int, int]] = []
        for score, index in zip(top.tolist(), flat.tolist()):
            if score == float("-inf") or len(live) == k:
                break
            beam, token = divmod(index, vocab)
            if token == eos:
                ended.append((score, history[beam].tolist(), maps[beam].cpu()))
            else:
                live.append((score, beam, token))
        if not live or (ended and max(e[0] for e in ended) >= live[0][0]):
            break
        beams = torch.tensor([b for _, b, _ in live], device=device)
        previous = torch.tensor([t for _, _, t in live], device=device)
        scores = torch.tensor([s for s, _, _ in live], device=device)
        history = torch.cat([history[beams], previous[:, None]], dim=1)
        maps = torch.cat([maps[beams], weights[beams][:, None, :]], dim=1)
        state = stepper.select(state, beams)
    else:   # max_length reached: the best hypothesis still open competes too
        ended.append((float(scores[0]), history[0].tolist(), maps[0].cpu()))
    _, tokens, amap = max(ended, key=lambda e: e[0])
    return tokens, amap[:, :int(mask.sum())]


# --- exports -----------------------------------------------------------------------------
def export_gru(model: GRUEncoderDecoder, tokenizer: Any, dest: Path,
               config: dict[str, Any]) -> str:
    """`seq2seq-gru/`: the state dict, `config` (shape and special ids), the tokenizer."""
    from safetensors.torch import save_file
    folder = dest / "seq2seq-gru"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(str(folder))
    return GRU_CARD


GRU_CARD = """## GRU encoder-decoder weights

`seq2seq-gru/` holds model.safetensors (a plain torch state dict), config.json (the shape, the
[BOS]/[EOS] ids and the special tokens never to write) and the character tokenizer
(tokenizer.json; `AutoTokenizer` loads it). It is not a transformers model (transformers has
no RNN encoder-decoder): the network is `GRUEncoderDecoder` in the studio's
`pipelines/language/seq2seq_networks.py`, and decoding is its `greedy` or `beam_search`:

```python
import json, torch
from safetensors.torch import load_file
from transformers import AutoTokenizer
from pipelines.language.seq2seq_networks import GRUEncoderDecoder, GRUStepper, greedy

cfg = json.load(open("seq2seq-gru/config.json"))
model = GRUEncoderDecoder(**cfg["shape"]).eval()
model.load_state_dict(load_file("seq2seq-gru/model.safetensors"))
tok = AutoTokenizer.from_pretrained("seq2seq-gru")
ids = tok(["the 3rd of March, 1994"], return_tensors="pt").input_ids   # characters + [EOS]
(tokens, attention), = greedy(GRUStepper(model), ids, ids != tok.pad_token_id, cfg["bos_id"],
                              cfg["eos_id"], 24, tuple(cfg["never_written"]))
print(tok.decode(tokens))
```
"""


def export_bart(model: nn.Module, tokenizer: Any, dest: Path, max_length: int,
                ids: dict[str, int], suppress: tuple[int, ...]) -> str:
    """`transformers/`: save_pretrained with a greedy generation config that decodes exactly
    as the studio's greedy does (the same start token, suppressed tokens and length)."""
    from transformers import GenerationConfig
    folder = dest / "transformers"
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["bos"], bos_token_id=ids["bos"], eos_token_id=ids["eos"],
        pad_token_id=ids["pad"], suppress_tokens=list(suppress), max_new_tokens=max_length,
        do_sample=False, num_beams=1)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return f"""## transformers

`transformers/` is a `BartForConditionalGeneration` folder (config.json, model.safetensors,
generation_config.json: greedy, up to {max_length} characters) with its character tokenizer
(tokenizer.json; encoding a text appends [EOS]). transformers alone loads it and translates
(run from the folder of this README):

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("transformers")
model = AutoModelForSeq2SeqLM.from_pretrained("transformers")
ids = tok(["the 3rd of March, 1994"], return_tensors="pt").input_ids
out = model.generate(ids)                       # greedy; num_beams=4 for beam search
print(tok.decode(out[0], skip_special_tokens=True))
```
"""
