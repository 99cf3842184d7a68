"""The text family's extras: the attention heat map, the embedding explorer's view of a model's
tokens, and the exports with their loaders.

    attention_figure(model, tok, ids, layer, head)  -> PNG bytes (one layer's attention)
    token_space(model, tok)                         -> the input embedding as an EmbeddingSpace
    TokenEmbeddingTools                             neighbours, analogy, map on it (a mixin)
    export_transformer(model, tok, dest)            -> export/transformers/ + card section
    export_recurrent(model, tok, config, dest)      -> export/rnn/ + card section with a loader
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import StudioError
from ..language.embeddings import EmbeddingSpace, EmbeddingTools
from .tokenizer import UNK, save_for_transformers


@torch.no_grad()
def attention_weights(model: nn.Module, ids: list[int], layer: int, head: int) -> torch.Tensor:
    """(T, T) attention of `layer` (negative counts from the end), one head or their mean."""
    layers = model.config.num_hidden_layers
    if not -layers <= layer < layers:
        raise StudioError(f"layer must be from {-layers} to {layers - 1}; the model has {layers}")
    heads = model.config.num_attention_heads
    if not -1 <= head < heads:
        raise StudioError(f"head must be from 0 to {heads - 1}, or -1 for the mean of all heads")
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")  # only eager attention returns its weights
    try:
        device = next(model.parameters()).device
        out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True,
                    use_cache=False)
    finally:
        model.set_attn_implementation(before)
    weights = out.attentions[layer][0].float()       # (heads, T, T), rows sum to 1
    return weights.mean(0) if head < 0 else weights[head]


def attention_figure(weights: torch.Tensor, labels: list[str], title: str) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(labels)
    size = max(4.0, min(16.0, 0.22 * n + 2))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(weights.cpu().numpy(), cmap="viridis", vmin=0.0)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7, family="monospace")
    ax.set_yticks(range(n), labels, fontsize=7, family="monospace")
    ax.set_xlabel("attended-to token (key)")
    ax.set_ylabel("token being predicted from (query)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def token_label(text: str) -> str:
    return text.replace("\n", "\\n").replace(" ", "\u2423") or "\u2205"


# --- the embedding explorer on a model's tokens (pipelines/language/embeddings.py) ------------
def token_space(model: nn.Module, tok) -> EmbeddingSpace:
    """The input embedding (V, D) of a transformers model or a RecurrentLM (`embed`), one row
    per token. Keys are the raw tokens ("Ġthe"); labels the text each stands for, spaces and
    newlines visible ("␣the", "\\n"); a user may type the raw token, the label, the text, or
    the text without its leading space ("the" finds "Ġthe" unless "the" is a token itself)."""
    layer = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else model.embed
    vectors = layer.weight.detach().float().cpu().numpy().copy()          # (V, D)
    keys = [f"<id {i}>" for i in range(len(vectors))]   # rows past the tokenizer (init_from)
    for token, i in tok.get_vocab().items():
        if i < len(keys):
            keys[i] = token
    texts = [tok.decode([i]) if not keys[i].startswith("<id ") else keys[i]
             for i in range(len(keys))]
    labels = [token_label(t) for t in texts]
    aliases: dict[str, int] = {}
    for spelling in (labels, texts, [t.strip() for t in texts]):
        for i, text in enumerate(spelling):
            if text:
                aliases.setdefault(text, i)
    # a map of every token for a character model; else the first 60 word-like merges (BPE
    # learns the most frequent pairs first)
    wordy = [k for k, t in zip(keys, texts) if t.strip().isalpha() and len(t.strip()) > 1]
    map_words = tuple(k for k in keys if k != UNK) if len(keys) <= 128 else tuple(wordy[:60])
    return EmbeddingSpace(keys, vectors, what="token", labels=labels, aliases=aliases,
                          probe_words=("king", "love", "e", "the"),
                          queries=("king - man + woman", "A - a + b"), map_words=map_words)


class TokenEmbeddingTools(EmbeddingTools):
    """The explorer's tools (neighbours, analogy, map) on a text model's token embedding."""

    def embedding_space(self) -> EmbeddingSpace:
        return token_space(self.model, self.tok)


def sampling_defaults_md(controls: Any) -> str:
    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in asdict(controls).items())
    return "Sampling defaults (`studio sample --set k=v` changes them):\n\n" \
           "| control | default |\n| --- | --- |\n" + rows


def export_transformer(model: nn.Module, tok, dest: Path, context: int, controls: Any) -> str:
    from transformers import GenerationConfig
    folder = dest / "transformers"
    model.generation_config = GenerationConfig(
        do_sample=not controls.greedy, temperature=controls.temperature, top_k=controls.top_k,
        top_p=controls.top_p, repetition_penalty=controls.repetition_penalty,
        max_new_tokens=max(1, min(controls.max_new_tokens, context - 1)))
    model.save_pretrained(str(folder))
    save_for_transformers(tok, folder)
    return f"""## transformers

`transformers/` is a `{type(model).__name__}` folder (config.json, model.safetensors,
generation_config.json with the sampling defaults) with its tokenizer (tokenizer.json):
transformers alone loads it and generates (run from the folder of this README).

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("transformers")
model = AutoModelForCausalLM.from_pretrained("transformers")
ids = tok("\\n", return_tensors="pt").input_ids
out = model.generate(ids, max_new_tokens={min(200, context - 1)}, do_sample=True, temperature=0.8, top_k=0)
print(tok.decode(out[0]))
```

The model sees {context} positions: with `generate`, prompt + new tokens must stay within
{context} tokens (`studio sample` slides the window and has no such limit).

{sampling_defaults_md(controls)}
"""


# The loader in the model card: plain torch + safetensors + tokenizers, no studio code. It must
# build the same module names as models.RecurrentLM (tests/test_text.py runs it).
RECURRENT_LOADER = '''import json, torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

folder = "rnn"  # the exported folder, next to this README
cfg = json.load(open(f"{folder}/config.json"))

class RecurrentLM(torch.nn.Module):
    def __init__(self, cell, vocab_size, embed_dim, hidden_size, layers, dropout=0.0, **_):
        super().__init__()
        rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.embed = torch.nn.Embedding(vocab_size, embed_dim)
        self.rnn = rnn(embed_dim, hidden_size, num_layers=layers, batch_first=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        h, state = self.rnn(self.embed(ids), state)
        return self.head(self.drop(h)), state

model = RecurrentLM(**cfg).eval()
model.load_state_dict(load_file(f"{folder}/model.safetensors"))
tok = Tokenizer.from_file(f"{folder}/tokenizer.json")
prompt = "\\n"
torch.manual_seed(0)
with torch.no_grad():
    logits, state = model(torch.tensor([tok.encode(prompt).ids]))
    new = []
    for _ in range(200):
        probs = torch.softmax(logits[0, -1] / 0.8, dim=-1)   # temperature 0.8
        token = torch.multinomial(probs, 1)
        new.append(int(token))
        logits, state = model(token[None], state)             # carry the hidden state
text = prompt + tok.decode(new)
print(text)
'''


def export_recurrent(model: nn.Module, tok, dest: Path, config: dict[str, Any],
                     controls: Any) -> str:
    from safetensors.torch import save_file
    folder = dest / "rnn"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_for_transformers(tok, folder)  # tokenizer.json (+ tokenizer_config.json)
    return f"""## {config['cell'].upper()} weights

`rnn/` holds model.safetensors (a plain state dict), config.json (the shape) and
tokenizer.json (Hugging Face `tokenizers`; `AutoTokenizer.from_pretrained("rnn")` loads it too).
transformers has no recurrent LM class, so here is the whole loader, plain torch, run from this
folder:

```python
{RECURRENT_LOADER}```

{sampling_defaults_md(controls)}
"""
