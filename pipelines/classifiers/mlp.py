"""A multilayer perceptron on flattened images, with the knobs a course on MLPs turns: depth,
width, activation, optimiser, L1, L2 and dropout, and each layer's gradient norm logged as
`grad/layer1`, `grad/layer2`, ... so that vanishing gradients are visible in metrics.jsonl
(and the UI's loss chart): with sigmoid the first layers' norms fall orders of magnitude below
the last one's; with ReLU they stay comparable.
"""

from __future__ import annotations

import torch
from torch import nn

from . import spec as S
from .common import ClassifierPipeline

# The torch module of each activation spec.py offers (MLPConfig.activation's choices)
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
               "leaky_relu": lambda: nn.LeakyReLU(0.1), "elu": nn.ELU}
assert tuple(ACTIVATIONS) == S.ACTIVATIONS


class MLPNet(nn.Module):
    """(B, C, S, S) -> flatten -> [Linear, activation, dropout] x depth -> (B, width) -> head."""

    def __init__(self, inputs: int, classes: int, depth: int, width: int, activation: str,
                 dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(inputs if i == 0 else width, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLP(ClassifierPipeline):
    spec = S.MLP

    def make_net(self, channels: int, size: int, classes: int) -> nn.Module:
        c = self.config
        return MLPNet(channels * size * size, classes, c.depth, c.width, c.activation, c.dropout)

    def gradient_logs(self, net: nn.Module) -> dict[str, torch.Tensor]:
        """The gradient norm of each Linear layer's weight, input side first (head last)."""
        linears = [m for m in net.body if isinstance(m, nn.Linear)] + [net.head]
        out = {}
        for i, layer in enumerate(linears):
            if layer.weight.grad is not None:
                name = "grad/head" if layer is net.head else f"grad/layer{i + 1}"
                out[name] = layer.weight.grad.detach().norm()
        return out
