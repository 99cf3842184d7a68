"""Sequence-to-sequence translation's declarations, without torch (pipelines/core/spec.py): the
training options both models share and each one's shape, the decoding controls, the translate
tool's options, and the two specs with their measured defaults. The implementation is
pipelines/language/seq2seq.py (the pipeline) and seq2seq_networks.py (the networks and the one
generation path); its docstring says how the defaults were measured.

    seq2seq-gru           a bidirectional GRU encoder and a GRU decoder with additive attention
                          (Bahdanau, Cho & Bengio 2015), written by hand in torch
    seq2seq-transformer   a transformers BART encoder-decoder (Lewis et al. 2020), built from a
                          BartConfig and trained from scratch
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import option
from ..core.spec import PipelineSpec, Tool


@dataclass
class Seq2SeqConfig:
    lr: float = option(2e-3, "Peak learning rate (AdamW, Loshchilov & Hutter 2019), reached "
                       "after the warm-up.", low=0.0, high=1.0)
    min_lr: float = option(1e-4, "Learning rate at the end of the cosine decay (SGDR's "
                           "cosine, Loshchilov & Hutter 2017).", low=0.0, high=1.0)
    warmup_steps: int = option(200, "Linear warm-up steps from 0 to lr (as in Vaswani et al. "
                               "2017, which a transformer needs to start stably).", low=0)
    decay_steps: int = option(3000, "The step where the cosine decay reaches min_lr (then it "
                              "stays there); set it to --steps. 0: constant lr after warm-up.",
                              low=0)
    weight_decay: float = option(0.01, "AdamW weight decay on matrices (not on biases and "
                                 "norms), decoupled from the gradient (Loshchilov & Hutter "
                                 "2019).", low=0.0, high=1.0)
    beta2: float = option(0.99, "AdamW beta2, in [0, 1) (0.99 suits small batches, as in "
                          "nanoGPT).", low=0.0, high=1.0, high_exclusive=True)
    dropout: float = option(0.1, "Dropout while training (Srivastava et al. 2014): the GRU's "
                            "embeddings and output layer; BART's residual, attention and "
                            "feed-forward dropout.", low=0.0, high=0.9)
    val_pairs: int = option(500, "Validation pairs translated (greedily) at every log step for "
                            "val/exact_match and scored for val/loss: always the first ones; "
                            "evaluation translates them all.", low=1)


@dataclass
class GRUSeq2SeqConfig(Seq2SeqConfig):
    embed_dim: int = option(64, "Size of the character embedding (shared by the encoder and "
                            "the decoder: one vocabulary for both sides).", low=1, high=4096)
    hidden_size: int = option(128, "Hidden units of each encoder direction and of the decoder "
                              "(Bahdanau et al. 2015 use 1000).", low=1, high=8192)
    attention_dim: int = option(128, "Size of the additive attention's hidden layer, "
                                "v^T tanh(W s + U h) (Bahdanau et al. 2015, appendix A.1.2).",
                                low=1, high=8192)
    teacher_forcing: float = option(1.0, "Share of decoder steps fed the true previous "
                                    "character while training (teacher forcing, Williams & "
                                    "Zipser 1989); the rest are fed the model's own greedy "
                                    "guess (scheduled sampling, Bengio et al. 2015). 1: always "
                                    "the truth.", low=0.0, high=1.0)


@dataclass
class TransformerSeq2SeqConfig(Seq2SeqConfig):
    d_model: int = option(128, "Width of BART's residual stream (bart-base: 768).", low=8,
                          high=4096)
    layers: int = option(2, "Blocks in the encoder and as many in the decoder (bart-base: "
                         "6 + 6).", low=1, high=24)
    heads: int = option(4, "Attention heads per layer (d_model must divide by it).", low=1,
                        high=64)
    ffn_dim: int = option(256, "Hidden size of each block's feed-forward layer (bart-base: "
                          "3072, 4x its width).", low=8, high=16384)


@dataclass
class Seq2SeqSampleControls:
    source: str = option("", "Translate this text instead of validation sources (its "
                         "characters must be ones the model saw in training).")
    num_beams: int = option(1, "Beam search with this many beams (keeps the likeliest "
                            "partial translations by summed log-probability); 1: greedy, the "
                            "likeliest next character each step.", low=1, high=32)
    max_length: int = option(0, "Characters to write at most (stops earlier at end of "
                             "sequence); 0: twice the longest training target.", low=0,
                             high=1024)


@dataclass
class TranslateOptions:
    source: str = option("", "Text to translate; empty takes the first validation source.")
    num_beams: int = option(1, "Beam search with this many beams; 1: greedy.", low=1, high=32)
    max_length: int = option(0, "Characters to write at most; 0: twice the longest training "
                             "target.", low=0, high=1024)


# Sized for 2 CPU cores, measured with one thread on `dates` (seq2seq.py's docstring has the
# numbers): 3,000 steps take 4.7 min (GRU) and 5.9 min (BART) and both end at 100% validation
# exact match (99% by step 250 and 1,000). Periodic samples are 8 translations, well under a
# second.
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 3000, "batch_size": 64, "grad_clip": 1.0,
                                  "log_every": 250, "sample_every": 1000,
                                  "checkpoint_every": 1000, "sample_count": 8}

# `--preset gpu` (pipelines/core/presets.py): wider networks and bigger batches for one
# modern GPU; not yet timed on one.
GRU_GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"embed_dim": 128, "hidden_size": 512, "attention_dim": 256,
               "decay_steps": 5000, "val_pairs": 2000},
    "trainer": {"steps": 5000, "batch_size": 256, "mixed_precision": "auto",
                "log_every": 500, "checkpoint_every": 1000}}
TRANSFORMER_GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"d_model": 256, "layers": 3, "heads": 8, "ffn_dim": 1024,
               "decay_steps": 5000, "val_pairs": 2000},
    "trainer": {"steps": 5000, "batch_size": 256, "mixed_precision": "auto",
                "log_every": 500, "checkpoint_every": 1000}}

TRANSLATE = Tool("translate", "translate_tool", TranslateOptions,
                 "Translate one text and draw its alignment: the decoder's attention over the "
                 "source characters (x) for each character it wrote (y).")

SEQ2SEQ_BASE = PipelineSpec(
    name="seq2seq-base", family="language", kind="translator",
    summary="every translation model's shared pipeline",
    impl="pipelines.language.seq2seq:Seq2Seq", Config=Seq2SeqConfig,
    SampleControls=Seq2SeqSampleControls, tools=(TRANSLATE,), train_defaults=TRAIN_DEFAULTS,
    data_kind="text-pairs", example_data="dates")

SEQ2SEQ_GRU = SEQ2SEQ_BASE.variant(
    "seq2seq-gru", "GRUSeq2Seq", "GRU encoder-decoder with additive (Bahdanau) attention and "
    "teacher forcing; greedy or beam-search translation with its alignment map",
    Config=GRUSeq2SeqConfig, presets={"gpu": GRU_GPU_PRESET})
SEQ2SEQ_TRANSFORMER = SEQ2SEQ_BASE.variant(
    "seq2seq-transformer", "TransformerSeq2Seq", "Transformer encoder-decoder (transformers "
    "BART, from scratch); greedy or beam-search translation with its cross-attention map",
    Config=TransformerSeq2SeqConfig, presets={"gpu": TRANSFORMER_GPU_PRESET})

SPECS = (SEQ2SEQ_GRU, SEQ2SEQ_TRANSFORMER)
