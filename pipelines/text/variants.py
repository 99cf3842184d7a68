"""The four text models the registry names: a transformer decoder, and RNN / LSTM / GRU nets.

Their defaults are sized for 2 CPU cores: the transformer has nanoGPT's CPU shape (4 layers,
4 heads, 128 wide, context 64, no dropout) in the Llama style (rotary positions, RMSNorm,
SwiGLU: per step it learns Shakespeare much faster than GPT-2's block here), batch 16, 1,500
steps, lr 2e-3 (measured better than 1e-3); the recurrent nets are about as big.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..base import Tool, ToolResult
from ..config import option
from ..errors import StudioError
from . import tools
from .models import (RecurrentLM, add_residual_dropout, build_transformer, context_limit,
                     transformer_config)
from .pipeline import (RecurrentConfig, TextLM, TextSampleControls, TransformerConfig,
                       _model_folder)

# Samples used to cost ~4 s each on a CPU (a 64-token window recomputed per character; now it
# is re-read every 32, about half the time), so text runs sample every 750 steps, one text
# each: a few % of a default run.
TEXT_TRAIN_DEFAULTS = {"steps": 1500, "batch_size": 16, "grad_clip": 1.0, "log_every": 100,
                       "sample_every": 750, "checkpoint_every": 500, "sample_count": 1}


@dataclass
class AttentionOptions:
    prompt: str = option("", "Text to look at (its last `context` tokens); empty takes the "
                         "start of the validation text.")
    layer: int = option(-1, "Layer: 0 is the first, -1 the last.", low=-48, high=47)
    head: int = option(-1, "Head: 0, 1, ...; -1 averages the layer's heads.", low=-1, high=63)
    max_tokens: int = option(48, "At most this many tokens on each axis.", low=2, high=256)


class Transformer(TextLM):
    name = "transformer"
    Config = TransformerConfig
    is_transformer = True
    train_defaults = TEXT_TRAIN_DEFAULTS
    # `--preset gpu` (pipelines/presets.py). Measured on an H200 (README): 48.5 steps/s in
    # bf16 (5,000 steps in under 2 minutes plus validation). nanoGPT's shakespeare_char shape and schedule (6 layers, 6 heads, 384 wide, context 256,
    # batch 64, dropout 0.2, lr 1e-3 decaying to 1e-4 over 5,000 steps), here in the Llama
    # style: 10.7M parameters, ~1.2 TFLOP a step, a few ms of bf16 arithmetic on an H200;
    # the default shape ran at 46.8 steps/s in fp32 there (~21 ms a step of launches for 4
    # layers), so ~35 ms a step: 5,000 steps in about 3 minutes plus validation and samples
    # (nanoGPT reports ~3 minutes on one A100 for this run).
    presets = {"gpu": {
        "config": {"architecture": "llama", "n_layer": 6, "n_head": 6, "n_embd": 384,
                   "context": 256, "dropout": 0.2, "lr": 1e-3, "min_lr": 1e-4,
                   "warmup_steps": 100, "decay_steps": 5000},
        "trainer": {"steps": 5000, "batch_size": 64, "mixed_precision": "auto",
                    "sample_every": 1000, "checkpoint_every": 1000}}}
    tools = (Tool("attention", "attention_map", AttentionOptions,
                  "Heat map of one layer's attention (one head or their mean) over a prompt."),)

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


class Recurrent(TextLM):
    """An RNN language model; the subclasses pick the cell."""
    Config = RecurrentConfig
    cell: ClassVar[str] = "lstm"
    train_defaults = TEXT_TRAIN_DEFAULTS
    # `--preset gpu`, not yet measured on a GPU (bench/gpu.py will): char-rnn's size (3 layers
    # of 512, dropout 0.2) on the transformer preset's windows and batch (256 x 64 tokens).
    # ~0.6 TFLOP a step, but 256 time steps run one after another: ~30 ms a step in cuDNN's
    # kernels, so 5,000 steps in about 3 minutes.
    presets = {"gpu": {
        "config": {"embed_dim": 256, "hidden_size": 512, "layers": 3, "context": 256,
                   "dropout": 0.2, "decay_steps": 5000},
        "trainer": {"steps": 5000, "batch_size": 64, "mixed_precision": "auto",
                    "sample_every": 1000, "checkpoint_every": 1000}}}

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
    name = "rnn"
    cell = "rnn"


class LSTM(Recurrent):
    name = "lstm"
    cell = "lstm"


class GRU(Recurrent):
    name = "gru"
    cell = "gru"


VARIANTS = (Transformer, RNN, LSTM, GRU)
