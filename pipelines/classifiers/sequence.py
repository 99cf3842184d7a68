"""Sequence classifiers that read an image row by row (many-to-one): the image's S rows are S
time steps of C*S numbers each, and the last hidden state (both directions' for the
bidirectional LSTM) is classified. They are compared with the CNNs on the same split.

    rnn-rows     Elman RNN (tanh)
    lstm-rows    LSTM (Hochreiter & Schmidhuber 1997)
    gru-rows     GRU (Cho et al. 2014)
    bilstm-rows  bidirectional LSTM: one pass top to bottom, one bottom to top
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import option, variant_config
from ..presets import extend
from .common import ClassifierConfig, ClassifierPipeline
from .tools import CONFUSION

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class SequenceConfig(ClassifierConfig):
    hidden: int = option(128, "Hidden units of each recurrent layer (per direction).",
                         low=2, high=4096)
    layers: int = option(1, "Stacked recurrent layers.", low=1, high=8)


SEQUENCE_DEFAULTS = dict(lr=3e-3, warmup_steps=50, schedule_steps=1500, weight_decay=0.0,
                         ema_decay=0.995, augment_shift=1.0, augment_rotate=10.0, augment_scale=0.1,
                         label_smoothing=0.1)


class RowReader(nn.Module):
    """(B, C, S, S) -> rows (B, S, C*S) -> recurrent net -> last hidden state (B, H*dirs)."""

    def __init__(self, cell: str, inputs: int, hidden: int, layers: int, bidirectional: bool,
                 dropout: float):
        super().__init__()
        self.rnn = CELLS[cell](inputs, hidden, num_layers=layers, batch_first=True,
                               bidirectional=bidirectional,
                               dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, s, _ = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b, s, c * s)      # time = image row
        _, state = self.rnn(rows)
        h = state[0] if isinstance(state, tuple) else state    # (layers * dirs, B, H); LSTM: (h, c)
        dirs = 2 if self.rnn.bidirectional else 1
        last = h[-dirs:].transpose(0, 1).reshape(b, -1)         # top layer, every direction
        return self.dropout(last)


class SequenceNet(nn.Module):
    def __init__(self, body: nn.Module, features: int, classes: int):
        super().__init__()
        self.body, self.head = body, nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class RowSequenceClassifier(ClassifierPipeline):
    Config = SequenceConfig
    tools = (CONFUSION,)
    train_defaults = {**ClassifierPipeline.train_defaults, "steps": 1500}
    # gpu preset (not yet measured on a GPU): two layers of 256 units reading 64 rows of 64
    # px; the rows run one after another, but 64 of them in cuDNN's kernels are quick.
    presets = {"gpu": extend(ClassifierPipeline.presets["gpu"],
                             config={"hidden": 256, "layers": 2})}
    cell = "lstm"
    bidirectional = False

    def make_net(self, channels: int, size: int, classes: int) -> nn.Module:
        c = self.config
        body = RowReader(self.cell, channels * size, c.hidden, c.layers, self.bidirectional,
                         c.dropout)
        return SequenceNet(body, c.hidden * (2 if self.bidirectional else 1), classes)


class RNNRows(RowSequenceClassifier):
    name, cell = "rnn-rows", "rnn"
    Config = variant_config("RNNRowsConfig", SequenceConfig, **{**SEQUENCE_DEFAULTS, "lr": 1e-3})


class LSTMRows(RowSequenceClassifier):
    name, cell = "lstm-rows", "lstm"
    Config = variant_config("LSTMRowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS)


class GRURows(RowSequenceClassifier):
    name, cell = "gru-rows", "gru"
    Config = variant_config("GRURowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS)


class BiLSTMRows(RowSequenceClassifier):
    name, cell, bidirectional = "bilstm-rows", "lstm", True
    Config = variant_config("BiLSTMRowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS)
