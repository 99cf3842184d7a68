"""Words for the text-to-image model: the caption tokenizer (the shapes set's caption grammar,
its held-out pairs and its colour and position readers live with the set, in
pipelines/data/shapes.py).

The tokenizer is a `tokenizers` WordLevel model over the caption vocabulary (about 30 words),
built once in `describe_data` and stored as its JSON text with the run; wrapped in
transformers' PreTrainedTokenizerFast it is what the exported folder's tokenizer/ holds.
Torch-free.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import StudioError

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")       # ids 0..3
SAMPLE_PROMPTS = 64   # validation captions kept with a model of free captions, drawn by seed
CAPTIONED_DATA = ("Use shapes, or a folder: whose images each have a caption (cat1.txt beside "
                  "cat1.png, or a metadata.jsonl or metadata.csv with a file_name and a text per "
                  "image).")


def build_tokenizer(captions: list[str]) -> tuple[str, int]:
    """A WordLevel tokenizer over the captions' words -> (its JSON text, padded length L).
    Every encoding is [BOS] words [EOS] [PAD]..., exactly L ids."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    words = sorted({w for c in captions for w in c.lower().split()})
    vocab = {token: i for i, token in enumerate(SPECIALS + tuple(words))}
    length = max(len(c.split()) for c in captions) + 2
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=length)
    tok.enable_truncation(max_length=length)
    return tok.to_str(), length


def load_tokenizer(json_text: str):
    from tokenizers import Tokenizer
    return Tokenizer.from_str(json_text)


def encode(tokenizer, prompts: list[str], *, strict: bool = True) -> np.ndarray:
    """Prompts -> (N, L) int64 token ids. With `strict`, a word outside the vocabulary is an
    error naming it (the model could only read it as [UNK])."""
    if strict:
        vocab = tokenizer.get_vocab()
        unknown = sorted({w for p in prompts for w in p.lower().split() if w not in vocab})
        if unknown:
            known = ", ".join(sorted(w for w in vocab if w not in SPECIALS))
            raise StudioError(f"the prompt uses words this model never saw ({', '.join(unknown)});"
                              f" it knows: {known}")
    return np.array([e.ids for e in tokenizer.encode_batch(prompts)], dtype=np.int64)


def transformers_tokenizer(json_text: str, max_length: int):
    """The tokenizer as a transformers PreTrainedTokenizerFast that pads to the trained length,
    as the studio does: what an exported folder's tokenizer/ holds."""
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(
        tokenizer_object=load_tokenizer(json_text), pad_token="[PAD]", unk_token="[UNK]",
        bos_token="[BOS]", eos_token="[EOS]", model_max_length=max_length)
