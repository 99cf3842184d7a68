"""Judge generated images against real ones, with the real-vs-real floor next to each number.

`judge_samples(data, images, labels)` is the one entry point the families and `studio eval`
call. Which images each number compares, precisely:

- The real pool is every real image of the data set, training and validation splits together
  (digits: 1,797; shapes: 5,000). It is shuffled with `seed` and cut into two disjoint halves,
  A and B, of floor(pool / 2) images each.
- Given labels (a conditional model's samples, the classes it was asked for), A and B are
  instead two disjoint draws of real images with exactly the samples' class counts
  (`class_matched_halves`). Random halves differ in how many of each class they hold, and in
  class-sensitive features that difference alone made the digits' floor 1.85 where matched
  counts give 0.2-0.27: a conditional model asked for exactly 50 of each digit was then
  "better than real" (FD 0.53 against 1.85) while it was 0.9-1.4x the matched floor. n
  shrinks to the longest prefix of the samples that the real classes can match twice
  (`matched_prefix`).
- n = min(number of samples given, size of a half, MAX_IMAGES = 2,500). The first n samples
  are judged (so a conditional model's cycled labels stay balanced), against the first n
  images of half B. (The cap bounds the n x n distance and kernel matrices to ~50 MB each.)
- Every number is computed twice, at the same n and in the same view:
      fd, kid, precision, recall          samples vs real half B
      fd_floor, kid_floor, ...            real half A vs real half B
  The floor is what a perfect generator would score at this n: Fréchet distance in particular
  is biased upwards at small n, so a number is only read against its floor, never alone.
- The three Fréchet distances (below) are each the mean over FLOOR_SPLITS = 5 such pairs of
  halves, drawn with seeds seed, seed + 1, ...: the samples against each B, each A against
  its B. One split's floor is itself a draw: on digits the pixel view's floor over ten
  splits ran from 0.057 to 0.076 (mean 0.066), and seed 0's, the highest, read an MLP
  WGAN-GP's samples as 0.92x "the floor" in pixels, better than real data, where the means
  over five splits read 1.04x (898 samples). KID, precision and recall use the first split.
- KID is averaged over 100 random subsets of n // 2 images from each side (at most 1,000),
  so kid_std, the spread over subsets, says how much the value moves with the draw.
- precision / recall are the k-NN (k = 3) estimates of Kynkäänniemi et al. (2019), with
  real half B as the real set: precision, the share of samples that land on the real data's
  manifold (fidelity); recall, the share of real images that the samples' manifold covers
  (variety).
- fd_layers and fd_pixels (each with its floor) are the same Fréchet distance in two more
  views, because the judge's penultimate features were trained to tell classes apart and a
  class-correct picture can sit close to real ones there while its strokes and texture are
  wrong:
      layers    the judge's activations at the end of every stage, summarised per channel by
                their mean and standard deviation over the picture (style statistics;
                Judge.stage_statistics): strokes, edges, texture, blur
      pixels    the pictures themselves, projected onto the first 64 principal components of
                the training split's pixels (scikit-learn's PCA, fitted here; unwhitened, so
                the directions real pictures vary in most weigh most): layout, brightness,
                colour, blur
  tests/test_metrics.py shows that each view ranks real < slightly blurred < heavily blurred
  < noise, and that blurred real pictures, whose class the judge still reads, are far above
  the floor in every view.
- conditional_accuracy (only when labels are given and the data has two or more classes): the
  fraction of all given samples that the judge assigns to the class they were asked for, to be
  read against judge_val_accuracy, the judge's own accuracy on the real validation split.

All features come from the data set's judge (judge.py), trained on the training split. A
generator that memorised the training images would score at the floor: these numbers measure
closeness to the data distribution, not novelty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..data import ImageData
from ..core.errors import StudioError
from .distances import (KID_SUBSET_SIZE, frechet_distance, kernel_inception_distance,
                        precision_recall)
from .judge import get_judge

PR_NEIGHBOURS = 3
PIXEL_COMPONENTS = 64
PIXEL_PCA_IMAGES = 2000
MIN_IMAGES = PR_NEIGHBOURS + 2   # k-NN radii need more than k images per set; KID subsets of >= 2
MAX_IMAGES = 2500
FLOOR_SPLITS = 5


def real_pool(data: ImageData) -> tuple[np.ndarray, np.ndarray]:
    """Every real image (train + val), (P, C, H, W), and its label, (P,)."""
    return (np.concatenate([data.train_images, data.val_images]),
            np.concatenate([data.train_labels, data.val_labels]))


def real_halves(data: ImageData, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves A and B of all the real images (train + val), shuffled with `seed`,
    each (floor(pool / 2), C, H, W)."""
    pool, _ = real_pool(data)
    order = np.random.default_rng(seed).permutation(len(pool))
    half = len(pool) // 2
    return pool[order[:half]], pool[order[half:2 * half]]


def matched_prefix(data: ImageData, labels: np.ndarray) -> int:
    """The longest prefix of `labels` whose class counts two disjoint real draws can match
    (each count at most half the real images of its class): 898 cycled labels on digits,
    whose rarest class has 174 images, keep 870."""
    _, pool_labels = real_pool(data)
    room = np.bincount(pool_labels, minlength=int(labels.max()) + 1) // 2      # (classes,)
    counts = np.zeros_like(room)
    for m, label in enumerate(labels):
        counts[label] += 1
        if counts[label] > room[label]:
            return m
    return len(labels)


def class_matched_halves(data: ImageData, labels: np.ndarray, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray] | None:
    """Two disjoint sets of real images with exactly the class counts of `labels` (the classes
    a conditional model was asked for), drawn with `seed`; None when a class has too few
    real images (then the random halves are used)."""
    pool, pool_labels = real_pool(data)
    order = np.random.default_rng(seed).permutation(len(pool))
    a, b = [], []
    for c, k in zip(*np.unique(labels, return_counts=True)):
        of_class = order[pool_labels[order] == c]
        if len(of_class) < 2 * k:
            return None
        a += list(of_class[:k])
        b += list(of_class[k:2 * k])
    return pool[a], pool[b]


def pixel_pca(data: ImageData):
    """The pixel view: a scikit-learn PCA of the training split's pixels (at most 2,000 of its
    pictures, a seeded draw), k = 64 components (fewer when the pictures have fewer pixels).
    Fitted per call: 0.07 s for digits, 0.6 s for shapes."""
    from sklearn.decomposition import PCA
    pick = np.random.default_rng(0).permutation(len(data.train_images))[:PIXEL_PCA_IMAGES]
    train = flat(data.train_images[np.sort(pick)])
    k = min(PIXEL_COMPONENTS, train.shape[1], len(train) - 1)
    return PCA(k, svd_solver="randomized", random_state=0).fit(train)


def flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float64).reshape(len(images), -1)       # (N, C*H*W)


def judge_samples(data: ImageData, images: np.ndarray, labels: np.ndarray | None = None, *,
                  cache_dir: str | Path, seed: int = 0,
                  log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Fréchet distance, KID, precision, recall (each with its real-vs-real floor), the judge's
    validation accuracy and, given labels, conditional accuracy of `images` (N, C, H, W) in
    [0, 1]. See the module docstring for which images each number compares."""
    images = np.asarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise StudioError("the samples contain NaN or infinite pixels; the model has diverged")
    half_a, half_b = real_halves(data, seed)
    n = min(len(images), len(half_a), MAX_IMAGES)
    if n < MIN_IMAGES:
        raise StudioError(f"judging needs at least {MIN_IMAGES} samples and {MIN_IMAGES} real "
                          f"images in each half of the data; got {len(images)} samples and "
                          f"{len(half_a)} real images per half")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise StudioError(f"got {len(labels)} labels for {len(images)} images")
    judge = get_judge(data, cache_dir, log=log)
    splits = [real_halves(data, seed + k) for k in range(FLOOR_SPLITS)]
    if labels is not None and judge.task == "classes":
        m = matched_prefix(data, labels[:n])
        matched = [class_matched_halves(data, labels[:m], seed + k) if m >= MIN_IMAGES
                   else None for k in range(FLOOR_SPLITS)]
        if all(pair is not None for pair in matched):   # else n and the random halves stand
            n, splits = m, matched
    splits = [(a[:n], b[:n]) for a, b in splits]

    pca = pixel_pca(data)
    views = {"fd": judge.features, "fd_layers": judge.stage_statistics,
             "fd_pixels": lambda x: pca.transform(flat(x))}
    results: dict[str, float] = {"n": n}
    for name, view in views.items():
        fake = view(images[:n])                                        # (n, D)
        pairs = [(view(a), view(b)) for a, b in splits]                # each (n, D), (n, D)
        results[name] = float(np.mean([frechet_distance(fake, b) for _, b in pairs]))
        results[f"{name}_floor"] = float(np.mean([frechet_distance(a, b) for a, b in pairs]))
        if name == "fd":                 # the judge's features of the first split, for the rest
            features, (real_a, real_b) = fake, pairs[0]

    kid_args = {"subset_size": max(2, min(KID_SUBSET_SIZE, n // 2)), "seed": seed}
    kid, kid_std = kernel_inception_distance(features, real_b, **kid_args)
    kid_floor, kid_floor_std = kernel_inception_distance(real_a, real_b, **kid_args)
    precision, recall = precision_recall(real_b, features, k=PR_NEIGHBOURS)
    precision_floor, recall_floor = precision_recall(real_b, real_a, k=PR_NEIGHBOURS)
    results.update({
        "kid": kid, "kid_std": kid_std, "kid_floor": kid_floor, "kid_floor_std": kid_floor_std,
        "precision": precision, "precision_floor": precision_floor,
        "recall": recall, "recall_floor": recall_floor,
        "judge_val_accuracy": judge.val_accuracy,
    })
    if labels is not None and judge.task == "classes":
        results["conditional_accuracy"] = float(np.mean(judge.predict(images) == labels))
    return results
