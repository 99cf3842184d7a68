"""Text models: a transformers decoder and RNN / LSTM / GRU language models on one corpus, with
Hugging Face tokenizers (tokenizer.py), one generation path (generation.py), the networks
(models.py), the shared pipeline (pipeline.py), the four named models (variants.py), their
torch-free declarations (spec.py: configs, controls, defaults, presets, tools), and the
attention view and exports (tools.py)."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "TextLM": ".pipeline", "TextConfig": ".spec", "TransformerConfig": ".spec",
    "RecurrentConfig": ".spec", "TextSampleControls": ".spec", "Transformer": ".variants",
    "Recurrent": ".variants", "RNN": ".variants", "LSTM": ".variants", "GRU": ".variants",
    "VARIANTS": ".variants"})
