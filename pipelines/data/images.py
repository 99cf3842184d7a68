"""Pictures as arrays: the bundled digits, resizing, and any PIL image normalised to a square."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
from PIL import Image

from ..core import limits
from ..core.errors import StudioError

# Modes that hold one grey channel; everything else becomes RGB.
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
GRAY_MODES = frozenset({"1", "L", "LA", "La"}) | HIGH_DEPTH_MODES
PIL_DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)   # PIL.Image's own value


def pixel_limit() -> int:
    """The most pixels a picture may have: limits.MAX_IMAGE_PIXELS, or PIL's own bomb limit
    when that is lower."""
    return min(limits.MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS or PIL_DEFAULT_MAX_PIXELS)


def _too_many_pixels(name: str, what: str) -> StudioError:
    return StudioError(f"{name} is {what}; pictures may have at most "
                       f"{pixel_limit() / 1e6:.0f} million: shrink it (the studio trains at "
                       f"1024x1024 at most) or leave it out")


def check_image_pixels(image: Image.Image, name: str) -> None:
    """Refuse a picture with more than pixel_limit() pixels, from its header alone (before a
    single pixel is decoded): a PNG of 13000x13000 is a few KB on disk and 14 s of CPU to
    decode."""
    width, height = image.size
    if width * height > pixel_limit():
        raise _too_many_pixels(name, f"{width}x{height} pixels "
                                     f"({width * height / 1e6:.0f} million)")


@contextmanager
def bomb_guard(name: str):
    """Around opening a picture and `check_image_pixels`: PIL's decompression-bomb check on
    (back at PIL's own default if a library switched it off). Its warning, which Image.open
    gives before the size can be checked, is left to check_image_pixels (same limit, and a
    message with the picture's size); its error (twice the limit) becomes the same refusal."""
    if Image.MAX_IMAGE_PIXELS is None:
        Image.MAX_IMAGE_PIXELS = PIL_DEFAULT_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError:
        raise _too_many_pixels(name, f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} million "
                                     f"pixels") from None


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
