"""The bert pipeline's tokenizer and its two transformers models (bert.py trains them).

Tokenizer: the text family's byte-level BPE (as RoBERTa's, Liu et al. 2019), not BERT's
WordPiece: the `tokenizers` WordPiece trainer numbers its "##" pieces in hash-map order and
breaks ties between equally frequent merges by those numbers, so two trainings on the same
passages gave different vocabularies (4 different ones in 6 trainings at 4,096 pieces) and
the same seed would not repeat a run; the byte-level BPE gave one JSON in 4 of 4. It also
knows every byte: no passage has an unknown character.
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, normalizers, processors
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from ..text import tokenizer as T

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")   # BERT's names


# --- the tokenizer ----------------------------------------------------------------------------
def train_tokenizer(texts: list[str], vocab_size: int, lowercase: bool) -> Tokenizer:
    """The text family's byte-level BPE (pipelines/text/tokenizer.py) trained on the passages,
    then BERT's special tokens after its vocabulary and "[CLS] passage [SEP]" around every
    encoding. Its normaliser reads a passage's line breaks as spaces (and lower-cases it with
    `lowercase`), and the BPE is trained on the passages normalised so: byte-level BPE glues
    a space to the word after it ("Ġthe"), but not a newline, so a word starting a line was
    another token than the same word inside one. [MASK] takes the space before it (lstrip,
    as RoBERTa's <mask>), so that in "not to [MASK]" it stands for the token " be", as
    masking a token did in training."""
    steps = [normalizers.Replace("\n", " ")] + ([normalizers.Lowercase()] if lowercase else [])
    normalizer = normalizers.Sequence(steps)
    corpus = "\n".join(normalizer.normalize_str(t) for t in texts)   # one passage a line
    tok = T.train_tokenizer(corpus, "bpe", vocab_size)
    tok.normalizer = normalizer
    tok.add_special_tokens([AddedToken(t, lstrip=t == "[MASK]") for t in SPECIAL_TOKENS])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(t, tok.token_to_id(t))
                                                 for t in ("[CLS]", "[SEP]")])
    return tok


def fast_tokenizer(tokenizer_json: str, max_length: int):
    """The transformers wrapper, special tokens named (what AutoTokenizer loads back)."""
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer_json), model_max_length=max_length,
        **{f"{name}_token": f"[{name.upper()}]" for name in ("pad", "unk", "cls", "sep", "mask")})


# --- the two networks ---------------------------------------------------------------------
class MaskedPositionsLM(BertForMaskedLM):
    """BertForMaskedLM (same modules, names and tied weights) whose forward, given `labels`,
    runs the prediction head only at the chosen tokens (~15%) and returns (logits (M, V), their
    targets (M,)): the head's vocabulary-wide matmul at every position is half of a small
    model's step (measured on one CPU thread at the defaults, 32 passages of 50 tokens: 0.068 s
    a training step against 0.128 s with transformers' forward). Without labels it is
    BertForMaskedLM's forward (fill-mask, attention)."""

    def forward(self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                bag: bool = False, **kwargs: Any):
        if labels is None:
            return super().forward(input_ids=input_ids, **kwargs)
        hidden = self.bert(input_ids, **kwargs).last_hidden_state    # (B, T, H)
        chosen = labels != -100                                      # (B, T)
        logits = self.cls(hidden[chosen])                            # (M, V)
        if bag:           # and the head at [CLS] (bert_spec.py: bag_of_tokens)
            return logits, labels[chosen], self.cls(hidden[:, 0])    # ..., (B, V)
        return logits, labels[chosen]                                # (M, V), (M,)


class FineTunedClassifier(BertForSequenceClassification):
    """BertForSequenceClassification that remembers whether fine-tuning has begun (`started`,
    a buffer saved with the weights, so a resumed or loaded run knows): before it, its
    encoder is still random, and validation, evaluation and the tools leave it alone. The
    export writes a plain BertForSequenceClassification without it."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
