"""Sequence classifiers that read an image row by row (many-to-one): the image's S rows are S
time steps of C*S numbers each, and the last hidden state (both directions' for the
bidirectional LSTM) is classified. They are compared with the CNNs on the same split.

    rnn-rows     Elman RNN (tanh)
    lstm-rows    LSTM (Hochreiter & Schmidhuber 1997)
    gru-rows     GRU (Cho et al. 2014)
    bilstm-rows  bidirectional LSTM: one pass top to bottom, one bottom to top
"""

from __future__ import annotations

import torch
from torch import nn

from . import spec as S
from .common import ClassifierPipeline

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


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
    spec = S.SEQUENCE_SPEC
    cell = "lstm"
    bidirectional = False

    def make_net(self, channels: int, size: int, classes: int) -> nn.Module:
        c = self.config
        body = RowReader(self.cell, channels * size, c.hidden, c.layers, self.bidirectional,
                         c.dropout)
        return SequenceNet(body, c.hidden * (2 if self.bidirectional else 1), classes)


class RNNRows(RowSequenceClassifier):
    spec, cell = S.RNN_ROWS, "rnn"


class LSTMRows(RowSequenceClassifier):
    spec, cell = S.LSTM_ROWS, "lstm"


class GRURows(RowSequenceClassifier):
    spec, cell = S.GRU_ROWS, "gru"


class BiLSTMRows(RowSequenceClassifier):
    spec, cell, bidirectional = S.BILSTM_ROWS, "lstm", True
