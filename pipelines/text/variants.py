"""The four text models the registry names: a transformer decoder, and RNN / LSTM / GRU nets.

Their defaults are sized for 2 CPU cores: the transformer has nanoGPT's CPU shape (4 layers,
4 heads, 128 wide, context 64, no dropout) in the Llama style (rotary positions, RMSNorm,
SwiGLU: per step it learns Shakespeare much faster than GPT-2's block here), batch 16, 1,500
steps, lr 2e-3 (measured better than 1e-3); the recurrent nets are about as big.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..core.base import ToolResult
from ..core.errors import StudioError
from . import spec as S
from . import tools
from .models import (RecurrentLM, add_residual_dropout, build_transformer, context_limit,
                     transformer_config)
from .pipeline import TextLM, _model_folder
from .spec import TextSampleControls, TransformerConfig
from .tools import TokenEmbeddingTools


class Transformer(TokenEmbeddingTools, TextLM):
    spec = S.TRANSFORMER
    is_transformer = True

    @classmethod
    def model_info(cls, config: TransformerConfig, vocab_size: int) -> dict[str, Any]:
        if config.init_from:
            from transformers import AutoConfig
            folder = _model_folder(config.init_from)
            try:
                cfg = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as e:
                raise StudioError(f"init_from {config.init_from!r}: its config.json cannot be "
                                  f"read by transformers ({e})") from None
            if getattr(cfg, "vocab_size", 0) < vocab_size:
                raise StudioError(f"init_from {config.init_from!r}: its tokenizer has "
                                  f"{vocab_size} tokens but the model only {cfg.vocab_size}")
            return {"model_config": cfg.to_dict()}
        if config.n_embd % config.n_head:
            raise StudioError(f"n_embd ({config.n_embd}) must divide by n_head "
                              f"({config.n_head})")
        return {"model_config": transformer_config(
            config.architecture, vocab_size, config.context, config.n_layer, config.n_head,
            config.n_embd, config.dropout)}

    def build(self) -> dict[str, nn.Module]:
        model = build_transformer(self.info["model_config"])
        # Llama's embedding and residual dropout (a no-op for GPT-2, which has its own); a
        # fine-tune's weights are loaded later (make_optimizers) into this same module.
        add_residual_dropout(model, self.config.dropout)
        limit = context_limit(model)
        if limit is not None and self.config.context > limit:
            raise StudioError(f"context {self.config.context} is longer than the model's "
                              f"{limit} positions; lower context")
        return {"model": model}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # Called once, by the trainer, before a resumed run loads its checkpoint over the
        # weights: the place to start a fine-tune from the pretrained weights.
        if self.config.init_from:
            from transformers import AutoModelForCausalLM
            folder = _model_folder(self.config.init_from)
            try:
                pretrained = AutoModelForCausalLM.from_pretrained(
                    str(folder), local_files_only=True, dtype=torch.float32)
            except (OSError, ValueError) as e:
                raise StudioError(f"init_from {self.config.init_from!r}: its weights cannot be "
                                  f"loaded ({e})") from None
            self.model.load_state_dict(pretrained.state_dict())
        return super().make_optimizers()

    def logits(self, model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids=ids, use_cache=False).logits

    def attention_map(self, ctx, prompt: str, layer: int, head: int,
                      max_tokens: int) -> ToolResult:
        if not prompt:
            prompt = ctx.load_data().val_text[:max_tokens * 4]
        limit = min(max_tokens, context_limit(self.model) or max_tokens)
        ids = self.prompt_ids(prompt)[-limit:]
        weights = tools.attention_weights(self.model, ids, layer, head)
        labels = [tools.token_label(self.tok.decode([i])) for i in ids]
        which = "mean of heads" if head < 0 else f"head {head}"
        number = layer % self.model.config.num_hidden_layers  # -1: the last
        png = tools.attention_figure(weights, labels, f"layer {number} (0-based), {which}")
        return ToolResult(figure_png=png, values={"layer": layer, "head": head,
                                                  "tokens": len(ids)})

    def export_ecosystem(self, dest: Path) -> str:
        return tools.export_transformer(self.model, self.tok, dest, self.config.context,
                                        TextSampleControls())


class Recurrent(TokenEmbeddingTools, TextLM):
    """An RNN language model; the subclasses pick the cell."""
    spec = S.RECURRENT
    cell: ClassVar[str] = "lstm"

    def build(self) -> dict[str, nn.Module]:
        c = self.config
        return {"model": RecurrentLM(self.cell, self.info["vocab_size"], c.embed_dim,
                                     c.hidden_size, c.layers, c.dropout)}

    def logits(self, model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        return model(ids)[0]

    def export_ecosystem(self, dest: Path) -> str:
        c = self.config
        shape = {"cell": self.cell, "vocab_size": self.info["vocab_size"],
                 "embed_dim": c.embed_dim, "hidden_size": c.hidden_size, "layers": c.layers,
                 "dropout": c.dropout, "context": c.context}
        return tools.export_recurrent(self.model, self.tok, dest, shape, TextSampleControls())


class RNN(Recurrent):
    spec = S.RNN
    cell = "rnn"


class LSTM(Recurrent):
    spec = S.LSTM
    cell = "lstm"


class GRU(Recurrent):
    spec = S.GRU
    cell = "gru"


VARIANTS = (Transformer, RNN, LSTM, GRU)
