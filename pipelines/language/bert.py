"""BERT (Devlin et al. 2019) on labelled passages: a transformers encoder built from a
BertConfig and trained from scratch in two phases, masked language modelling on the training
passages and then fine-tuning a classifier on the pooled [CLS] output.

Reading order: the tokenizer and the model config derived once from the data
(describe_data; `init_from` takes both from a finished bert run instead); the two networks;
the two phases (pretrain_step with Devlin et al.'s 80/10/10 masking, finetune_step), their
optimisers and learning-rate schedules; validation and evaluation (TF-IDF + logistic
regression measured in the same call); the export to transformers folders. The tokenizer and
the two transformers models are in bert_networks.py; the tools (classify, fill-mask,
attention, class report) in bert_tools.py; the options in bert_spec.py.

Two networks, not one encoder under two heads: `masked_lm` (BertForMaskedLM) trains in phase
1; at the first fine-tuning step its encoder is copied into `classifier` (a
BertForSequenceClassification, whose pooler and head stay fresh), as
`BertForSequenceClassification.from_pretrained(<a masked-LM folder>)` starts a fine-tune. Every
parameter belongs to one module, so the trainer's checkpoints, resume and gradient clipping
see each once, and the masked-LM keeps the pre-trained encoder that fill-mask and the masked-LM
export need while the classifier's is fine-tuned. Until the copy, validation reports the
masked-LM's numbers only, so the best weights (by accuracy) come from fine-tuning. What
validation, evaluation, the tools and the export read of the classifier is the average of
its fine-tuning weights (ema_decay; the trainer keeps it, the pre-training phase leaves it
alone: Phase ema=False).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import BertConfig

from ..core.base import Pipeline, Samples, data_info
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.phases import Phase
from ..core.schedules import Schedule
from ..data.language import LabelledTextData
from .bert_networks import (FineTunedClassifier, MaskedPositionsLM, fast_tokenizer,
                            train_tokenizer)
from .bert_spec import BERT_SPEC, BertPipelineConfig
from .bert_tools import BertTools, export_folders

BATCH = 256          # passages per forward pass when scoring (validation, evaluation, tools)


# --- init_from: a finished bert run's weights ---------------------------------------------------
def source_weights(ref: str) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The weights file meant by `init_from` (a run id or folder, its export/ folder, or a
    .safetensors), its tensors and its data info (tokenizer, model config); only bert's."""
    import json

    from ..core.checkpoints import load_weights
    from ..services.loading import weights_file
    path = Path(ref).expanduser()
    if path.is_dir() and not (path / "run.json").is_file() and \
            (path / "model.safetensors").is_file():
        path = path / "model.safetensors"          # an export/ folder
    path = weights_file(str(path))
    tensors, meta = load_weights(path)
    if meta.get("studio_pipeline") != "bert":
        raise StudioError(f"init_from {ref!r} is not a bert run ({path} holds "
                          f"{meta.get('studio_pipeline') or 'no studio model'}); give a "
                          f"finished bert run, its export folder or its model.safetensors")
    return path, tensors, json.loads(meta["studio_data_info"])


class BERT(BertTools, Pipeline):
    spec = BERT_SPEC
    config: BertPipelineConfig
    draws_samples = False                   # a classifier: `classify` is its tool
    best_metric = ("accuracy", "max")       # validation accuracy (pipelines/core/best.py)
    ema_modules = ("classifier",)           # ema_decay: the average of fine-tuning's weights
    ema_warm_up_power = 1.0                 # 1 - 1/(1 + updates): a plain mean at first

    # --- what is derived from the data once -----------------------------------------------
    @classmethod
    def describe_data(cls, data: LabelledTextData, config: BertPipelineConfig) -> dict[str, Any]:
        if data.num_classes < 2:
            raise StudioError(f"{data.name!r} has {data.num_classes} class; a classifier needs "
                              f"at least two")
        info = data_info(data)      # name, kind, classes, split sizes
        if config.init_from:                 # the source's tokenizer and shape
            path, _, source = source_weights(config.init_from)
            tokenizer_json, shape = source["tokenizer"], dict(source["model_config"])
            if config.max_length > shape["max_position_embeddings"]:
                raise StudioError(f"max_length {config.max_length} is longer than init_from's "
                                  f"{shape['max_position_embeddings']} positions; lower it")
            info["init_from_path"] = str(path)
        else:
            if config.hidden_size % config.heads:
                raise StudioError(f"hidden_size ({config.hidden_size}) must divide by heads "
                                  f"({config.heads})")
            tokenizer_json = train_tokenizer(data.train_texts, config.vocab_size,
                                             config.lowercase).to_str()
            shape = {"hidden_size": config.hidden_size, "num_hidden_layers": config.layers,
                     "num_attention_heads": config.heads,
                     "intermediate_size": config.intermediate_size,
                     "max_position_embeddings": config.max_length}
        tokenizer = Tokenizer.from_str(tokenizer_json)
        vocab_size = tokenizer.get_vocab_size()
        shape.update(vocab_size=vocab_size, pad_token_id=tokenizer.token_to_id("[PAD]"),
                     hidden_dropout_prob=config.dropout,   # a training choice, not a shape
                     attention_probs_dropout_prob=config.dropout,
                     id2label=dict(enumerate(data.class_names)),
                     label2id={name: i for i, name in enumerate(data.class_names)})
        for key in ("num_labels", "architectures", "transformers_version", "model_type"):
            shape.pop(key, None)             # num_labels follows id2label
        model_config = BertConfig(**shape).to_dict()
        return {**info, "tokenizer": tokenizer_json, "vocab_size": vocab_size,
                "model_config": model_config}

    def __init__(self, config: BertPipelineConfig, info: dict[str, Any]):
        super().__init__(config, info)
        from transformers import DataCollatorForLanguageModeling
        self.tok = Tokenizer.from_str(info["tokenizer"])
        self.tok.enable_truncation(config.max_length)     # [CLS] and [SEP] included
        self.fast = fast_tokenizer(info["tokenizer"], config.max_length)
        self.pad_id = self.fast.pad_token_id
        self.special_ids = torch.tensor([self.pad_id, self.fast.cls_token_id,
                                         self.fast.sep_token_id])
        # Devlin et al.'s masking, from transformers: mask_prob of the tokens chosen, of those
        # 80% -> [MASK], 10% -> a random token, 10% unchanged; drawn from torch's global RNG,
        # which the trainer seeds and checkpoints (resume repeats the same masks).
        self.collator = DataCollatorForLanguageModeling(
            self.fast, mlm_probability=config.mask_prob, mask_replace_prob=0.8,
            random_replace_prob=0.1)

    # --- networks ---------------------------------------------------------------------------
    def build(self) -> dict[str, torch.nn.Module]:
        cfg = BertConfig.from_dict(self.info["model_config"])
        return {"masked_lm": MaskedPositionsLM(cfg),
                "classifier": FineTunedClassifier(cfg)}

    @property
    def masked_lm(self) -> MaskedPositionsLM:
        return self.modules["masked_lm"]

    @property
    def classifier(self) -> FineTunedClassifier:
        return self.modules["classifier"]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # Called once, by the trainer, before a resumed run loads its checkpoint over the
        # weights: the place to start from init_from's pre-trained masked-LM.
        if self.config.init_from:
            _, tensors, _ = source_weights(self.info.get("init_from_path")
                                           or self.config.init_from)
            state = {k[len("masked_lm."):]: v for k, v in tensors.items()
                     if k.startswith("masked_lm.")}
            self.masked_lm.load_state_dict(state)

        def adamw_of(module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
            # BERT's AdamW (betas 0.9 / 0.999, eps 1e-6): weight decay on the matrices and
            # embeddings, not on biases and LayerNorms.
            params = list(module.parameters())   # tied weights once
            groups = [{"params": [p for p in params if p.dim() >= 2],
                       "weight_decay": self.config.weight_decay},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
            return adamw(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6)
        return {"pretrain": adamw_of(self.masked_lm, self.config.lr),
                "finetune": adamw_of(self.classifier, self.config.finetune_lr)}

    # --- the two phases --------------------------------------------------------------------
    @classmethod
    def phases(cls, config: BertPipelineConfig) -> list[Phase]:
        return [Phase("pretrain", config.pretrain_steps, step="pretrain_step", ema=False),
                Phase("finetune", step="finetune_step")]

    def schedules(self) -> dict[str, Schedule]:
        """Per phase: a linear warm-up, then BERT's linear decay, here to 10% of the peak at
        the phase's end (fine-tuning's is held there, so a longer run still learns; the
        masked-LM's optimiser stops with its phase)."""
        c = self.config
        return {"pretrain": Schedule(c.warmup_steps, "linear", c.pretrain_steps, floor=0.1,
                                     end=c.pretrain_steps),
                "finetune": Schedule(c.finetune_warmup_steps, "linear", c.finetune_steps,
                                     floor=0.1, start=c.pretrain_steps)}

    def train_tensors(self, data: LabelledTextData) -> dict[str, torch.Tensor]:
        if list(data.class_names) != self.info["class_names"]:
            raise StudioError(f"the data's classes ({', '.join(data.class_names)}) are not "
                              f"the run's ({', '.join(self.info['class_names'])}); the data "
                              f"changed since the run started: start a new run")
        return {"ids": self.encode(data.train_texts),                 # (N, max_length)
                "labels": torch.from_numpy(np.asarray(data.train_labels, np.int64))}

    def encode(self, passages: list[str]) -> torch.Tensor:
        """(N, max_length) token ids: [CLS] passage [SEP], cut to max_length, then [PAD]."""
        rows = torch.full((len(passages), self.config.max_length), self.pad_id,
                          dtype=torch.long)
        for i, encoding in enumerate(self.tok.encode_batch(passages)):
            rows[i, :len(encoding.ids)] = torch.tensor(encoding.ids)
        return rows

    def passage_ids(self, passage: str) -> torch.Tensor:
        """(1, T) ids of one passage for the tools: [CLS] passage [SEP], cut to max_length;
        byte-level, so any characters encode; refused when it is blank."""
        if not passage.strip():
            raise StudioError("the passage is empty; give some text")
        return torch.tensor([self.tok.encode(passage).ids])

    def trimmed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch without the columns that are [PAD] in every row, and its attention mask."""
        mask = ids != self.pad_id                                       # (B, T)
        length = int(mask.sum(1).max())
        return ids[:, :length], mask[:, :length].long()

    def mask_tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) for the masked-LM: targets -100 where a token was not chosen.
        The collator works on CPU tensors; the batch goes back to its device."""
        cpu = ids.cpu()
        special = torch.isin(cpu, self.special_ids)                 # [PAD], [CLS], [SEP]
        inputs, targets = self.collator.torch_mask_tokens(cpu.clone(), special)
        return inputs.to(ids.device), targets.to(ids.device)

    def pretrain_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, Any]:
        ids, mask = self.trimmed(batch["ids"])                      # (B, T)
        inputs, targets = self.mask_tokens(ids)
        bag = self.config.bag_of_tokens > 0
        logits, chosen, *first = ctx.modules["masked_lm"](
            input_ids=inputs, attention_mask=mask, labels=targets, bag=bag)  # (M, V), (M,)
        # a sum over the chosen tokens / their count: no NaN for a batch with none chosen
        loss = F.cross_entropy(logits.float(), chosen, reduction="sum") / max(len(chosen), 1)
        out = {"mlm_loss": loss.detach()}
        if bag:
            bag_loss = self.bag_loss(first[0], ids, mask)
            loss = loss + self.config.bag_of_tokens * bag_loss
            out["bag_loss"] = bag_loss.detach()
        norm = ctx.backward_step(loss, "pretrain", "masked_lm")
        right = (logits.argmax(-1) == chosen).float().sum() / max(len(chosen), 1)
        return {**out, "mlm_accuracy": right.detach(), "grad_norm": norm}

    def bag_loss(self, first_logits: torch.Tensor, ids: torch.Tensor,
                 mask: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the [CLS] position's prediction (B, V), made from the masked
        inputs, against the frequencies of all the passage's own tokens (no specials)."""
        counts = torch.zeros_like(first_logits, dtype=torch.float32)
        counts.scatter_add_(1, ids, mask.float())                   # (B, V)
        counts[:, self.special_ids.to(ids.device)] = 0
        bags = counts / counts.sum(1, keepdim=True).clamp_min(1)
        return -(bags * first_logits.float().log_softmax(-1)).sum(1).mean()

    def finetune_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, Any]:
        if not ctx.accelerator.unwrap_model(ctx.modules["classifier"]).started:
            self.start_finetuning(ctx)                   # the phase's first step
        ids, mask = self.trimmed(batch["ids"])
        logits = ctx.modules["classifier"](input_ids=self.word_dropout(ids),
                                           attention_mask=mask).logits.float()   # (B, K)
        loss = F.cross_entropy(logits, batch["labels"],
                               label_smoothing=self.config.label_smoothing)
        norm = ctx.backward_step(loss, "finetune", "classifier")
        right = (logits.argmax(-1) == batch["labels"]).float().mean()
        return {"loss": loss.detach(), "accuracy": right.detach(), "grad_norm": norm}

    def word_dropout(self, ids: torch.Tensor) -> torch.Tensor:
        """finetune_mask_prob of the tokens (no [PAD], [CLS], [SEP]) -> [MASK], drawn from
        torch's global RNG on the CPU, as mask_tokens draws (the trainer seeds and checkpoints
        it, so a resumed run draws the same)."""
        if self.config.finetune_mask_prob <= 0:
            return ids
        cpu = ids.cpu()
        drop = torch.rand(cpu.shape) < self.config.finetune_mask_prob
        drop &= ~torch.isin(cpu, self.special_ids)
        return cpu.masked_fill(drop, self.fast.mask_token_id).to(ids.device)

    @torch.no_grad()
    def start_finetuning(self, ctx: Any) -> None:
        """The pre-trained encoder into the classifier; its pooler (which BERT trains on
        next-sentence prediction, left out here) and its head stay freshly initialised."""
        source = ctx.accelerator.unwrap_model(ctx.modules["masked_lm"]).bert
        target = ctx.accelerator.unwrap_model(ctx.modules["classifier"]).bert
        result = target.load_state_dict(source.state_dict(), strict=False)
        if result.unexpected_keys or any(not k.startswith("pooler.")
                                         for k in result.missing_keys):
            raise RuntimeError(f"the encoders differ: {result}")   # a bug, not user input
        ctx.accelerator.unwrap_model(ctx.modules["classifier"]).started.fill_(True)

    # --- numbers ------------------------------------------------------------------------------
    @torch.no_grad()
    def class_logits(self, passages: list[str]) -> torch.Tensor:
        """(N, K) logits of the classifier, in eval mode (no dropout), on the CPU."""
        model, out = self.classifier, []
        was_training = model.training
        model.eval()
        for start in range(0, len(passages), BATCH):
            ids, mask = self.trimmed(self.encode(passages[start:start + BATCH]).to(self.device))
            out.append(model(input_ids=ids, attention_mask=mask).logits.float().cpu())
        model.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.info["num_classes"])

    @torch.no_grad()
    def mlm_scores(self, passages: list[str], seed: int = 0) -> dict[str, float]:
        """The masked-LM's loss (nats per chosen token) and accuracy on `passages`, masked
        with a fixed seed, so that every call scores the same masks. The training RNG is
        left as it was (fork_rng)."""
        model, nats, right, count = self.masked_lm, 0.0, 0.0, 0
        was_training = model.training
        model.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(passages), BATCH):
                ids, mask = self.trimmed(self.encode(passages[start:start + BATCH])
                                         .to(self.device))
                inputs, targets = self.mask_tokens(ids)
                logits, chosen = model(input_ids=inputs, attention_mask=mask, labels=targets)
                nats += float(F.cross_entropy(logits.float(), chosen, reduction="sum"))
                right += float((logits.argmax(-1) == chosen).sum())
                count += len(chosen)
        model.train(was_training)
        return {"mlm_loss": nats / max(count, 1), "mlm_accuracy": right / max(count, 1)}

    def require_finetuning(self) -> None:
        if not self.classifier.started:
            raise StudioError(f"{self.name}'s classifier has not been fine-tuned yet (the run "
                              f"stopped within its {self.config.pretrain_steps} pre-training "
                              f"steps); train it on, or use fill-mask")

    def validate(self, data: LabelledTextData) -> dict[str, float]:
        """Before fine-tuning, the masked-LM's loss and accuracy on val_mlm_passages spread
        over the validation split (always the same ones); then the classifier's."""
        if not self.classifier.started:
            spread = np.linspace(0, len(data.val_texts) - 1,
                                 min(self.config.val_mlm_passages, len(data.val_texts)))
            return self.mlm_scores([data.val_texts[i]
                                    for i in np.unique(spread.round().astype(int))])
        logits = self.class_logits(data.val_texts)
        labels = torch.from_numpy(np.asarray(data.val_labels, np.int64))
        return {"loss": float(F.cross_entropy(logits, labels)),
                "accuracy": float((logits.argmax(1) == labels).float().mean())}

    def evaluate(self, data: LabelledTextData, cache_dir: Path) -> dict[str, float]:
        """Validation accuracy and macro-F1 of the model (once fine-tuned) and, measured in the
        same call on the same split, of TF-IDF + logistic regression on words and on
        character n-grams; the masked-LM's loss and accuracy on every validation passage."""
        from sklearn.metrics import f1_score

        from ..metrics.text_baselines import tfidf_logistic_regression
        out = self.mlm_scores(data.val_texts)
        if self.classifier.started:
            logits = self.class_logits(data.val_texts)
            labels = np.asarray(data.val_labels, np.int64)
            pred = logits.argmax(1).numpy()
            out.update(accuracy=float(np.mean(pred == labels)),
                       macro_f1=float(f1_score(labels, pred, average="macro", zero_division=0)),
                       loss=float(F.cross_entropy(logits, torch.from_numpy(labels))))
        for analyzer in ("word", "char"):
            baseline = tfidf_logistic_regression(data.train_texts, data.train_labels,
                                                 data.val_texts, data.val_labels,
                                                 analyzer=analyzer)
            out[f"baseline_tfidf_{analyzer}_accuracy"] = float(baseline["accuracy"])
            out[f"baseline_tfidf_{analyzer}_macro_f1"] = float(baseline["macro_f1"])
        out["parameters"] = float(sum(p.numel() for m in self.modules.values()
                                      for p in m.parameters()))
        return out

    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        raise StudioError(f"{self.name} classifies passages and writes none; use its tools: "
                          f"`studio tool RUN classify --set passage=...` or fill-mask")

    def export_ecosystem(self, dest: Path) -> str:
        return export_folders(self, dest)
