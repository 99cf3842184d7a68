"""The text family's declarations, without torch (pipelines/core/spec.py): the training options every
model shares and each kind's shape, the sampling controls, the attention tool's options, and one
spec per named model with its defaults and presets. The page and the CLI read these; training,
sampling and tools import pipeline.py and variants.py (whose docstring says how the defaults
were sized for 2 CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import option
from ..core.spec import PipelineSpec, Tool
# the embedding explorer's tools (neighbours, analogy, map) on each model's token embedding
from ..language.word2vec_spec import EMBEDDING_TOOLS


@dataclass
class TextConfig:
    tokenizer: str = option("char", "char: one token per character; bpe: byte-level BPE "
                            "(GPT-2 style) trained on the corpus, vocab_size tokens.",
                            choices=("char", "bpe"))
    vocab_size: int = option(512, "bpe: vocabulary size (at least the 256 byte tokens).",
                             low=256, high=65536)
    context: int = option(64, "Tokens the model reads at once: the training window (and the "
                          "transformer's positions).", low=2, high=8192)
    dropout: float = option(0.0, "Dropout while training: a transformer's (gpt2 or llama) "
                            "embeddings, attention weights, and attention and MLP outputs "
                            "before the residual add; a recurrent net's between layers and "
                            "before the head. 0 suits small models and short runs; 0.1-0.2 "
                            "against overfitting on long ones.", low=0.0, high=0.9)
    lr: float = option(2e-3, "Peak learning rate (AdamW), reached after warm-up (2e-3 beat "
                       "nanoGPT's 1e-3 on Shakespeare).", low=0.0, high=1.0)
    min_lr: float = option(2e-4, "Learning rate at the end of the cosine decay.", low=0.0,
                           high=1.0)
    warmup_steps: int = option(100, "Linear warm-up steps from 0 to lr.", low=0)
    decay_steps: int = option(1500, "The step where the cosine decay reaches min_lr (then it "
                              "stays there); set it to --steps. 0: constant lr after warm-up.",
                              low=0)
    weight_decay: float = option(0.1, "AdamW weight decay on matrices (not on biases and norms).",
                                 low=0.0, high=1.0)
    beta2: float = option(0.99, "AdamW beta2, in [0, 1) (0.99 suits small batches).",
                          low=0.0, high=1.0, high_exclusive=True)
    grad_accum: int = option(1, "Gradient accumulation: split each batch into this many "
                             "micro-batches (same update, less memory).", low=1, high=256)
    val_tokens: int = option(8192, "Validation tokens scored at every log step (windows spread "
                             "evenly over the validation split, always the same ones); "
                             "evaluation scores all of it.",
                             low=64)


@dataclass
class TransformerConfig(TextConfig):
    architecture: str = option("llama", "llama: rotary positions, RMSNorm, SwiGLU (the "
                               "default: reached nanoGPT's 1.88 in ~1,100 steps on Shakespeare "
                               "where gpt2 needed ~1,800); gpt2: learned positions, LayerNorm, "
                               "GELU MLP. Both built from a transformers config and trained "
                               "from scratch.",
                               choices=("gpt2", "llama"))
    n_layer: int = option(4, "Transformer blocks.", low=1, high=48)
    n_head: int = option(4, "Attention heads (n_embd must divide by it).", low=1, high=64)
    n_embd: int = option(128, "Width of the residual stream.", low=8, high=4096)
    init_from: str = option("", "Fine-tune: a local transformers causal-LM folder "
                            "(config.json, weights, tokenizer.json) to start from, with its own "
                            "tokenizer and shape; nothing is downloaded. Empty: train from "
                            "scratch.")


@dataclass
class RecurrentConfig(TextConfig):
    embed_dim: int = option(128, "Size of the token embedding fed to the first layer.", low=1,
                            high=4096)
    hidden_size: int = option(256, "Hidden units per recurrent layer.", low=1, high=8192)
    layers: int = option(2, "Stacked recurrent layers.", low=1, high=16)


@dataclass
class TextSampleControls:
    prompt: str = option("", "Text to continue; empty starts after a newline (the output is "
                         "then only the new text).")
    max_new_tokens: int = option(400, "Tokens to generate (characters for a char model).",
                                 low=1, high=20000)
    temperature: float = option(0.8, "Below 1: safer, more repetitive; above 1: wilder.",
                                low=0.01, high=5.0)
    top_k: int = option(0, "Sample only from the k likeliest tokens; 0 is off.", low=0)
    top_p: float = option(1.0, "Nucleus sampling: the smallest set of tokens holding this "
                          "probability; 1 is off.", low=0.01, high=1.0)
    repetition_penalty: float = option(1.0, "Above 1 discourages tokens already in the text "
                                       "(CTRL's penalty); 1 is off.", low=0.1, high=10.0)
    greedy: bool = option(False, "Always take the likeliest token (deterministic; ignores "
                          "temperature, top-k and top-p).")
    num_beams: int = option(1, "Beam search with this many beams (deterministic, most likely "
                            "continuation); 1 is off.", low=1, high=32)

@dataclass
class AttentionOptions:
    prompt: str = option("", "Text to look at (its last `context` tokens); empty takes the "
                         "start of the validation text.")
    layer: int = option(-1, "Layer: 0 is the first, -1 the last.", low=-48, high=47)
    head: int = option(-1, "Head: 0, 1, ...; -1 averages the layer's heads.", low=-1, high=63)
    max_tokens: int = option(48, "At most this many tokens on each axis.", low=2, high=256)


# Samples used to cost ~4 s each on a CPU (a 64-token window recomputed per character; now it
# is re-read every 32, about half the time), so text runs sample every 750 steps, one text
# each: a few % of a default run.
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 1500, "batch_size": 16, "grad_clip": 1.0,
                                  "log_every": 100, "sample_every": 750,
                                  "checkpoint_every": 500, "sample_count": 1}
# The transformer's `--preset gpu` (pipelines/core/presets.py). Measured on an H200 (README): 48.5
# steps/s in bf16 (5,000 steps in under 2 minutes plus validation). nanoGPT's shakespeare_char
# shape and schedule (6 layers, 6 heads, 384 wide, context 256, batch 64, dropout 0.2, lr 1e-3
# decaying to 1e-4 over 5,000 steps), here in the Llama style: 10.7M parameters, ~1.2 TFLOP a
# step, a few ms of bf16 arithmetic on an H200; the default shape ran at 46.8 steps/s in fp32
# there (~21 ms a step of launches for 4 layers), so ~35 ms a step: 5,000 steps in about 3
# minutes plus validation and samples (nanoGPT reports ~3 minutes on one A100 for this run).
# val_tokens covers the whole Shakespeare validation split (111k characters): the best weights
# are chosen on it, not on 32 windows, whose estimate sat 0.02-0.08 nats off the whole split
# and moved by as much as the curve's slope near its minimum (a CPU comparison with nanoGPT,
# session 9); on an H200 that is ~0.1 s a log line.
TRANSFORMER_GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"architecture": "llama", "n_layer": 6, "n_head": 6, "n_embd": 384,
               "context": 256, "dropout": 0.2, "lr": 1e-3, "min_lr": 1e-4,
               "warmup_steps": 100, "decay_steps": 5000, "val_tokens": 131072},
    "trainer": {"steps": 5000, "batch_size": 64, "mixed_precision": "auto",
                "sample_every": 1000, "checkpoint_every": 1000}}
# The recurrent nets' `--preset gpu`, not yet measured on a GPU (bench/gpu.py will): char-rnn's
# size (3 layers of 512, dropout 0.2) on the transformer preset's windows and batch (256 x 64
# tokens). ~0.6 TFLOP a step, but 256 time steps run one after another: ~30 ms a step in
# cuDNN's kernels, so 5,000 steps in about 3 minutes.
RECURRENT_GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"embed_dim": 256, "hidden_size": 512, "layers": 3, "context": 256,
               "dropout": 0.2, "decay_steps": 5000},
    "trainer": {"steps": 5000, "batch_size": 64, "mixed_precision": "auto",
                "sample_every": 1000, "checkpoint_every": 1000}}

# Shared by every text model (TextLM): they all stream their text as it is generated.
TEXT_SPEC = PipelineSpec(
    name="text-base", family="text", kind="text", summary="every text model's shared pipeline",
    impl="pipelines.text.pipeline:TextLM", Config=TextConfig, SampleControls=TextSampleControls,
    train_defaults=TRAIN_DEFAULTS, data_kind="text", streams=True)


def variant(name: str, cls: str, summary: str, base: PipelineSpec = TEXT_SPEC,
            **changes: Any) -> PipelineSpec:
    """A named model: a shared spec with its name, class, summary and what it changes."""
    return base.variant(name, f"pipelines.text.variants:{cls}", summary, **changes)


TRANSFORMER = variant(
    "transformer", "Transformer", "Decoder-only transformer (GPT-2 or Llama style, "
    "transformers) trained from scratch or fine-tuned from a local folder (--init-from); "
    "attention map",
    Config=TransformerConfig, presets={"gpu": TRANSFORMER_GPU_PRESET},
    tools=(Tool("attention", "attention_map", AttentionOptions,
                "Heat map of one layer's attention (one head or their mean) over a prompt."),
           *EMBEDDING_TOOLS))
# Shared by the recurrent nets (Recurrent); each names its cell.
RECURRENT = variant(
    "recurrent-base", "Recurrent", "every recurrent model's shared pipeline",
    Config=RecurrentConfig, presets={"gpu": RECURRENT_GPU_PRESET}, tools=EMBEDDING_TOOLS)
RNN = variant(
    "rnn", "RNN", "Recurrent (Elman, tanh) language model: embedding, stacked RNN, linear head",
    base=RECURRENT)
LSTM = variant(
    "lstm", "LSTM", "LSTM language model: embedding, stacked LSTM, linear head", base=RECURRENT)
GRU = variant(
    "gru", "GRU", "GRU language model: embedding, stacked GRU, linear head", base=RECURRENT)

SPECS = (TRANSFORMER, RNN, LSTM, GRU)
