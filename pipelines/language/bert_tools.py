"""The bert pipeline's tools and export (bert.py is the pipeline; bert_spec.py declares the
tools' options):

    classify       one passage -> the probability of each class
    fill-mask      a text with [MASK]s -> the masked-LM's top-k tokens for each
    attention      one layer's attention over a passage's tokens, as a heat map (the text
                   family's drawing, pipelines/text/tools.py)
    class-report   the confusion matrix and each class's precision, recall and F1
    export_folders classifier/ (AutoModelForSequenceClassification) and masked-lm/
                   (AutoModelForMaskedLM), each with its tokenizer, and the model card's section

A mixin of the BERT pipeline: it uses `self.classifier`, `self.masked_lm`, `self.fast` (the
transformers tokenizer), `self.passage_ids`, `self.class_logits`, `self.require_finetuning`
(the classifier's tools refuse a run still in pre-training) and `info`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.base import ToolResult
from ..core.errors import StudioError


class BertTools:
    @torch.no_grad()
    def tool_classify(self, ctx, passage: str) -> ToolResult:
        self.require_finetuning()
        text = passage or ctx.load_data().val_texts[0]
        ids = self.passage_ids(text).to(self.device)                        # (1, T)
        logits = self.classifier(input_ids=ids).logits.float()[0]          # (K,)
        probs = torch.softmax(logits, -1).cpu().numpy()
        names = self.info["class_names"]
        top = int(np.argmax(probs))
        by_class = {names[k]: float(probs[k]) for k in range(len(names))}
        # The probabilities are the answer (the page's bars, the CLI's sorted list, the API's
        # values["probabilities"]); the text names the verdict and the passage read, line by
        # line (an empty passage box reads a validation one).
        return ToolResult(probabilities=by_class,
                          text=f"predicted: {names[top]} ({probs[top]:.1%})\n\npassage:\n{text}")

    @torch.no_grad()
    def tool_fill_mask(self, ctx, text: str, top_k: int) -> ToolResult:
        mask = self.fast.mask_token
        if mask not in text:
            raise StudioError(f"the text has no {mask}; put {mask} where a word is missing, "
                              f"e.g. 'To be or not to {mask}.'")
        ids = self.passage_ids(text).to(self.device)                        # (1, T)
        where = (ids[0] == self.fast.mask_token_id).nonzero().flatten()      # (P,)
        if len(where) < text.count(mask):
            raise StudioError(f"the text is longer than max_length ({self.config.max_length} "
                              f"tokens) and a {mask} was cut off; shorten it")
        logits = self.masked_lm(input_ids=ids).logits[0, where].float()      # (P, V)
        probs = torch.softmax(logits, -1)
        top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
        values, lines, filled = {}, [], ids[0].clone()
        for j, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
            # each token as text ("Ġbe" is " be": a word after a space), not its byte symbols
            tokens = [self.fast.decode([t]).strip() or repr(self.fast.decode([t])) for t in i]
            values[f"mask {j + 1}"] = [{"token": t, "id": n, "probability": q}
                                       for t, n, q in zip(tokens, i, p)]
            lines.append(f"{mask} {j + 1}: " + ", ".join(f"{t} ({q:.1%})"
                                                         for t, q in zip(tokens, p)))
            filled[where[j]] = i[0]
        best = self.fast.decode(filled.tolist(), skip_special_tokens=True)
        return ToolResult(values=values, text=f"{best}\n" + "\n".join(lines))

    @torch.no_grad()
    def tool_attention(self, ctx, passage: str, layer: int, head: int,
                       model: str) -> ToolResult:
        from ..text.tools import attention_figure, attention_weights, token_label
        if model == "classifier":
            self.require_finetuning()
        text = passage or ctx.load_data().val_texts[0]
        ids = self.passage_ids(text)[0].tolist()
        network = self.classifier if model == "classifier" else self.masked_lm
        weights = attention_weights(network, ids, layer, head)              # (T, T)
        labels = [token_label(t) for t in self.fast.convert_ids_to_tokens(ids)]
        number = layer % network.config.num_hidden_layers                  # -1: the last
        which = "mean of heads" if head < 0 else f"head {head}"
        png = attention_figure(weights, labels, f"{model}: layer {number}, {which}")
        return ToolResult(figure_png=png, values={"tokens": len(ids), "layer": number},
                          text=f"{model} attention, layer {number} ({which}), {len(ids)} "
                               f"tokens; each row (query) sums to 1 over the keys")

    def tool_class_report(self, ctx, split: str) -> ToolResult:
        from sklearn.metrics import precision_recall_fscore_support

        from ..classic.plots import confusion_png
        self.require_finetuning()
        data = ctx.load_data()
        texts, labels = ((data.val_texts, data.val_labels) if split == "val"
                         else (data.train_texts, data.train_labels))
        labels = np.asarray(labels, np.int64)
        pred = self.class_logits(texts).argmax(1).numpy()
        names = self.info["class_names"]
        precision, recall, f1, support = precision_recall_fscore_support(
            labels, pred, labels=list(range(len(names))), zero_division=0)
        values: dict[str, Any] = {"accuracy": float(np.mean(pred == labels)),
                                  "macro_f1": float(np.mean(f1))}
        rows = [f"{'class':<28} precision  recall     f1  support"]
        for k, name in enumerate(names):
            values.update({f"precision/{name}": float(precision[k]),
                           f"recall/{name}": float(recall[k]), f"f1/{name}": float(f1[k]),
                           f"support/{name}": int(support[k])})
            rows.append(f"{name[:28]:<28} {precision[k]:9.3f} {recall[k]:7.3f} {f1[k]:6.3f} "
                        f"{support[k]:8d}")
        png = confusion_png(labels, pred, list(names), title=f"{self.name} ({split})")
        return ToolResult(figure_png=png, values=values, text="\n".join(rows))


def export_folders(pipe, dest: Path) -> str:
    """classifier/ and masked-lm/: transformers folders (config.json with id2label,
    model.safetensors, tokenizer.json + tokenizer_config.json) that the Auto classes load;
    classifier/ only once fine-tuning has begun. Plain transformers classes with the same
    weights: the folders name them, not the studio's subclasses that train them."""
    from transformers import BertForMaskedLM, BertForSequenceClassification
    folders = {"masked-lm": (BertForMaskedLM, pipe.masked_lm)}
    if pipe.classifier.started:
        folders["classifier"] = (BertForSequenceClassification, pipe.classifier)
    for name, (plain_cls, trained) in folders.items():
        plain = plain_cls(trained.config)
        plain.load_state_dict({k: v for k, v in trained.state_dict().items()
                               if k != "started"})
        plain.save_pretrained(str(dest / name))
        pipe.fast.save_pretrained(str(dest / name))
    if "classifier" not in folders:
        return """## transformers

`masked-lm/` is the pre-trained encoder as a `BertForMaskedLM` with its byte-level BPE
tokenizer (tokenizer.json). The run stopped before fine-tuning, so there is no classifier
yet. transformers alone loads it (run from the folder of this README):

```python
from transformers import pipeline
fill = pipeline("fill-mask", model="masked-lm")
print(fill("To be or not to [MASK]."))
```
"""
    return f"""## transformers

`classifier/` is a `BertForSequenceClassification` folder (its classes in config.json's
`id2label`) and `masked-lm/` the pre-trained encoder as a `BertForMaskedLM`, each with its
byte-level BPE tokenizer (tokenizer.json); passages longer than {pipe.config.max_length}
tokens are cut. transformers alone loads them (run from the folder of this README):

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
tok = AutoTokenizer.from_pretrained("classifier")
model = AutoModelForSequenceClassification.from_pretrained("classifier").eval()
inputs = tok("Now is the winter of our discontent", truncation=True, return_tensors="pt")
probs = model(**inputs).logits.softmax(-1)[0].tolist()
print({{model.config.id2label[i]: round(p, 3) for i, p in enumerate(probs)}})

fill = pipeline("fill-mask", model="masked-lm")
print(fill("To be or not to [MASK]."))
```
"""
