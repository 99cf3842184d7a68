"""Greedy layer-wise pre-training with stacked denoising autoencoders (Bengio et al. 2007,
"Greedy layer-wise training of deep networks"; Vincent et al. 2010, "Stacked denoising
autoencoders"), on the MLP classifier of mlp.py.

    phase "layer 1"      hidden layer 1 learns to rebuild the pixels from a corrupted copy
    phase "layer 2"      hidden layer 2 does the same with layer 1's codes (layer 1 fixed)
    ...                  one trainer phase per hidden layer, `pretrain_steps` each
    phase "fine-tuning"  the whole stack plus a head, trained with the labels (MLP's step)

Each layer's autoencoder is the layer itself as the encoder and a linear decoder of its own
(`decoders`, used only here); corruption is masking noise (a share of the inputs set to 0).
The stack as it stood when pre-training ended is kept (`pretrained`, a copy of the body, never
trained) so that the evaluation can compare, in the same run, classifiers fine-tuned from it
with classifiers from a random start, at 1%, 10% and 100% of the labels (`compare`).

Read top to bottom: the phases, the networks, the pre-training step, the comparison.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.optim import adam
from ..core.phases import Phase
from ..data import ImageData
from . import spec as S
from .mlp import MLP, MLPNet

LABEL_SHARES = (0.01, 0.1, 1.0)      # the evaluation's label budgets
COMPARE_BATCH = 64                   # its fine-tuning batch (all the examples when fewer)
COMPARE_SEED = 0                     # its own seed: `studio eval` repeats it exactly
DRAWS = 5                            # label subsets drawn per share (1% of digits is 20
#                                      pictures: one draw's luck moves accuracy by 5 points)


class StackedAE(MLP):
    spec = S.STACKED_AE

    @classmethod
    def phases(cls, config) -> list[Phase]:
        return [Phase(f"layer {i + 1}", config.pretrain_steps, step="pretrain_step")
                for i in range(config.depth)] + [Phase("fine-tuning")]

    # --- networks ----------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        modules = super().build()
        linears = self.hidden_layers(modules["net"])
        # decoder i: layer i's code -> layer i's input (pixels in [-1, 1] for the first)
        modules["decoders"] = nn.ModuleList(nn.Linear(layer.out_features, layer.in_features)
                                            for layer in linears)
        # The body as pre-training left it, for the evaluation (filled at the first
        # fine-tuning step; checkpointed with the weights, never trained).
        modules["pretrained"] = copy.deepcopy(modules["net"].body).requires_grad_(False)
        modules["pretrained"].register_buffer("filled", torch.zeros((), dtype=torch.bool))
        return modules

    @staticmethod
    def hidden_layers(net: MLPNet) -> list[nn.Linear]:
        return [m for m in net.body if isinstance(m, nn.Linear)]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, m = self.config, self.modules
        optimizers = super().make_optimizers()
        optimizers["pretrain"] = adam([*m["net"].body.parameters(), *m["decoders"].parameters()],
                                      lr=c.pretrain_lr)
        return optimizers

    # --- pre-training ------------------------------------------------------------------------
    def pretrain_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One step of layer i's denoising autoencoder, i from the step number (the phases
        are laid end to end, `pretrain_steps` each)."""
        c, net = self.config, self.modules["net"]
        i = min(ctx.step // c.pretrain_steps, c.depth - 1)
        blocks = self.blocks(net)
        with torch.no_grad():                        # the layers below are fixed by now
            h = batch["images"].flatten(1) * 2 - 1   # (B, D) in [-1, 1]
            for block in blocks[:i]:
                h = block(h)
        keep = (torch.rand_like(h) >= c.corruption).to(h.dtype)   # masking noise
        code = blocks[i](h * keep)                  # (B, width)
        rebuilt = self.modules["decoders"][i](code).float()
        loss = F.mse_loss(rebuilt, h.float())
        grad_norm = ctx.backward_step(loss, "pretrain", ("net", "decoders"))
        return {f"rebuild/layer{i + 1}": loss.detach(), "grad_norm": grad_norm}

    @staticmethod
    def blocks(net: MLPNet) -> list[nn.Sequential]:
        """The body as one block per hidden layer: Linear, activation (and dropout)."""
        out, current = [], []
        for module in net.body:
            if isinstance(module, nn.Flatten):
                continue
            if isinstance(module, nn.Linear) and current:
                out.append(nn.Sequential(*current))
                current = []
            current.append(module)
        return out + [nn.Sequential(*current)]

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """Fine-tuning: the MLP's step, after keeping the pre-trained stack once."""
        kept = self.modules["pretrained"]
        if not bool(kept.filled):
            with torch.no_grad():
                for mine, theirs in zip(kept.parameters(),
                                        self.modules["net"].body.parameters()):
                    mine.copy_(theirs)
                kept.filled.fill_(True)
        return super().train_step(batch, ctx)

    def validate(self, data: ImageData) -> dict[str, float]:
        """The classifier's numbers once fine-tuning has begun; none while the layers are
        pre-trained (there is no classifier yet: the head is untrained, and keeping the
        "best" weights of that phase would keep a stack that cannot classify)."""
        if not bool(self.modules["pretrained"].filled):
            return {}
        return super().validate(data)

    # --- the comparison ----------------------------------------------------------------------
    def evaluate(self, data: ImageData, cache_dir: Path) -> dict[str, float]:
        """The MLP's numbers, then `compare`: at each label share, the validation accuracy of
        a classifier fine-tuned from the pre-trained stack and of one from a random start."""
        out = super().evaluate(data, cache_dir)
        out.update(self.compare(data))
        return out

    def compare(self, data: ImageData) -> dict[str, float]:
        out, kept = {}, self.modules["pretrained"]
        if not bool(kept.filled):
            return {}                                # the run ended before fine-tuning
        for share in LABEL_SHARES:
            draws = DRAWS if share < 1 else 1
            scores = {"pretrained": [], "random": []}
            for draw in range(draws):
                idx = labelled_subset(data.train_labels, share, seed=COMPARE_SEED + draw)
                for start, body in (("pretrained", kept), ("random", None)):
                    scores[start].append(self.fine_tune(data, idx, body, seed=draw))
            key = f"labels_{share:.0%}"
            for start, values in scores.items():
                out[f"{key}/{start}"] = float(np.mean(values))
            out[f"{key}/gain"] = out[f"{key}/pretrained"] - out[f"{key}/random"]
            out[f"{key}/gain_min"] = float(min(a - b for a, b in zip(scores["pretrained"],
                                                                     scores["random"])))
            out[f"{key}/examples"] = float(len(idx))
        return out

    def fine_tune(self, data: ImageData, idx: np.ndarray, body: nn.Module | None,
                  seed: int = 0) -> float:
        """A fresh MLP (the same `seed` for both starts), its body copied from `body` if
        given, trained `compare_steps` steps on the examples `idx`: its validation accuracy."""
        c, info, device = self.config, self.info, self.device
        generator = torch.Generator().manual_seed(COMPARE_SEED + seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(COMPARE_SEED + seed)
            net = self.make_net(info["channels"], info["image_size"], info["num_classes"])
        net = net.to(device)
        if body is not None:
            net.body.load_state_dict({k: v for k, v in body.state_dict().items()
                                      if k != "filled"})
        opt = adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        x = torch.from_numpy(data.train_images[idx]).to(device) * 2 - 1
        y = torch.from_numpy(data.train_labels[idx]).to(device)
        batch = min(COMPARE_BATCH, len(idx))
        net.train()
        with torch.enable_grad():              # evaluation runs under no_grad
            for _ in range(c.compare_steps):
                pick = torch.randperm(len(idx), generator=generator)[:batch].to(device)
                loss = F.cross_entropy(net(x[pick]).float(), y[pick])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            val = torch.from_numpy(data.val_images).to(device) * 2 - 1
            pred = torch.cat([net(val[i:i + 512]).argmax(1) for i in range(0, len(val), 512)])
        return float((pred.cpu().numpy() == data.val_labels).mean())


def labelled_subset(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Indices of `share` of the examples, the same share of each class (at least one each),
    drawn with `seed`: the labels a semi-supervised learner is given."""
    rng = np.random.default_rng(seed)
    out = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        take = max(1, int(round(share * len(members))))
        out.append(rng.permutation(members)[:take])
    return np.sort(np.concatenate(out))

