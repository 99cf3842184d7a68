"""One generation path for every text model: the transformer and the recurrent nets alike.

    procs = logits_processors(temperature=0.8, top_k=40, top_p=0.95, repetition_penalty=1.1)
    for token in sample_tokens(model, prompt_ids, 200, procs, greedy=False, generator=g): ...
    ids = beam_search(model, prompt_ids, 200, num_beams=4, processors=procs)

The controls are transformers' own logits processors, applied in the order `generate` applies
them (repetition penalty, then temperature, top-k, top-p), and a token is drawn the way
`generate` draws it (softmax, torch.multinomial; argmax when greedy). tests/test_text.py checks
that, for the transformer, greedy, sampled and beam-searched tokens equal `model.generate`'s.
Our loop exists because `generate` knows nothing of a recurrent net's hidden state and stops
at the transformer's context length, where this loop slides the window (re-reading it only
every limit / 2 tokens: see _forward).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from .models import context_limit, is_transformer, step_logits


def logits_processors(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      repetition_penalty: float = 1.0, greedy: bool = False,
                      suppress: tuple[int, ...] = ()):
    """transformers' processors for these controls; greedy keeps only the repetition penalty
    (temperature, top-k and top-p change nothing an argmax sees), as `generate` does.
    `suppress`: token ids never to generate (a char tokenizer's <unk>), generate's
    `suppress_tokens`."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                              SuppressTokensLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)
    procs = LogitsProcessorList()
    if suppress:
        procs.append(SuppressTokensLogitsProcessor(list(suppress)))
    if repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if not greedy:
        if temperature != 1.0:
            procs.append(TemperatureLogitsWarper(temperature))
        if top_k:
            procs.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p))
    return procs


def _forward(model: nn.Module, ids: torch.Tensor, new: torch.Tensor | None, state: Any
             ) -> tuple[torch.Tensor, Any]:
    """Logits (B, V) of the next token after `ids` (B, L). `new` (B, 1) is the token just
    appended (fed alone, on top of `state`), or None to read the window afresh.

    A transformer sees at most `limit` positions. nanoGPT slides the window by recomputing
    the last `limit` tokens for every new token past the context: a full forward per token
    (at context 256, 144 of them for a 400-token sample, ~15 s mid-run on a GPU). Here, once
    the KV cache holds `limit` tokens, the window is re-read from the last limit // 2 tokens
    only, and tokens are then fed one at a time on that cache until it is full again: one
    short prefill per ~limit / 2 new tokens. The trade-off: past the context the model sees
    between limit / 2 and limit tokens of context, not always exactly limit, so a long
    sample is not nanoGPT's token for token (within the context nothing changes: `generate`'s
    tokens). A recurrent net has no limit: always one token on its hidden state."""
    limit = context_limit(model)
    if new is None:  # the prompt; a longer one than the context: its last `limit` tokens
        logits, state = step_logits(model, ids if limit is None else ids[:, -limit:], None)
    elif limit is not None and state.get_seq_length() >= limit:  # the cache is full
        logits, state = step_logits(model, ids[:, -max(1, limit // 2):], None)
    else:
        logits, state = step_logits(model, new, state)
    return logits[:, -1, :].float(), state


@torch.no_grad()
def sample_tokens(model: nn.Module, prompt_ids: list[int], max_new_tokens: int, processors,
                  greedy: bool, generator: torch.Generator | None) -> Iterator[int]:
    """New token ids one at a time: what streaming shows and what `sample` collects."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)   # (1, L)
    logits, state = _forward(model, ids, None, None)                     # (1, V)
    for i in range(max_new_tokens):
        scores = processors(ids, logits)
        if greedy:
            token = scores.argmax(dim=-1)                                # (1,)
        else:
            probs = F.softmax(scores, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
        ids = torch.cat([ids, token[:, None]], dim=1)
        yield int(token)
        if i + 1 < max_new_tokens:
            logits, state = _forward(model, ids, token[:, None], state)


def _reorder(model: nn.Module, state: Any, beams: torch.Tensor) -> Any:
    """The state of the chosen beams, in their new order (beams: (K,) indices)."""
    if state is None:
        return None
    if is_transformer(model):
        state.reorder_cache(beams)  # a transformers Cache: index_select on the batch axis
        return state
    if isinstance(state, tuple):    # LSTM: (h, c), each (layers, B, H)
        return tuple(s.index_select(1, beams) for s in state)
    return state.index_select(1, beams)


@torch.no_grad()
def beam_search(model: nn.Module, prompt_ids: list[int], max_new_tokens: int,
                num_beams: int, processors) -> list[int]:
    """The new tokens of the most likely of `num_beams` beams (sum of log-probabilities).

    As in transformers' beam search: the processors act on log-softmaxed scores, and with no
    end-of-sequence token every hypothesis has the same length, so the best one is the one
    with the highest total."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)   # (1, L): one beam
    scores = torch.zeros(1, device=device)                               # (K,)
    logits, state = _forward(model, ids, None, None)
    for i in range(max_new_tokens):
        logp = processors(ids, F.log_softmax(logits, dim=-1))            # (K, V)
        vocab = logp.shape[-1]
        total = (scores[:, None] + logp).view(-1)                        # (K * V,)
        scores, flat = total.topk(min(num_beams, total.numel()))
        beams, tokens = flat // vocab, flat % vocab
        ids = torch.cat([ids[beams], tokens[:, None]], dim=1)
        if i + 1 < max_new_tokens:
            state = _reorder(model, state, beams)
            logits, state = _forward(model, ids, tokens[:, None], state)
    return ids[0, len(prompt_ids):].tolist()


def stream_text(tok: Tokenizer, tokens: Iterable[int]) -> Iterator[str]:
    """Decoded text, piece by piece, as tokens arrive. A byte-level token can end inside a
    multi-byte character: hold the text back until the character is complete."""
    ids: list[int] = []
    shown = ""
    for token in tokens:
        ids.append(token)
        text = tok.decode(ids)
        if text.endswith("\ufffd") or not text.startswith(shown) or len(text) == len(shown):
            continue
        yield text[len(shown):]
        shown = text
    text = tok.decode(ids)
    if text != shown and text.startswith(shown):
        yield text[len(shown):]
