"""Self-conditioning: an unconditional GAN conditioned on clusters of its own training images.

Liu et al. (2020), "Diverse Image Generation via Self-Conditioned GANs": a generator that must
map one Gaussian onto data made of separate groups (ten digits) draws in-between blends where
the groups meet; conditioned on a cluster id that the discriminator checks (a projection term,
as in a cGAN), it draws each group from its own part of the network. No label is read: the
clusters come from the images alone, and sampling draws a cluster as often as it occurs in the
training set, so the model is still an unconditional one.

The paper clusters the discriminator's features and re-clusters during training; here the
images are clustered once, before the run, by k-means on their pixels average-pooled to at most
8x8 (the layout and colour of a picture, not its noise), so the clusters are fixed data of the
run (stored in run.json with the data facts, `describe_data`) and a resumed run trains on the
same ones. The pooled centroids are small (k x C x 8 x 8 numbers) and assign any training
image to its nearest cluster.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

POOLED_SIZE = 8


def pooled(images: np.ndarray) -> np.ndarray:
    """(N, C, S, S) in [0, 1] -> (N, C * P * P): each picture average-pooled to P = min(8, S)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    size = min(POOLED_SIZE, x.shape[-1])
    return F.adaptive_avg_pool2d(x, size).flatten(1).numpy()


def fit_clusters(images: np.ndarray, k: int, seed: int = 0) -> dict[str, list]:
    """k-means (scikit-learn, 10 starts) on the pooled training images -> {"centroids":
    (k, C * P * P), "frequency": (k,) the share of training images in each}, as JSON lists.
    At most one cluster per two images: a folder of 12 pictures gets 6."""
    from sklearn.cluster import KMeans
    k = max(1, min(k, len(images) // 2))
    km = KMeans(k, n_init=10, random_state=seed).fit(pooled(images))
    counts = np.bincount(km.labels_, minlength=k)
    return {"centroids": km.cluster_centers_.astype(np.float32).round(6).tolist(),
            "frequency": (counts / counts.sum()).round(6).tolist()}


def assign(images: np.ndarray, clusters: dict[str, list]) -> np.ndarray:
    """(N, C, S, S) -> (N,) int64: each image's nearest centroid (squared Euclidean)."""
    x = pooled(images)                                          # (N, D)
    centroids = np.asarray(clusters["centroids"], np.float32)   # (k, D)
    distance = (x ** 2).sum(1, keepdims=True) - 2 * x @ centroids.T + (centroids ** 2).sum(1)
    return distance.argmin(1).astype(np.int64)


def draw(generator: torch.Generator, clusters: dict[str, list]) -> torch.Tensor:
    """One cluster id (1,), as often as the clusters occur in the training images."""
    weights = torch.tensor(clusters["frequency"], dtype=torch.float64)
    return torch.multinomial(weights, 1, generator=generator)
