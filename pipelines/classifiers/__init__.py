"""Discriminative baselines in torch, trained by the one trainer like every family:

    common.py    the shared config, training step (L1/L2, schedule, augmentation), validation,
                 evaluation, predict_proba and transfer learning (init_from, freeze)
    mlp.py       the MLP with per-layer gradient norms
    cnn.py       LeNet-5, AlexNet-, VGG-, ResNet- and DenseNet-style nets
    sequence.py  RNN, LSTM, GRU and bidirectional LSTM reading images row by row
    tools.py     filters, feature maps, confusion matrix
    classify.py  classify_image: every finished classifier's answer for one picture
"""

from .cnn import VGG, AlexNet, DenseNet, LeNet5, ResNet
from .common import ClassifierConfig, ClassifierPipeline
from .mlp import MLP
from .sequence import BiLSTMRows, GRURows, LSTMRows, RNNRows

__all__ = ["ClassifierConfig", "ClassifierPipeline", "MLP", "LeNet5", "AlexNet", "VGG",
           "ResNet", "DenseNet", "RNNRows", "LSTMRows", "GRURows", "BiLSTMRows"]
