"""Pictures as arrays: the bundled digits, resizing, and any PIL image normalised to a square."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Modes that hold one grey channel; everything else becomes RGB.
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
GRAY_MODES = frozenset({"1", "L", "LA", "La"}) | HIGH_DEPTH_MODES


def load_digits(image_size: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 8x8 digits as (N, 1, H, W) floats in [0, 1], labels, class names."""
    from sklearn.datasets import load_digits as sklearn_digits  # lazy: sklearn is slow to import

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    if image_size is not None and image_size != images.shape[-1]:
        images = resize_floats(images, image_size, Image.Resampling.BILINEAR)
    return images, digits.target.astype(np.int64), [str(d) for d in range(10)]


def resize_floats(images: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Resize (N, C, H, W) float images to size x size, channel by channel, kept in [0, 1]."""
    out = np.empty(images.shape[:2] + (size, size), dtype=np.float32)
    for n, image in enumerate(images):
        for c, channel in enumerate(image):
            plane = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32))  # mode "F"
            out[n, c] = np.asarray(plane.resize((size, size), resample))
    # Filters with negative lobes (Lanczos, bicubic) can overshoot the range slightly.
    return np.clip(out, 0.0, 1.0, out=out)


def normalise_image(image: Image.Image, size: int) -> tuple[np.ndarray, bool]:
    """Any PIL image as a centre-cropped size x size uint8 array, and whether it is grayscale.

    The array is (H, W) for grayscale and (H, W, 3) for colour. Transparency is composited
    on white, so a transparent background reads as paper rather than as black.
    """
    flat = _to_gray_or_rgb(image)
    side = min(flat.size)
    left, top = (flat.width - side) // 2, (flat.height - side) // 2
    square = flat.resize((size, size), Image.Resampling.LANCZOS,
                         box=(left, top, left + side, top + side))
    return np.asarray(square), square.mode == "L"


def _to_gray_or_rgb(image: Image.Image) -> Image.Image:
    """Reduce any mode to "L" (grey) or "RGB"."""
    if image.mode in HIGH_DEPTH_MODES:
        return _high_depth_to_gray(image)
    gray = image.mode in GRAY_MODES or (image.mode == "P" and _palette_is_gray(image))
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat.convert("L") if gray else flat
    return image.convert("L" if gray else "RGB")


def _high_depth_to_gray(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey images to 8-bit "L", scaled by their nominal range.

    Pillow's own conversion clips 16-bit values at 255 instead of scaling them, which would turn
    most of a 16-bit scan white.
    """
    values = np.asarray(image).astype(np.float64)
    peak = float(values.max(initial=0.0))
    if image.mode.startswith("I;16") or peak > 255:
        full_scale = 65535.0
    elif image.mode == "F" and peak <= 1.0:
        full_scale = 1.0
    else:
        full_scale = 255.0
    scaled = np.clip(values / full_scale, 0.0, 1.0) * 255.0
    return Image.fromarray(np.round(scaled).astype(np.uint8))


def _palette_is_gray(image: Image.Image) -> bool:
    """Whether a palette ("P") image only uses grey colours (common for GIFs of scans)."""
    palette = image.getpalette("RGB") or []
    colours = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    indices = np.unique(np.asarray(image))
    used = colours[indices[indices < len(colours)]]
    return len(used) > 0 and bool(np.all(used == used[:, :1]))
