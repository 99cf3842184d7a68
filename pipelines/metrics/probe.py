"""A linear probe: a logistic regression on the pixels of the real training split.

The first quality judge, kept because it is cheap and needs no training loop: a family can
judge conditional accuracy with it in a second. The CNN judge (judge.py) is the one image
metrics stand on.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data import ImageData


def fit_probe_classifier(data: ImageData, max_train: int = 5000, seed: int = 0):
    """A logistic-regression judge on flattened pixels of the real training split."""
    x = data.train_images.reshape(len(data.train_images), -1)
    y = data.train_labels
    if len(x) > max_train:
        keep = np.random.default_rng(seed).choice(len(x), max_train, replace=False)
        x, y = x[keep], y[keep]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    with warnings.catch_warnings():  # the judge's own convergence is no news to the user
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe.fit(x, y)


def probe_accuracy(probe, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of `images` (N, C, H, W in [0, 1]) the probe assigns to `labels`."""
    predicted = probe.predict(np.asarray(images).reshape(len(images), -1))
    return float(np.mean(predicted == np.asarray(labels)))
