"""Domain-adversarial training (Ganin et al. 2016, "Domain-adversarial training of neural
networks"): a classifier learns the labelled source domain (digits) while the unlabelled
target domain (digits-m: the same kind of digits over photo texture) is only seen through a
domain classifier that reads the same features behind a gradient reversal. The domain
classifier learns to tell the domains apart; the reversed gradient teaches the features to
make that impossible, so what the label classifier learns on the source carries over.

    features  f: (x - mean) / std, conv5-ReLU-pool, conv5-ReLU-pool, flatten
                                                    (B, 3, 28, 28) -> (B, 1.5 width * 7 * 7)
    label     c: f -> 100 -> 100 -> 10 logits, trained on the source labels only
    domain    d: reverse(f, lambda) -> 100 -> 2 logits (source, target), on both domains

This is the paper's MNIST -> MNIST-M network and recipe: SGD with momentum 0.9, the learning
rate annealed as lr / (1 + 10 p)^0.75 and lambda raised as 2 / (1 + exp(-10 p)) - 1, p the
share of training done (its section 5.2.2). Measured on digits-m, it is the recipe that
matters: with Adam, or SGD without the annealing, DANN's gain shrinks or training diverges
(docs/representations.md). `mean` and `std` are the two domains' training pictures' channel
statistics, measured when the run starts (they are part of the data facts in run.json).

The target's labels are never trained on; its validation labels score the run (`val/target_
accuracy`), and the evaluation compares, in the same run, a classifier trained on the source
alone (the baseline) and one trained on the target's own labels (the ceiling), each the same
network and recipe. The best-weights rule is off: choosing weights by the target's labels
would be using them.

Read top to bottom: gradient reversal, the network, the pipeline (data, step, validation,
evaluation and its comparison, the domain map tool).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import Pipeline, Samples, ToolResult
from ..core.errors import StudioError
from ..core.schedules import Schedule
from ..data.unpaired import UnpairedImageData
from . import spec as S
from .tools import ClassifierTools

BASELINE_SEED = 0          # the comparison's own seed: `studio eval` repeats it
BASELINE_BATCH = 64        # its batch (the default run's, of each domain)
HIDDEN = 100               # the paper's head widths


class ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times -scale backward (torch has no such layer)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


class Standardise(nn.Module):
    """(x - mean) / std per channel, with the data's statistics kept as buffers (saved with
    the weights, so a loaded model reads pictures as it was trained to)."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class DANNNet(nn.Module):
    def __init__(self, info: dict[str, Any], width: int):
        super().__init__()
        size, channels, wide = info["image_size"], info["channels"], width * 3 // 2
        if size % 4:
            raise StudioError(f"dann pools twice: the image size must be a multiple of 4, "
                              f"not {size}")
        features = wide * (size // 4) ** 2
        self.body = nn.Sequential(                       # (B, C, S, S) -> (B, features)
            Standardise(info["input_mean"], info["input_std"]),
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, wide, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        self.head = nn.Sequential(                       # the label classifier
            nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, info["num_classes"]))
        self.domain = nn.Sequential(                     # the domain classifier
            nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # pictures in [0, 1] -> class logits
        return self.head(self.body(x))


def lambda_ramp(step: int, steps: int) -> float:
    """2 / (1 + exp(-10 p)) - 1, p = step / steps (held at 1 after)."""
    p = min(1.0, step / max(1, steps))
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def sgd(net: nn.Module, lr: float) -> torch.optim.SGD:
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)


class DANN(ClassifierTools, Pipeline):
    spec = S.DANN
    draws_samples = False
    best_metric = None

    @classmethod
    def describe_data(cls, data, config) -> dict[str, Any]:
        if not isinstance(data, UnpairedImageData) or data.num_classes < 2:
            raise StudioError(f"dann adapts a classifier from a labelled source domain to a "
                              f"target domain: it needs two domains of the same classes, "
                              f"such as digits-m (or shapes-seasons); {data.name!r} is not "
                              f"such data")
        info = super().describe_data(data, config)
        info["channels"] = int(data.train_a.shape[1])
        both = np.concatenate([data.train_a, data.train_b])
        info["input_mean"] = [round(float(v), 6) for v in both.mean((0, 2, 3))]
        info["input_std"] = [round(float(v), 6) for v in both.std((0, 2, 3)) + 1e-6]
        return info

    def build(self) -> dict[str, nn.Module]:
        return {"net": DANNNet(self.info, self.config.width)}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": sgd(self.modules["net"], self.config.lr)}

    def schedules(self) -> dict[str, Schedule]:
        return {"opt": Schedule(decay="inverse", decay_steps=self.config.schedule_steps)}

    def train_tensors(self, data: UnpairedImageData) -> dict[str, torch.Tensor]:
        """Source pictures with their labels, and as many target pictures (no labels)."""
        n = min(len(data.train_a), len(data.train_b))
        return {"images": torch.from_numpy(data.train_a[:n]),
                "labels": torch.from_numpy(data.train_a_labels[:n]),
                "target": torch.from_numpy(data.train_b[:n])}

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        c, net = self.config, self.modules["net"]
        xs, ys, xt = batch["images"], batch["labels"], batch["target"]
        feats = net.body(torch.cat([xs, xt]))                        # (2B, features)
        logits = net.head(feats[:len(xs)]).float()
        label_loss = F.cross_entropy(logits, ys)
        lam = c.domain_weight * lambda_ramp(ctx.step, c.schedule_steps)
        domain_logits = net.domain(ReverseGradient.apply(feats, lam)).float()
        domains = torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).long().to(xs.device)
        domain_loss = F.cross_entropy(domain_logits, domains)
        grad_norm = ctx.backward_step(label_loss + domain_loss, "opt", "net")
        return {"loss": label_loss.detach(), "domain_loss": domain_loss.detach(),
                "domain_accuracy": (domain_logits.argmax(1) == domains).float().mean().detach(),
                "accuracy": (logits.argmax(1) == ys).float().mean().detach(),
                "lambda": lam, "grad_norm": grad_norm}

    # --- predictions and numbers ---------------------------------------------------------
    @torch.no_grad()
    def run_net(self, images: np.ndarray, part: nn.Module, net: nn.Module) -> torch.Tensor:
        was_training = net.training
        net.eval()
        x = torch.from_numpy(np.asarray(images, np.float32)).to(self.device)
        out = torch.cat([part(x[i:i + 512]).float().cpu() for i in range(0, len(x), 512)])
        net.train(was_training)
        return out

    def logits(self, images: np.ndarray, net: nn.Module | None = None) -> torch.Tensor:
        net = net or self.modules["net"]
        return self.run_net(images, net, net)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities (the Classify tab, `studio classify`)."""
        return torch.softmax(self.logits(images), dim=1).numpy().astype(np.float64)

    def validate(self, data: UnpairedImageData) -> dict[str, float]:
        """Accuracy on both domains' validation pictures (the target's labels only score)."""
        return {"source_accuracy": accuracy(self.logits(data.val_a), data.val_a_labels),
                "target_accuracy": accuracy(self.logits(data.val_b), data.val_labels)}

    def evaluate(self, data: UnpairedImageData, cache_dir: Path) -> dict[str, float]:
        """This run's accuracies beside a source-only classifier's (the baseline) and one
        trained on the target's labels (the ceiling), same network, recipe and steps."""
        out = {f"dann/{k}": v for k, v in self.validate(data).items()}
        for name, images, labels in (("source_only", data.train_a, data.train_a_labels),
                                     ("target_trained", data.train_b, data.train_labels)):
            net = self.train_plain(images, labels, self.config.baseline_steps)
            out[f"{name}/source_accuracy"] = accuracy(self.logits(data.val_a, net),
                                                      data.val_a_labels)
            out[f"{name}/target_accuracy"] = accuracy(self.logits(data.val_b, net),
                                                      data.val_labels)
        out["gain"] = out["dann/target_accuracy"] - out["source_only/target_accuracy"]
        return out

    def train_plain(self, images: np.ndarray, labels: np.ndarray, steps: int) -> nn.Module:
        """The same network and recipe (SGD, the annealing), `steps` steps on (images,
        labels) alone, without the domain classifier."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(BASELINE_SEED)
            net = DANNNet(self.info, c.width).to(self.device)
        generator = torch.Generator().manual_seed(BASELINE_SEED)
        opt = sgd(net, c.lr)
        schedule = Schedule(decay="inverse", decay_steps=steps)
        x = torch.from_numpy(images).to(self.device)
        y = torch.from_numpy(labels).to(self.device)
        with torch.enable_grad():                  # evaluation runs under no_grad
            for step in range(steps):
                opt.param_groups[0]["lr"] = c.lr * schedule.factor(step)
                pick = torch.randint(len(x), (BASELINE_BATCH,), generator=generator).to(self.device)
                loss = F.cross_entropy(net(x[pick]).float(), y[pick])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return net

    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        raise StudioError(f"{self.name} is a classifier: it draws nothing; see its tools "
                          f"(`studio tool RUN`)")

    # --- the domain map ------------------------------------------------------------------
    def tool_domains(self, ctx, count: int, baseline_steps: int) -> ToolResult:
        """PCA maps of the features of source and target validation pictures: a source-only
        classifier's (trained now, `baseline_steps`) and this run's, coloured by domain."""
        from sklearn.decomposition import PCA
        data = ctx.load_data()
        baseline_steps = baseline_steps or self.config.baseline_steps
        source, target = data.val_a[:count], data.val_b[:count]
        panels = []
        for title, net in (("source only", self.train_plain(
                                data.train_a, data.train_a_labels, baseline_steps)),
                           ("DANN (this run)", self.modules["net"])):
            feats = [self.run_net(x, net.body, net).numpy() for x in (source, target)]
            points = PCA(2).fit_transform(np.concatenate(feats))
            panels.append((title, points[:len(source)], points[len(source):],
                           accuracy(self.logits(data.val_b, net), data.val_labels)))
        return ToolResult(figure_png=domain_map_png(panels),
                          values={f"{t} target accuracy": round(a, 4) for t, *_, a in panels})


def accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == labels).mean())


def domain_map_png(panels) -> bytes:
    import io
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), dpi=100)
    for ax, (title, source, target, target_accuracy) in zip(np.atleast_1d(axes), panels):
        ax.scatter(source[:, 0], source[:, 1], s=6, alpha=0.6, label="source (digits)")
        ax.scatter(target[:, 0], target[:, 1], s=6, alpha=0.6, label="target (digits-m)")
        ax.set_title(f"{title}: target accuracy {target_accuracy:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
