"""Discriminative baselines in torch, trained by the one trainer like every family:

    spec.py      their torch-free declarations: configs, tools' options, training defaults,
                 gpu presets, one spec per named classifier
    common.py    the shared training step (L1/L2, schedule, augmentation), validation,
                 evaluation, predict_proba and transfer learning (init_from, freeze)
    mlp.py       the MLP with per-layer gradient norms
    cnn.py       LeNet-5, AlexNet-, VGG-, ResNet- and DenseNet-style nets
    sequence.py  RNN, LSTM, GRU and bidirectional LSTM reading images row by row
    tools.py     filters, feature maps, confusion matrix
    classify.py  classify_image: every finished classifier's answer for one picture
"""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "ClassifierConfig": ".spec", "ClassifierPipeline": ".common", "MLP": ".mlp",
    "LeNet5": ".cnn", "AlexNet": ".cnn", "VGG": ".cnn", "ResNet": ".cnn", "DenseNet": ".cnn",
    "RNNRows": ".sequence", "LSTMRows": ".sequence", "GRURows": ".sequence",
    "BiLSTMRows": ".sequence"})
