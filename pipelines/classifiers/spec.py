"""The classifiers' declarations, without torch (pipelines/core/spec.py): the config every
classifier shares and each kind's own options, the tools' options, the training defaults and
gpu presets, and one spec per registry entry (the papers are cited in cnn.py and sequence.py).
The page and the CLI read these; training, prediction and tools import common.py, mlp.py,
cnn.py and sequence.py."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.config import EMA_WARM_UP, option, variant_config
from ..core.presets import extend
from ..core.spec import PipelineSpec, Tool

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adagrad")
# The MLP's hidden-layer activations (mlp.py maps each to its torch module)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")


@dataclass
class ClassifierConfig:
    optimizer: str = option("adam", "sgd, momentum (SGD with 0.9 Nesterov momentum), rmsprop, "
                            "adam or adagrad.", choices=OPTIMIZERS)
    lr: float = option(2e-3, "Peak learning rate.", low=0.0, high=10.0)
    lr_schedule: str = option("cosine", "constant, or cosine: linear warm-up, then a cosine "
                              "decay to 2% of lr at schedule_steps (held there after).",
                              choices=("constant", "cosine"))
    warmup_steps: int = option(100, "Steps of linear learning-rate warm-up (cosine only).", low=0)
    schedule_steps: int = option(2000, "Step at which the cosine schedule ends; set it to the "
                                 "run's --steps when you change those.", low=1)
    weight_decay: float = option(1e-4, "L2 penalty (the optimiser's weight decay, added to "
                                 "the gradient).", low=0.0)
    l1: float = option(0.0, "L1 penalty: this times the sum of |weights| is added to the loss.",
                       low=0.0)
    dropout: float = option(0.0, "Dropout probability before each hidden fully connected "
                            "layer (and the head).", low=0.0, high=0.9)
    label_smoothing: float = option(0.0, "Cross-entropy label smoothing.", low=0.0, high=0.5)
    ema_decay: float = option(0.0, "EMA of the weights used for validation and prediction; 0 "
                              "turns it off. " + EMA_WARM_UP, low=0.0, high=1.0)
    augment_shift: float = option(0.0, "Random translation of up to this many pixels.",
                                  low=0.0, high=16.0)
    augment_rotate: float = option(0.0, "Random rotation of up to this many degrees.",
                                   low=0.0, high=180.0)
    augment_scale: float = option(0.0, "Random zoom by up to this fraction (0.1 = +-10%).",
                                  low=0.0, high=0.5)
    augment_flip: bool = option(False, "Random horizontal flips (not for digits or text).")
    init_from: str = option("", "Transfer learning: a run id or folder to start from (see "
                            "init_part); the head is always fresh, sized for this data set's "
                            "classes.")
    init_part: str = option("body", "With init_from: body takes a classifier run's whole body "
                            "(the same network: every tensor must match); encoder takes an "
                            "autoencoder run's encoder, layer by layer from the input while "
                            "the shapes match (at least one layer).",
                            choices=("body", "encoder"))
    freeze: str = option("none", "With init_from: body freezes the transferred layers (the "
                         "whole body with init_part=body: a fixed feature extractor); none "
                         "fine-tunes everything.", choices=("none", "body"))
    transfer_lr: float = option(0.0, "With init_from: the learning rate of the transferred "
                                "layers (e.g. lower, to keep what they learnt); 0: lr.",
                                low=0.0, high=10.0)
    image_size: int = option(0, "Resize the data to this size; 0 keeps the data set's size.",
                             low=0, high=256)


@dataclass
class MLPConfig(ClassifierConfig):
    depth: int = option(2, "Hidden layers.", low=1, high=32)
    width: int = option(256, "Units per hidden layer.", low=2, high=8192)
    activation: str = option("relu", "Hidden-layer activation: sigmoid, tanh, relu, leaky_relu "
                             "(slope 0.1) or elu.", choices=ACTIVATIONS)


@dataclass
class StackedAEConfig(MLPConfig):
    pretrain_steps: int = option(2000, "Greedy pre-training: steps of each hidden layer's "
                                 "denoising autoencoder (layer 1 on the pixels, layer 2 on "
                                 "layer 1's codes, ...), before the stack is fine-tuned as a "
                                 "classifier with the labels.", low=1, high=1_000_000)
    corruption: float = option(0.3, "Masking noise of each layer's denoising autoencoder: "
                               "this share of its inputs is set to 0, and it learns to put "
                               "them back (Vincent et al. 2010).", low=0.0, high=0.95)
    pretrain_lr: float = option(2e-3, "Adam learning rate of the pre-training phases.",
                                low=0.0, high=1.0)
    compare_steps: int = option(300, "Evaluation: fine-tuning steps of each classifier it "
                                "compares (pre-trained vs random start, at 1%, 10% and 100% "
                                "of the labels).", low=1, high=100_000)


@dataclass
class CNNConfig(ClassifierConfig):
    width: int = option(32, "Channels of the first stage (later stages double it; LeNet-5 "
                        "keeps its 6-16 and AlexNet scales 32-64-96-96-64 by width/32).",
                        low=4, high=512)


# Defaults of the whole family (the field's own defaults are the plain ones in ClassifierConfig).
CNN_DEFAULTS = dict(lr=3e-3, warmup_steps=50, schedule_steps=800, weight_decay=5e-4,
                    label_smoothing=0.1, ema_decay=0.995, augment_shift=1.0,
                    augment_rotate=10.0, augment_scale=0.1)


@dataclass
class SequenceConfig(ClassifierConfig):
    hidden: int = option(128, "Hidden units of each recurrent layer (per direction).",
                         low=2, high=4096)
    layers: int = option(1, "Stacked recurrent layers.", low=1, high=8)


SEQUENCE_DEFAULTS = dict(lr=3e-3, warmup_steps=50, schedule_steps=1500, weight_decay=0.0,
                         ema_decay=0.995, augment_shift=1.0, augment_rotate=10.0, augment_scale=0.1,
                         label_smoothing=0.1)


# --- the tools (tools.py implements them) ---------------------------------------------------
@dataclass
class FilterOptions:
    count: int = option(64, "Show at most this many filters (units).", low=1, high=512)


@dataclass
class FeatureMapOptions:
    image: int = option(0, "Validation image to use when no --input image is given.", low=0)
    channels: int = option(8, "Maps shown per layer (the first ones).", low=1, high=64)
    layers: int = option(6, "Conv layers shown at most (the first ones).", low=1, high=32)


@dataclass
class ConfusionOptions:
    split: str = option("val", "Which split to count.", choices=("val", "train"))


FILTERS = Tool("filters", "tool_filters", FilterOptions,
               "The learned first-layer filters (or an MLP's first-layer weights) as pictures, "
               "each scaled to [0, 1] (mid grey = 0 when signed).")
FEATURE_MAPS = Tool("feature-maps", "tool_feature_maps", FeatureMapOptions,
                    "Each conv layer's feature maps for one image (--input a.png, or a "
                    "validation image): rows are layers, the first column is the input.",
                    accepts_images=True)
CONFUSION = Tool("confusion", "tool_confusion", ConfusionOptions,
                 "The confusion matrix on the validation split, with the accuracy.")


# --- training defaults and presets ------------------------------------------------------------
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 2000, "batch_size": 64, "log_every": 50,
                                  "sample_every": 0, "checkpoint_every": 500}
# `--preset gpu` (pipelines/core/presets.py): what every classifier shares; each kind adds its
# own width. Measured on an H200 (README): lenet5's ran 186 steps/s in fp32 (the others
# not yet timed). Planned from:
# LeNet-5 ran at 131 steps/s in fp32 on an H200 at the defaults (8 px, batch 64), ~8 ms a
# step of kernel launches. 64 px at batch 256 (the cosine schedule ending at the last
# step) gives the widest model of the family, a width-64 ResNet (~1.7 GMAC an image,
# ~2.6 TFLOP a step), ~35 ms a step: 5,000 steps in about 3 minutes, the others less.
# 64 px: shapes are drawn at that size, folder: images read at it; digits (8x8) are only
# upscaled.
GPU_PRESET: dict[str, dict[str, Any]] = {
    "config": {"image_size": 64, "schedule_steps": 5000},
    "trainer": {"steps": 5000, "batch_size": 256, "mixed_precision": "auto",
                "checkpoint_every": 1000}}
CLASSIFIER_SPEC = PipelineSpec(
    name="classifier-base", family="classifier", kind="classifier",
    summary="every classifier's shared pipeline",
    impl="pipelines.classifiers.common:ClassifierPipeline", Config=ClassifierConfig,
    train_defaults=TRAIN_DEFAULTS, presets={"gpu": GPU_PRESET})
CNN_SPEC = replace(
    CLASSIFIER_SPEC, name="cnn-base", summary="every CNN's shared pipeline",
    impl="pipelines.classifiers.cnn:CNN", Config=CNNConfig,
    tools=(FILTERS, FEATURE_MAPS, CONFUSION),
    train_defaults={**TRAIN_DEFAULTS, "steps": 800, "log_every": 50, "checkpoint_every": 400},
    # gpu preset (not yet measured on a GPU): twice the default width (LeNet-5 keeps its own).
    presets={"gpu": extend(GPU_PRESET, config={"width": 64})})
SEQUENCE_SPEC = replace(
    CLASSIFIER_SPEC, name="rows-base", summary="every row-reading classifier's shared pipeline",
    impl="pipelines.classifiers.sequence:RowSequenceClassifier",
    Config=SequenceConfig, tools=(CONFUSION,),
    train_defaults={**TRAIN_DEFAULTS, "steps": 1500},
    # gpu preset (not yet measured on a GPU): two layers of 256 units reading 64 rows of 64
    # px; the rows run one after another, but 64 of them in cuDNN's kernels are quick.
    presets={"gpu": extend(GPU_PRESET, config={"hidden": 256, "layers": 2})})


MLP = replace(
    CLASSIFIER_SPEC, name="mlp", impl="pipelines.classifiers.mlp:MLP",
    summary="MLP classifier: depth, width, activation, optimiser, L1/L2, dropout; per-layer "
    "gradient norms (vanishing gradients)", Config=MLPConfig, tools=(FILTERS, CONFUSION),
    # gpu preset (not yet measured on a GPU): 3 layers of 1,024 units on 64x64 inputs, ~15M
    # weights, a fraction of a TFLOP a step at batch 256: launch-bound.
    presets={"gpu": extend(GPU_PRESET, config={"width": 1024, "depth": 3})})
# Greedy layer-wise pre-training (Bengio et al. 2007; stacked denoising autoencoders, Vincent
# et al. 2010): the MLP's hidden layers, each first trained as an autoencoder (one trainer
# phase a layer), then fine-tuned with the labels; its evaluation compares it with a random
# start at 1%, 10% and 100% of the labels (docs/representations.md).
STACKED_AE = replace(
    MLP, name="stacked-ae", impl="pipelines.classifiers.stacked_ae:StackedAE",
    summary="Stacked denoising autoencoders: greedy layer-wise pre-training of an MLP, then "
    "fine-tuning; compared with a random start at 1%, 10%, 100% of the labels",
    # lr 5e-4 (the MLP's 2e-3 washed the pre-trained start out at 1% of the labels: 0.713
    # against 0.688 where 5e-4 gave 0.756 against 0.698, docs/representations.md)
    Config=variant_config("StackedAEDefaults", StackedAEConfig, lr_schedule="constant",
                          lr=5e-4),
    # two layers of 2,000 pre-training steps, then 1,300 of fine-tuning
    train_defaults={**TRAIN_DEFAULTS, "steps": 5300},
    # gpu preset (planned, not measured): the MLP's three layers of 1,024 units, each
    # pre-trained 5,000 steps, then 5,000 of fine-tuning
    presets={"gpu": extend(GPU_PRESET, config={"width": 1024, "depth": 3,
                                               "pretrain_steps": 5000},
                           trainer={"steps": 20000})})


@dataclass
class DANNConfig:
    width: int = option(32, "Channels of the feature extractor's first 5x5 conv (the second "
                        "has 1.5x as many; the paper's MNIST network: 32 and 48).", low=4,
                        high=512)
    domain_weight: float = option(1.0, "lambda: how hard the features are pushed to hide the "
                                  "domain (the gradient reversal's scale at the end of its "
                                  "ramp); 0 trains on the source alone.", low=0.0, high=100.0)
    schedule_steps: int = option(1500, "The paper's training progress p = step / "
                                 "schedule_steps: lambda rises as 2 / (1 + exp(-10 p)) - 1 and "
                                 "the learning rate falls as lr / (1 + 10 p)^0.75 (Ganin et al. "
                                 "2016, 5.2.2); set it to the run's steps.", low=1,
                                 high=10_000_000)
    lr: float = option(0.01, "SGD learning rate at the start (momentum 0.9, the paper's).",
                       low=0.0, high=1.0)
    baseline_steps: int = option(1500, "Evaluation: training steps of the two classifiers it "
                                 "compares with (source only, and the ceiling trained on the "
                                 "target's labels), same network and recipe.", low=1,
                                 high=1_000_000)


@dataclass
class DomainMapOptions:
    count: int = option(300, "Validation pictures of each domain in the map.", low=10,
                        high=5000)
    baseline_steps: int = option(0, "Training steps of the source-only classifier drawn "
                                 "beside this run (trained when the map is drawn); 0: the "
                                 "run's own baseline_steps, as its evaluation trained it.",
                                 low=0, high=1_000_000)


# Domain-adversarial training (Ganin et al. 2016): a CNN classifier trained on the labelled
# source (digits) while a gradient-reversed domain classifier on its features makes them
# the same for the unlabelled target (digits-m); docs/representations.md.
DANN = PipelineSpec(
    name="dann", family="classifier", kind="classifier",
    summary="Domain-adversarial training (gradient reversal) from labelled digits to "
            "unlabelled digits-m; judged on the target against source-only and a target-trained "
            "ceiling",
    impl="pipelines.classifiers.dann:DANN", Config=DANNConfig,
    tools=(CONFUSION, Tool("domains", "tool_domains", DomainMapOptions,
                           "A 2-D map (PCA) of the features of source and target validation "
                           "pictures, coloured by domain: a source-only classifier's beside "
                           "this run's (before and after adaptation).")),
    train_defaults={**TRAIN_DEFAULTS, "steps": 1500, "log_every": 100},
    presets={"gpu": {"config": {"width": 64, "schedule_steps": 5000, "baseline_steps": 5000},
                     "trainer": {"steps": 5000, "batch_size": 128, "mixed_precision": "auto",
                                 "checkpoint_every": 1000}}},
    data_kind="unpaired", example_data="digits-m")


LENET5 = CNN_SPEC.variant(
    "lenet5", "LeNet5", "LeNet-5 CNN (tanh, average pooling)",
    Config=variant_config("LeNet5Config", CNNConfig, **{**CNN_DEFAULTS, "lr": 1e-2}))
ALEXNET = CNN_SPEC.variant(
    "alexnet", "AlexNet", "Small AlexNet-style CNN: five convs, max pooling, dropout "
    "FC layers", Config=variant_config("AlexNetConfig", CNNConfig, **CNN_DEFAULTS))
VGG = CNN_SPEC.variant(
    "vgg", "VGG", "VGG-style CNN: stages of 3x3 conv-BN-ReLU pairs",
    Config=variant_config("VGGConfig", CNNConfig, **CNN_DEFAULTS))
RESNET = CNN_SPEC.variant(
    "resnet", "ResNet", "Small ResNet: three stages of basic residual blocks",
    Config=variant_config("ResNetConfig", CNNConfig, **CNN_DEFAULTS))
DENSENET = CNN_SPEC.variant(
    "densenet", "DenseNet", "Small DenseNet: three dense blocks with transitions",
    Config=variant_config("DenseNetConfig", CNNConfig, **CNN_DEFAULTS))
RNN_ROWS = SEQUENCE_SPEC.variant(
    "rnn-rows", "RNNRows", "RNN reading an image row by row (many-to-one)",
    Config=variant_config("RNNRowsConfig", SequenceConfig, **{**SEQUENCE_DEFAULTS, "lr": 1e-3}))
LSTM_ROWS = SEQUENCE_SPEC.variant(
    "lstm-rows", "LSTMRows", "LSTM reading an image row by row",
    Config=variant_config("LSTMRowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS))
GRU_ROWS = SEQUENCE_SPEC.variant(
    "gru-rows", "GRURows", "GRU reading an image row by row",
    Config=variant_config("GRURowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS))
BILSTM_ROWS = SEQUENCE_SPEC.variant(
    "bilstm-rows", "BiLSTMRows", "Bidirectional LSTM reading an image row by row",
    Config=variant_config("BiLSTMRowsConfig", SequenceConfig, **SEQUENCE_DEFAULTS))

SPECS = (MLP, STACKED_AE, DANN, LENET5, ALEXNET, VGG, RESNET, DENSENET, RNN_ROWS, LSTM_ROWS,
         GRU_ROWS, BILSTM_ROWS)
