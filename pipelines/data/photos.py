"""The bundled `photos` set: square crops of the two real photographs scikit-learn ships.

`sklearn.datasets.load_sample_images()` holds china.jpg (a temple among trees) and flower.jpg
(a flower on a blurred background), both 640x427 colour JPEGs inside the package, so the set
needs no download. Training crops come from china.jpg and validation crops from flower.jpg:
the held-out numbers of a super-resolution model are measured on a photograph it never saw,
not on other crops of the same scene.

Each photograph is first halved (320x213, Lanczos), which smooths away JPEG's 8x8 block
artefacts, a pattern a model would otherwise learn to reproduce. The crop positions are drawn
from fixed seeds, so the set is the same on every machine; at the native 32 px there are 2,000
training and 500 validation crops, and fewer at larger sizes (the same number of pixels).

Torch-free (numpy, PIL, scikit-learn).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ..core.errors import StudioError

NATIVE_SIZE = 32
TRAIN_CROPS, VAL_CROPS = 2000, 500     # at 64 px and below; fewer above (same pixel count)
REDUCE = 2                             # each photograph is halved before cropping
TRAIN_PHOTO, VAL_PHOTO = "china.jpg", "flower.jpg"
TRAIN_SEED, VAL_SEED = 0, 1


@functools.lru_cache(maxsize=1)
def _photographs() -> dict[str, Image.Image]:
    """scikit-learn's two sample photographs by file name, halved (RGB); decoded once per
    process (read them, never change them)."""
    from sklearn.datasets import load_sample_images  # lazy: sklearn is slow to import
    bunch = load_sample_images()
    out = {}
    for path, pixels in zip(bunch.filenames, bunch.images):
        image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
        size = (image.width // REDUCE, image.height // REDUCE)
        out[path.replace("\\", "/").rsplit("/", 1)[-1]] = image.resize(
            size, Image.Resampling.LANCZOS)
    return out


def crop_counts(image_size: int) -> tuple[int, int]:
    """(training, validation) crops at this size: the native counts up to 64 px, then the
    same number of pixels (at least 32 and 8 crops)."""
    shrink = min(1.0, (64 / image_size) ** 2)
    return max(32, int(TRAIN_CROPS * shrink)), max(8, int(VAL_CROPS * shrink))


def _crops(image: Image.Image, size: int, count: int, seed: int) -> np.ndarray:
    """`count` size x size crops at seeded positions, as (N, 3, size, size) floats in [0, 1]."""
    pixels = np.asarray(image, dtype=np.float32) / 255.0        # (H, W, 3)
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, height - size + 1, size=count)
    lefts = rng.integers(0, width - size + 1, size=count)
    out = np.stack([pixels[t:t + size, s:s + size] for t, s in zip(tops, lefts)])
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def make_photos(image_size: int = NATIVE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(training crops of china.jpg, validation crops of flower.jpg), each (N, 3, S, S)."""
    photos = _photographs()
    largest = min(min(p.size) for p in photos.values())
    if image_size > largest:
        raise StudioError(f"photos crops are at most {largest} px (the halved photographs are "
                          f"{largest} px high); image size {image_size} is too large")
    n_train, n_val = crop_counts(image_size)
    return (_crops(photos[TRAIN_PHOTO], image_size, n_train, TRAIN_SEED),
            _crops(photos[VAL_PHOTO], image_size, n_val, VAL_SEED))
