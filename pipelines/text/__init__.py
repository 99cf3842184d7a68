"""Text models: a transformers decoder and RNN / LSTM / GRU language models on one corpus, with
Hugging Face tokenizers (tokenizer.py), one generation path (generation.py), the networks
(models.py), the shared pipeline (pipeline.py), the four named models (variants.py), and the
attention view and exports (tools.py)."""

from .pipeline import (RecurrentConfig, TextConfig, TextLM, TextSampleControls,
                       TransformerConfig)
from .variants import GRU, LSTM, RNN, VARIANTS, Recurrent, Transformer

__all__ = ["TextLM", "TextConfig", "TransformerConfig", "RecurrentConfig", "TextSampleControls",
           "Transformer", "Recurrent", "RNN", "LSTM", "GRU", "VARIANTS"]
