"""The CNN family, small enough for 8x8 digits on a CPU and working at any image size:

    lenet5    LeCun et al. 1998: two 5x5 convs with tanh and average pooling, then 120-84 FC
    alexnet   Krizhevsky et al. 2012 in miniature: five 3x3 convs with ReLU and max pooling,
              two dropout FC layers
    vgg       Simonyan & Zisserman 2014: stages of two 3x3 conv-BN-ReLU and a max pool, the
              width doubling per stage; global average pooling
    resnet    He et al. 2016: a stem and three stages of two basic residual blocks
              (32-64-128 channels at width 32), global average pooling
    densenet  Huang et al. 2017: three dense blocks (each layer sees every earlier layer's
              maps) with compressing transitions, global average pooling

Each network has a `body` (image in [-1, 1] -> feature vector) and a `head` (the classifier),
which is what transfer learning keeps and replaces. Default training (shared by all five,
declared in spec.py, tuned by step counts on digits, see docs/classifiers.md): Adam with
warm-up and a cosine decay, random shifts / rotations / zoom, label smoothing, and an EMA of
the weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import spec as S
from .common import ClassifierPipeline


def _pool_sizes(size: int, pools: int) -> int:
    for _ in range(pools):
        size = math.ceil(size / 2)
    return size


class Net(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def lenet5(c: int, s: int, k: int, width: int, dropout: float) -> Net:
    """(B, c, s, s) -> conv5 6 -> pool -> conv5 16 -> pool -> (B, 16 s/4 s/4) -> 120 -> 84."""
    t = _pool_sizes(s, 2)
    body = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2, ceil_mode=True),
        nn.Conv2d(6, 16, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.Linear(16 * t * t, 120), nn.Tanh(), nn.Dropout(dropout),
        nn.Linear(120, 84), nn.Tanh(), nn.Dropout(dropout))
    return Net(body, nn.Linear(84, k))


def alexnet(c: int, s: int, k: int, width: int, dropout: float) -> Net:
    w = [max(4, round(width * f)) for f in (1, 2, 3, 3, 2)]   # 32-64-96-96-64 at width 32
    body = nn.Sequential(
        nn.Conv2d(c, w[0], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(w[0], w[1], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(w[1], w[2], 3, padding=1), nn.ReLU(),
        nn.Conv2d(w[2], w[3], 3, padding=1), nn.ReLU(),
        nn.Conv2d(w[3], w[4], 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(2), nn.Flatten(),               # (B, 4 w[4]) at any input size
        nn.Dropout(max(dropout, 0.5)), nn.Linear(4 * w[4], 256), nn.ReLU(),
        nn.Dropout(max(dropout, 0.5)), nn.Linear(256, 256), nn.ReLU())
    return Net(body, nn.Linear(256, k))


def _conv_bn_relu(a: int, b: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(a, b, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]


def vgg(c: int, s: int, k: int, width: int, dropout: float) -> Net:
    """Stages at s, s/2, ... while the maps are larger than 2x2 (8 px: two; 32 px: four)."""
    stages = max(2, min(4, int(math.log2(max(s, 4))) - 1))
    layers: list[nn.Module] = []
    a = c
    for i in range(stages):
        b = min(width * 2 ** i, 512)
        layers += _conv_bn_relu(a, b) + _conv_bn_relu(b, b) + [nn.MaxPool2d(2, ceil_mode=True)]
        a = b
    layers += _conv_bn_relu(a, a) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)]
    return Net(nn.Sequential(*layers), nn.Linear(a, k))


class BasicBlock(nn.Module):
    """x + F(x), F = conv-BN-ReLU-conv-BN; a 1x1 strided projection when the shape changes."""

    def __init__(self, a: int, b: int, stride: int):
        super().__init__()
        self.f = nn.Sequential(*_conv_bn_relu(a, b, stride),
                               nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b))
        self.skip = (nn.Identity() if stride == 1 and a == b else
                     nn.Sequential(nn.Conv2d(a, b, 1, stride=stride, bias=False), nn.BatchNorm2d(b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.f(x) + self.skip(x))


def resnet(c: int, s: int, k: int, width: int, dropout: float) -> Net:
    w = [width, width * 2, width * 4]
    layers: list[nn.Module] = _conv_bn_relu(c, w[0])
    a = w[0]
    for i, b in enumerate(w):                               # 8 px: 8 -> 4 -> 2
        layers += [BasicBlock(a, b, 1 if i == 0 else 2), BasicBlock(b, b, 1)]
        a = b
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)]
    return Net(nn.Sequential(*layers), nn.Linear(a, k))


class DenseLayer(nn.Module):
    """BN-ReLU-conv3 making `growth` new maps, concatenated to its input."""

    def __init__(self, a: int, growth: int):
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(a), nn.ReLU(), nn.Conv2d(a, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.f(x)], dim=1)


def densenet(c: int, s: int, k: int, width: int, dropout: float, layers_per_block: int = 4) -> Net:
    growth = max(4, width // 2)                             # 16 at width 32
    a = 2 * growth
    layers: list[nn.Module] = [nn.Conv2d(c, a, 3, padding=1, bias=False)]
    for block in range(3):
        for _ in range(layers_per_block):
            layers.append(DenseLayer(a, growth))
            a += growth
        if block < 2:                                      # transition: compress by half, pool
            b = a // 2
            layers += [nn.BatchNorm2d(a), nn.ReLU(), nn.Conv2d(a, b, 1, bias=False),
                       nn.AvgPool2d(2, ceil_mode=True)]
            a = b
    layers += [nn.BatchNorm2d(a), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Dropout(dropout)]
    return Net(nn.Sequential(*layers), nn.Linear(a, k))


class CNN(ClassifierPipeline):
    spec = S.CNN_SPEC
    builder = staticmethod(resnet)

    def make_net(self, channels: int, size: int, classes: int) -> nn.Module:
        return self.builder(channels, size, classes, self.config.width, self.config.dropout)


class LeNet5(CNN):
    spec, builder = S.LENET5, staticmethod(lenet5)


class AlexNet(CNN):
    spec, builder = S.ALEXNET, staticmethod(alexnet)


class VGG(CNN):
    spec, builder = S.VGG, staticmethod(vgg)


class ResNet(CNN):
    spec, builder = S.RESNET, staticmethod(resnet)


class DenseNet(CNN):
    spec, builder = S.DENSENET, staticmethod(densenet)
