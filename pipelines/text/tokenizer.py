"""Tokenizers for the text family, built with Hugging Face `tokenizers`.

    tok = train_tokenizer(text, "char")            # one token per character (+ <unk>)
    tok = train_tokenizer(text, "bpe", 512)        # byte-level BPE, GPT-2 style, 512 tokens
    tok.to_str()                                   # the JSON stored in the run (describe_data)
    tok = tokenizer_from_json(json_text)           # and back
    save_for_transformers(tok, folder)             # tokenizer.json + tokenizer_config.json

Both round-trip text exactly: the char tokenizer splits every character (newlines included) and
its decoder glues tokens back with nothing between them; byte-level BPE works on the UTF-8 bytes,
so any text is representable and decodes back byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from ..core.errors import StudioError

UNK = "<unk>"


def train_tokenizer(text: str, kind: str, vocab_size: int = 512) -> Tokenizer:
    """A tokenizer fitted to `text`: "char" (its characters, sorted, and <unk> last) or "bpe"."""
    if kind == "char":
        chars = sorted(set(text))
        vocab = {c: i for i, c in enumerate(chars)}
        vocab[UNK] = len(vocab)
        tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        # [\s\S] matches any one character, newline included: every character is a token.
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()  # concatenate tokens (WordLevel would join with spaces)
        return tok
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()  # all 256 bytes: nothing is unknown
        trainer = trainers.BpeTrainer(vocab_size=max(vocab_size, len(alphabet)),
                                      initial_alphabet=alphabet, show_progress=False)
        tok.train_from_iterator(_chunks(text), trainer=trainer)
        return tok
    raise StudioError(f"unknown tokenizer {kind!r}; use char or bpe")


def _chunks(text: str, size: int = 100_000):
    # Cut at newlines, so no word is split between two chunks.
    start = 0
    while start < len(text):
        end = text.rfind("\n", start, start + size)
        end = len(text) if start + size >= len(text) or end <= start else end + 1
        yield text[start:end]
        start = end


def tokenizer_from_json(json_text: str) -> Tokenizer:
    return Tokenizer.from_str(json_text)


def encode(tok: Tokenizer, text: str) -> tuple[list[int], list[int]]:
    """Token ids of `text` and, for each token, the character offset where it ends (so that
    bits per character can count the characters a span of tokens covers). No special tokens."""
    ids, ends, base = [], [], 0
    for chunk in _chunks(text):
        enc = tok.encode(chunk, add_special_tokens=False)
        ids.extend(enc.ids)
        ends.extend(base + end for _, end in enc.offsets)
        base += len(chunk)
    return ids, ends


def unknown_id(tok: Tokenizer) -> int | None:
    return tok.token_to_id(UNK)


def fast_tokenizer(tok: Tokenizer):
    """The transformers wrapper (what AutoTokenizer.from_pretrained gives back)."""
    from transformers import PreTrainedTokenizerFast
    unk = UNK if tok.token_to_id(UNK) is not None else None
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk,
                                   clean_up_tokenization_spaces=False)


def save_for_transformers(tok: Tokenizer, folder: Path) -> None:
    fast_tokenizer(tok).save_pretrained(str(folder))


def load_pretrained_tokenizer(folder: Path) -> Tokenizer:
    """The `tokenizers` object behind a local transformers folder's fast tokenizer."""
    from transformers import AutoTokenizer
    try:
        fast = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as e:
        raise StudioError(f"{folder} has no tokenizer that transformers can load ({e}); "
                          "init_from needs a folder with tokenizer.json") from None
    backend = getattr(fast, "backend_tokenizer", None)
    if backend is None:
        raise StudioError(f"{folder}'s tokenizer is not a fast (tokenizer.json) tokenizer; "
                          "save it with a PreTrainedTokenizerFast first")
    return backend
