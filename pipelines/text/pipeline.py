"""Language models on a text corpus: a transformers decoder and RNN / LSTM / GRU nets.

The configs (shared training options, then each kind's shape) and the sampling controls are
declared in spec.py. Read top to bottom: the tokenizer and model config derived once from the
data (describe_data), networks and optimiser, the training step (windows cut from one long
token tensor, warm-up + cosine learning rate, gradient accumulation), the metrics (bits per
character), and generation (one path for every model, see generation.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, data_info
from ..data import TextData
from ..core.errors import StudioError
from ..core.optim import adamw
from ..core.schedules import Schedule
from . import generation as G
from . import tokenizer as T
from .models import context_limit
from .spec import TEXT_SPEC


class TextLM(Pipeline):
    """Shared by every text model; variants.py names the four models, spec.py declares them."""
    spec = TEXT_SPEC
    is_transformer: ClassVar[bool] = False
    best_metric = ("loss", "min")    # validation nats per token (pipelines/core/best.py)

    def __init__(self, config: Any, info: dict[str, Any]):
        super().__init__(config, info)
        self.tok = T.tokenizer_from_json(info["tokenizer"])
        self.train_ids: torch.Tensor | None = None     # (N,) token ids of the training split
        self._scored: dict[str, tuple[torch.Tensor, list[int]]] = {}  # text -> ids, ends

    # --- what is derived from the data once --------------------------------------------------
    @classmethod
    def describe_data(cls, data: TextData, config: Any) -> dict[str, Any]:
        init_from = getattr(config, "init_from", "")
        if init_from:
            tok = T.load_pretrained_tokenizer(_model_folder(init_from))
        elif config.tokenizer == "char":
            # Every character of the corpus (validation too, as nanoGPT does) so that the
            # validation split can be scored; other text's new characters become <unk>.
            tok = T.train_tokenizer(data.train_text + data.val_text, "char")
        else:
            tok = T.train_tokenizer(data.train_text, "bpe", config.vocab_size)
        sample = data.train_text[:200_000]
        ids, _ = T.encode(tok, sample)
        info = {**data_info(data), "tokenizer": tok.to_str(), "tokenizer_kind":
                "pretrained" if init_from else config.tokenizer,
                "vocab_size": tok.get_vocab_size(),
                "chars_per_token": round(len(sample) / max(len(ids), 1), 4)}
        return {**info, **cls.model_info(config, info["vocab_size"])}

    @classmethod
    def model_info(cls, config: Any, vocab_size: int) -> dict[str, Any]:
        return {}

    # --- networks ---------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # nanoGPT's split: decay the matrices (linear and embedding weights), not biases/norms.
        params = [p for p in self.modules["model"].parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2],
                   "weight_decay": self.config.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        # fused where it can be (pipelines/core/optim.py): measured 4% faster per CPU step here
        return {"model": adamw(groups, lr=self.config.lr, betas=(0.9, self.config.beta2))}

    def logits(self, model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, T, V) from a fresh start (no cache, no carried hidden state)."""
        raise NotImplementedError

    @property
    def model(self) -> nn.Module:
        return self.modules["model"]

    # --- training ---------------------------------------------------------------------------
    def train_tensors(self, data: TextData) -> dict[str, torch.Tensor]:
        ids, _ = T.encode(self.tok, data.train_text)
        context = self.config.context
        if len(ids) <= context + 1:
            raise StudioError(f"the training text is {len(ids)} tokens long, not more than "
                              f"context + 1 ({context + 1}); lower context or give more text")
        self.train_ids = torch.tensor(ids, dtype=torch.long)
        # One example = the start of a (context + 1)-token window: the trainer shuffles these.
        return {"starts": torch.arange(len(ids) - context)}

    def schedules(self) -> dict[str, Schedule]:
        """Linear warm-up, then a cosine from lr down to min_lr at decay_steps (held there;
        decay_steps 0: constant after the warm-up)."""
        c = self.config
        return {"model": Schedule(warmup_steps=c.warmup_steps, decay="cosine",
                                  decay_steps=c.decay_steps,
                                  floor=c.min_lr / c.lr if c.lr > 0 else 0.0)}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, Any]:
        starts = batch["starts"]                                            # (B,)
        if self.train_ids.device != starts.device:
            self.train_ids = self.train_ids.to(starts.device)
        offsets = torch.arange(self.config.context + 1, device=starts.device)
        windows = self.train_ids[starts[:, None] + offsets]                 # (B, T + 1)
        model, total = ctx.modules["model"], len(windows)
        parts = windows.tensor_split(min(self.config.grad_accum, total))
        losses = []

        def micro_losses():
            # One micro-batch's graph at a time; weighted so the sum is the batch mean.
            for part in parts:
                logits = self.logits(model, part[:, :-1])                   # (b, T, V)
                loss = F.cross_entropy(logits.float().flatten(0, 1), part[:, 1:].flatten())
                losses.append(loss.detach() * len(part) / total)
                yield loss * len(part) / total

        norm = ctx.accumulate_step(micro_losses(), "model", "model")
        return {"loss": torch.stack(losses).sum(), "grad_norm": norm}

    # --- metrics ----------------------------------------------------------------------------
    def _encoded(self, text: str) -> tuple[torch.Tensor, list[int]]:
        key = f"{len(text)}:{hash(text)}"
        if key not in self._scored:
            ids, ends = T.encode(self.tok, text)
            self._scored = {key: (torch.tensor(ids, dtype=torch.long), ends)}
        return self._scored[key]

    @torch.no_grad()
    def score(self, text: str, max_tokens: int | None = None) -> dict[str, float]:
        """Loss (nats per token), perplexity and bits per character of predicting `text`'s
        tokens, in windows of `context` tokens that each start afresh (every token after the
        first is predicted once). With `max_tokens`, only about that many predictions, in
        windows spread evenly over the whole text (always the same ones). Bits per character
        count the characters the predicted tokens cover, so char and BPE models compare."""
        ids, ends = self._encoded(text)
        n = len(ids) - 1
        if n < 1:
            raise StudioError("the text to score is shorter than two tokens; give more text")
        model, device = self.model, self.device
        window = min(self.config.context, context_limit(model) or self.config.context, n)
        starts = list(range(0, n - window + 1, window))    # windows of `window` predictions
        rest = n - len(starts) * window                     # and one shorter one at the end
        if max_tokens is not None and max_tokens < n:
            keep = max(1, max_tokens // window)
            starts = [starts[round(i * (len(starts) - 1) / max(keep - 1, 1))]
                      for i in range(min(keep, len(starts)))]
            rest = 0
        runs = [(starts[i:i + 64], window) for i in range(0, len(starts), 64)]
        runs += [([n - rest], rest)] if rest else []
        nats, tokens, chars = 0.0, 0, 0
        for group, size in runs:
            idx = torch.tensor(group)[:, None] + torch.arange(size + 1)         # (b, size + 1)
            batch = ids[idx].to(device)
            logits = self.logits(model, batch[:, :-1]).float()                  # (b, size, V)
            nats += float(F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(),
                                          reduction="sum"))
            tokens += len(group) * size
            # characters covered by tokens s+1 .. s+size of each window
            chars += sum(ends[s + size] - ends[s] for s in group)
        chars = max(chars, 1)
        loss = nats / tokens
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                "bpc": nats / math.log(2) / chars, "nats_per_char": nats / chars,
                "tokens": float(tokens), "characters": float(chars)}

    def validate(self, data: TextData) -> dict[str, float]:
        s = self.score(data.val_text, self.config.val_tokens)
        return {k: s[k] for k in ("loss", "perplexity", "bpc")}

    def evaluate(self, data: TextData, cache_dir: Path) -> dict[str, float]:
        return self.score(data.val_text)

    # --- generation -------------------------------------------------------------------------
    def prompt_ids(self, prompt: str) -> list[int]:
        ids, _ = T.encode(self.tok, prompt or "\n")
        unk = T.unknown_id(self.tok)
        if not ids:
            raise StudioError("the prompt encodes to no tokens; give some text")
        if unk is not None and unk in ids:
            unseen = sorted({c for c in prompt if self.tok.token_to_id(c) is None})
            raise StudioError(f"the prompt has characters the model never saw in training "
                              f"({''.join(unseen)!r}); leave them out")
        return ids

    def tokens(self, seed: int, prompt: str = "", max_new_tokens: int = 400,
               temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
               repetition_penalty: float = 1.0, greedy: bool = False, num_beams: int = 1
               ) -> Iterator[int]:
        """New token ids for one sample (its own generator: seed alone fixes it)."""
        ids = self.prompt_ids(prompt)
        model = self.model.eval()
        unk = T.unknown_id(self.tok)
        suppress = () if unk is None else (unk,)  # never write "<unk>"
        if num_beams > 1:  # deterministic; only the repetition penalty applies
            procs = G.logits_processors(repetition_penalty=repetition_penalty, greedy=True,
                                        suppress=suppress)
            yield from G.beam_search(model, ids, max_new_tokens, num_beams, procs)
            return
        procs = G.logits_processors(temperature, top_k, top_p, repetition_penalty, greedy,
                                    suppress)
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        yield from G.sample_tokens(model, ids, max_new_tokens, procs, greedy, generator)

    def stream(self, seed: int, **controls: Any) -> Iterator[str]:
        """The sample of `seed`, piece by piece as it is generated (the prompt comes first)."""
        if controls.get("prompt"):
            yield controls["prompt"]
        yield from G.stream_text(self.tok, self.tokens(seed, **controls))

    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        if labels is not None:
            raise StudioError(f"{self.name} is not class-conditional; leave out --class")
        # Sample i uses seed + i, so any one of them can be drawn again alone.
        return Samples(texts=["".join(self.stream(seed + i, **controls)) for i in range(n)])


def _model_folder(path: str) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise StudioError(f"init_from {path!r} is not a transformers model folder (no "
                          "config.json there); give a local folder saved with save_pretrained")
    return folder

