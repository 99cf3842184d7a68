"""The bundled `digits-m`: scikit-learn's digits in two domains, for domain adaptation (dann).

    A (source)  the digits, grey on black, repeated to three channels, drawn at 28 px
                (MNIST's size) from scikit-learn's 8x8 with bilinear resampling
    B (target)  the same digits drawn over colour photo texture, MNIST-M's recipe (Ganin et
                al. 2016): a random patch of a photograph, and |patch - digit| in every
                channel, so a stroke is the patch's colour inverted

The patches are crops of scikit-learn's two sample photographs (data/photos.py; each picture
over one of the two, drawn at random), 4x the picture's size, reduced to it, at seeded places.
Both domains keep the digits' labels and the data layer's fixed split;
a domain-adaptation model is given the target's pictures without their labels, and the
target's validation labels only score it. An `UnpairedImageData` (data/unpaired.py): B is the
target. Torch-free.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .images import load_digits
from .photos import TRAIN_PHOTO, VAL_PHOTO, _photographs

SIZE = 28                       # MNIST-M's; at 8 or 16 px DANN gained nothing over
#                                 source-only training (docs/representations.md)
PATCH_SCALE = 4                 # a patch covers 4x the picture's side of the photograph
PATCH_SEEDS = (21, 22)          # training, validation


def digits_m(name: str, image_size: int | None = None):
    from . import split_indices
    from .unpaired import _unpaired
    pictures, labels, class_names = load_digits(image_size or SIZE)          # (N, 1, S, S)
    train, val = split_indices(labels)
    source = np.repeat(pictures, 3, axis=1)                           # (N, 3, S, S)
    size = pictures.shape[-1]
    # Half the pictures over china.jpg, half over flower.jpg, in both splits: the unlabelled
    # target pictures a model adapts to come from the same place as the ones that score it
    # (as MNIST-M draws all its patches from one pool of photographs).
    photos = _photographs()
    which = np.random.default_rng(PATCH_SEEDS[0]).integers(2, size=len(labels))
    patches = np.empty_like(source)
    for k, (photo, seed) in enumerate(((TRAIN_PHOTO, PATCH_SEEDS[0]),
                                       (VAL_PHOTO, PATCH_SEEDS[1]))):
        chosen = np.flatnonzero(which == k)
        patches[chosen] = photo_patches(photos[photo], size, len(chosen), seed)
    target = np.abs(patches - pictures)                               # MNIST-M's blend
    return _unpaired(name, (source[train], source[val]), (target[train], target[val]),
                     (labels[train], labels[val]), (labels[train], labels[val]),
                     class_names, 0)


def photo_patches(photo: Image.Image, size: int, count: int, seed: int) -> np.ndarray:
    """`count` (3, size, size) patches in [0, 1]: PATCH_SCALE x size crops reduced to size."""
    side = size * PATCH_SCALE
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, photo.height - side + 1, size=count)
    lefts = rng.integers(0, photo.width - side + 1, size=count)
    out = np.empty((count, 3, size, size), np.float32)
    for i, (t, s) in enumerate(zip(tops, lefts)):
        crop = photo.crop((int(s), int(t), int(s) + side, int(t) + side))
        out[i] = np.asarray(crop.resize((size, size), Image.Resampling.BOX),
                            np.float32).transpose(2, 0, 1) / 255.0
    return out
