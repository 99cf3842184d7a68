"""The networks: a transformers decoder (GPT-2 or Llama style) and RNN / LSTM / GRU LMs.

Both kinds answer the same call, so training, evaluation and generation never ask which:

    logits, state = step_logits(model, ids, state)   # ids (B, T) -> logits (B, T, V)

`state` is the transformer's KV cache or the recurrent hidden state (None to start).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RecurrentLM(nn.Module):
    """Embedding -> nn.RNN / nn.LSTM / nn.GRU (batch first) -> dropout -> linear head.

    The export's model card repeats this class in ~15 lines of plain torch (export.py), so a
    user loads the exported weights without the studio: keep the two in step."""

    def __init__(self, cell: str, vocab_size: int, embed_dim: int, hidden_size: int,
                 layers: int, dropout: float):
        super().__init__()
        rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = rnn_cls(embed_dim, hidden_size, num_layers=layers, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self.embed(ids)                    # (B, T, E)
        h, state = self.rnn(x, state)          # (B, T, H); state (layers, B, H) or a pair
        return self.head(self.drop(h)), state  # (B, T, V)


def transformer_config(architecture: str, vocab_size: int, context: int, n_layer: int,
                       n_head: int, n_embd: int, dropout: float) -> dict[str, Any]:
    """A transformers config (as a dict, for run.json) for a decoder trained from scratch.
    No bos/eos/pad token: the corpus has none, and generation stops at max_new_tokens."""
    from transformers import GPT2Config, LlamaConfig
    if architecture == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_positions=context, n_embd=n_embd,
                         n_layer=n_layer, n_head=n_head, resid_pdrop=dropout,
                         embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=None,
                         # GPT-2's tanh GELU as one PyTorch kernel ("gelu_new" is the same
                         # formula in five Python-level ops: ~5% of a CPU step)
                         activation_function="gelu_pytorch_tanh",
                         eos_token_id=None, pad_token_id=None)
    else:  # llama: RMSNorm, rotary positions, SwiGLU; no biases
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=n_embd,
                          intermediate_size=(8 * n_embd // 3 + 63) // 64 * 64,
                          num_hidden_layers=n_layer, num_attention_heads=n_head,
                          num_key_value_heads=n_head, max_position_embeddings=context,
                          # only on the attention weights: the rest of `dropout` is
                          # add_residual_dropout's hooks, installed when the model is built
                          attention_dropout=dropout, tie_word_embeddings=True,
                          bos_token_id=None, eos_token_id=None, pad_token_id=None)
    cfg.architectures = [type(cfg).__name__.replace("Config", "ForCausalLM")]
    return cfg.to_dict()


def build_transformer(config_dict: dict[str, Any]) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM
    values = dict(config_dict)
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    return AutoModelForCausalLM.from_config(cfg)


def add_residual_dropout(model: nn.Module, p: float) -> None:
    """GPT-2's embedding and residual dropout for a Llama-style model, as forward hooks.

    LlamaConfig has only `attention_dropout` (on the attention weights): no dropout on the
    embeddings, nor on the attention and MLP outputs added to the residual stream, so with it
    alone `dropout` barely regularises (measured on a GPU at nanoGPT's shakespeare_char shape:
    dropout 0.2 still overfit to train loss 0.52 / val 2.4, where GPT-2's block, which has all
    three, did not). The hooks drop what the embedding, each `self_attn` and each `mlp` return,
    in training mode only, and add no parameter or state-dict key: checkpoints, the export (a
    plain LlamaForCausalLM folder) and init_from are unchanged. A GPT-2 model has its own
    resid/embd/attn dropout in its config, and any other model is left as it is."""
    from transformers import LlamaForCausalLM
    if p <= 0 or not isinstance(model, LlamaForCausalLM):
        return

    def drop(module: nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):  # self_attn: (attn_output (B, T, C), attn_weights)
            return (F.dropout(output[0], p, training=module.training), *output[1:])
        return F.dropout(output, p, training=module.training)         # (B, T, C)

    body = model.model
    body.embed_tokens.register_forward_hook(drop)
    for layer in body.layers:
        # A fine-tuned (init_from) model's own config may say 0: `dropout` applies here too.
        layer.self_attn.attention_dropout = p
        layer.self_attn.register_forward_hook(drop)
        layer.mlp.register_forward_hook(drop)


def is_transformer(model: nn.Module) -> bool:
    return not isinstance(model, RecurrentLM)


def context_limit(model: nn.Module) -> int | None:
    """How many positions the model can see (None: unbounded, a recurrent net)."""
    if not is_transformer(model):
        return None
    cfg = model.config
    return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)


def step_logits(model: nn.Module, ids: torch.Tensor, state: Any = None
                ) -> tuple[torch.Tensor, Any]:
    """Logits (B, T, V) for `ids` (B, T) following `state`; returns the new state."""
    if is_transformer(model):
        name = cache_keyword(model)
        out = model(input_ids=ids, use_cache=True, **{name: state})
        return out.logits, getattr(out, name)
    return model(ids, state)


def cache_keyword(model: nn.Module) -> str:
    """What this transformers version calls the key/value cache, in forward's arguments and
    its output: `cache` since 5.2x (`past_key_values` still works there, with a deprecation
    warning users would see, and goes in 5.40), `past_key_values` before."""
    inner = getattr(model, "_orig_mod", getattr(model, "module", model))   # compiled, DDP
    accepted = inspect.signature(type(inner).forward).parameters
    return "cache" if "cache" in accepted else "past_key_values"


def parameter_count(model: nn.Module) -> int:
    # Tied weights (a shared embedding and head) are counted once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
