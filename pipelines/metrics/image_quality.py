"""Judge generated images against real ones, with a floor next to each number.

`judge_samples(data, images, labels)` is the one entry point the families and `studio eval`
call. Which images each number compares, precisely:

- The reference: the real pool is every real image of the data set, training and validation
  splits together (digits: 1,797; shapes: 5,000), shuffled with `seed` and cut into two
  disjoint halves; the samples are compared with half B, floor(pool / 2) images.
- The floor: what a copy of the training set scores against the same B, n training images
  drawn with replacement (`training_copy`): the distance a model that had learned its
  training set perfectly, to the point of reproducing it, would score. No model trained on
  that split can be closer to B in expectation, so no model reads below 1.0x.
  Why not real half A against half B (the floor until session 17): A and B are
  complementary, so where B holds more of some kind of image A holds fewer, and they differ
  by twice B's deviation from the pool, while a model that learned the training split (90%
  of the pool, most of B) differs from B by about once: models that matched the data's
  make-up read 0.75x "real vs real" (a self-conditioned DCGAN 0.76x, a cGAN 0.74x on the
  judge's features; docs/gans.md). Against the copy the same samples read 1.20x and 1.08x.
  The copy floor is strict, since about half its images are B's own: on digits each real
  half A, against its own B, reads 1.30x-1.35x it in the three views (means over 20 draws),
  which is about what a model that generalised perfectly, drawing new digits rather than
  its training set's, would read.
- The samples' own draw moves every number as much: other copies of the training split
  (other seeds, n = 898) read 0.72x-1.31x on the judge's features, 0.77x-1.25x on layers
  and 0.91x-1.19x in pixels, and ten draws of 898 samples from one MLP GAN read 1.41x-2.37x
  on the judge's features (1.49x-2.26x layers, 2.12x-2.48x pixels; session 29). So a model
  that samples cheaply is judged on JUDGED_DRAWS = 10 draws of n samples
  (`draw_judged_samples`, seeds 0, n, 2n, ...), back to back in `images` (`draws`): split k
  compares draw k mod draws, and each Fréchet distance is the mean over the 40 splits, as
  its floor is. Families whose sampling is slow (diffusion) judge one draw, and their
  numbers keep that noise.
- Given labels (a conditional model's samples, the classes it was asked for), B is instead
  drawn with exactly the samples' class counts (`class_matched_halves`) and so is the copy.
  Random sets differ in how many of each class they hold, and in class-sensitive features
  that difference alone made the digits' floor several times higher than matched counts
  give: a conditional model asked for exactly 50 of each digit read "better than real". n
  shrinks to the longest prefix of the samples that the real classes can match twice
  (`matched_prefix`).
- n = min(samples per draw, size of a half, MAX_IMAGES = 2,500). The first n samples of
  each draw are judged (so a conditional model's cycled labels stay balanced), against the
  first n images of half B. (The cap bounds the n x n distance and kernel matrices to
  ~50 MB each.)
- Every number is computed twice, at the same n and in the same view:
      fd, kid, precision, recall          samples vs real half B
      fd_floor, kid_floor, ...            copy of the training split vs real half B
  Fréchet distance in particular is biased upwards at small n, so a number is only read
  against its floor, never alone.
- The three Fréchet distances (below) are each the mean over FLOOR_SPLITS = 40 draws of B
  and the copy, with seeds seed, seed + 1, ...: on digits one draw's floor on the judge's
  features has a 30% standard deviation (9% in pixels), and with 5 or 10 draws a model's
  ratio moved from 1.6x to 2.2x with the seeds. Every view is computed once over the pool
  and indexed per draw, so the 40 cost about as much as one did. KID, precision and recall
  use the first draw of B and the copy, and the samples' first draw.
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
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..data import ImageData
from ..core.errors import StudioError
from .distances import (KID_SUBSET_SIZE, frechet_distance, kernel_inception_distance,
                        precision_recall)
from .judge import get_judge

if TYPE_CHECKING:
    from ..core.base import Samples

PR_NEIGHBOURS = 3
PIXEL_COMPONENTS = 64
PIXEL_PCA_IMAGES = 2000
MIN_IMAGES = PR_NEIGHBOURS + 2   # k-NN radii need more than k images per set; KID subsets of >= 2
MAX_IMAGES = 2500
FLOOR_SPLITS = 40
JUDGED_DRAWS = 10


def judged_sample_count(data: ImageData, classes: int = 1) -> int:
    """How many samples a family draws for judging: as many as the judge compares (half the
    real images; digits: 898), at most 1,000, rounded down to whole rounds of `classes` so a
    conditional model's cycled labels stay balanced. Every family draws this many, so their
    numbers share one n (Fréchet distance moves with n)."""
    n = min(1000, (len(data.train_images) + len(data.val_images)) // 2)
    return max(classes, n // classes * classes)


def draw_judged_samples(sample: Callable[..., Samples], n: int, draws: int = JUDGED_DRAWS,
                        **controls: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """`draws` draws of n samples for `judge_samples(..., draws=draws)`, back to back:
    (draws * n, C, H, W) images and their labels (None for an unconditional model). Draw d
    is `sample(n, seed=d * n)`, so every image has its own seed and each draw cycles the
    classes from the first, as one draw does."""
    batches = [sample(n, seed=d * n, **controls) for d in range(draws)]
    labels = None if batches[0].labels is None else np.concatenate([b.labels for b in batches])
    return np.concatenate([b.images for b in batches]), labels


def real_pool(data: ImageData) -> tuple[np.ndarray, np.ndarray]:
    """Every real image (train + val), (P, C, H, W), and its label, (P,)."""
    return (np.concatenate([data.train_images, data.val_images]),
            np.concatenate([data.train_labels, data.val_labels]))


def real_halves(data: ImageData, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves A and B of all the real images (train + val), shuffled with `seed`,
    each (floor(pool / 2), C, H, W)."""
    pool, _ = real_pool(data)
    a, b = half_indices(len(pool), seed)
    return pool[a], pool[b]


def half_indices(pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(pool_size)
    half = pool_size // 2
    return order[:half], order[half:2 * half]


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
    pair = matched_indices(pool_labels, labels, seed)
    return None if pair is None else (pool[pair[0]], pool[pair[1]])


def matched_indices(pool_labels: np.ndarray, labels: np.ndarray, seed: int
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    order = np.random.default_rng(seed).permutation(len(pool_labels))
    a, b = [], []
    for c, k in zip(*np.unique(labels, return_counts=True)):
        of_class = order[pool_labels[order] == c]
        if len(of_class) < 2 * k:
            return None
        a += list(of_class[:k])
        b += list(of_class[k:2 * k])
    return np.array(a), np.array(b)


def training_copy(data: ImageData, n: int, labels: np.ndarray | None = None, seed: int = 0
                  ) -> np.ndarray:
    """The floor's side: n training images drawn with replacement, (n, C, H, W); given
    labels, with labels[:n]'s class counts, each class from its own training images."""
    return data.train_images[copy_indices(data.train_labels, n, labels, seed)]


def copy_indices(train_labels: np.ndarray, n: int, labels: np.ndarray | None, seed: int
                 ) -> np.ndarray:
    rng = np.random.default_rng([seed, 17])       # its own stream: not the halves' shuffle
    if labels is None:
        return rng.integers(0, len(train_labels), n)
    picks = []
    for c, k in zip(*np.unique(labels[:n], return_counts=True)):
        of_class = np.flatnonzero(train_labels == c)
        picks.append(of_class[rng.integers(0, len(of_class), k)])
    return np.concatenate(picks)


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
                  cache_dir: str | Path, seed: int = 0, draws: int = 1,
                  log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Fréchet distance, KID, precision, recall (each with its floor), the judge's
    validation accuracy and, given labels, conditional accuracy of `images` (N, C, H, W) in
    [0, 1]: `draws` equal draws back to back (`draw_judged_samples`), their labels the same
    in every draw. See the module docstring for which images each number compares."""
    images = np.asarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise StudioError("the samples contain NaN or infinite pixels; the model has diverged")
    size = len(images) // max(draws, 1)                                  # samples per draw
    if draws < 1 or size * draws != len(images):
        raise ValueError(f"{len(images)} samples are not {draws} equal draws")
    pool, pool_labels = real_pool(data)        # the training split first: pool[i] = train[i]
    n = min(size, len(pool) // 2, MAX_IMAGES)
    if n < MIN_IMAGES:
        raise StudioError(f"judging needs at least {MIN_IMAGES} samples and {MIN_IMAGES} real "
                          f"images in each half of the data; got {size} samples and "
                          f"{len(pool) // 2} real images per half")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise StudioError(f"got {len(labels)} labels for {len(images)} images")
        if draws > 1 and (labels.reshape(draws, size) != labels[:size]).any():
            raise ValueError("each draw must ask for the same classes in the same order")
    judge = get_judge(data, cache_dir, log=log)
    references = [half_indices(len(pool), seed + k)[1] for k in range(FLOOR_SPLITS)]
    copy_labels = None
    if labels is not None and judge.task == "classes":
        m = matched_prefix(data, labels[:n])
        matched = [matched_indices(pool_labels, labels[:m], seed + k) if m >= MIN_IMAGES
                   else None for k in range(FLOOR_SPLITS)]
        if all(pair is not None for pair in matched):   # else n and the random halves stand
            n, copy_labels = m, labels[:m]
            references = [b for _, b in matched]
    # Each split: (the floor's copy of the training split, the reference B), as indices into
    # the pool, n each. Every view is computed once over the pool and indexed per split.
    splits = [(copy_indices(data.train_labels, n, copy_labels, seed + k), b[:n])
              for k, b in enumerate(references)]

    pca = pixel_pca(data)
    views = {"fd": judge.features, "fd_layers": judge.stage_statistics,
             "fd_pixels": lambda x: pca.transform(flat(x))}
    judged = images.reshape(draws, size, *images.shape[1:])[:, :n]    # (draws, n, C, H, W)
    results: dict[str, float] = {"n": n, "draws": draws}
    for name, view in views.items():
        real = view(pool)                                                     # (P, D)
        fake = view(judged.reshape(draws * n, *images.shape[1:])).reshape(draws, n, -1)
        results[name] = float(np.mean([frechet_distance(fake[k % draws], real[b])
                                       for k, (_, b) in enumerate(splits)]))
        results[f"{name}_floor"] = float(np.mean([frechet_distance(real[c], real[b])
                                                  for c, b in splits]))
        if name == "fd":         # the judge's features of the first draw and split, for the rest
            features, copy, real_b = fake[0], real[splits[0][0]], real[splits[0][1]]

    kid_args = {"subset_size": max(2, min(KID_SUBSET_SIZE, n // 2)), "seed": seed}
    kid, kid_std = kernel_inception_distance(features, real_b, **kid_args)
    kid_floor, kid_floor_std = kernel_inception_distance(copy, real_b, **kid_args)
    precision, recall = precision_recall(real_b, features, k=PR_NEIGHBOURS)
    precision_floor, recall_floor = precision_recall(real_b, copy, k=PR_NEIGHBOURS)
    results.update({
        "kid": kid, "kid_std": kid_std, "kid_floor": kid_floor, "kid_floor_std": kid_floor_std,
        "precision": precision, "precision_floor": precision_floor,
        "recall": recall, "recall_floor": recall_floor,
        "judge_val_accuracy": judge.val_accuracy,
    })
    if labels is not None and judge.task == "classes":
        results["conditional_accuracy"] = float(np.mean(judge.predict(images) == labels))
    return results
