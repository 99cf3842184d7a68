"""Image grids and files, with PIL and numpy only (the UI may use this without torch)."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image

from ..core.atomic_files import atomic_write_bytes
from ..core.errors import StudioError
from ..core.png_settings import png_bytes


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    arr = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    return (arr.transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)


def grid_image(images: np.ndarray, nrow: int | None = None, min_cell: int = 32,
               pad: int = 2) -> Image.Image:
    """Tile (N, C, H, W) images in [0, 1] into one picture, nrow per row. Small images (8x8
    digits) are scaled up with nearest-neighbour to at least `min_cell` pixels so that a person
    can see them without zooming."""
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    scale = max(1, int(np.ceil(min_cell / max(h, w))))
    cell_h, cell_w = h * scale, w * scale
    rows = int(np.ceil(n / nrow))
    canvas = np.full((rows * (cell_h + pad) + pad, nrow * (cell_w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        tile = pixels[i].repeat(scale, axis=0).repeat(scale, axis=1)
        y, x = pad + r * (cell_h + pad), pad + col * (cell_w + pad)
        canvas[y:y + cell_h, x:x + cell_w] = tile
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_grid(images: np.ndarray, path: str | os.PathLike, labels: np.ndarray | None = None,
              nrow: int | None = None, settings: dict[str, Any] | None = None) -> None:
    """Save a sample grid as PNG, atomically, with the generation `settings` that made it in
    the file (pipelines/core/png_settings.py). When the labels cycle through the classes (as
    the periodic grids do), each row holds whole cycles, so every column is one class."""
    if nrow is None and labels is not None and len(labels):
        classes = int(np.max(labels)) + 1
        if len(labels) >= classes and 2 <= classes <= 16:
            nrow = classes * max(1, round(np.sqrt(len(labels)) / classes))
    atomic_write_bytes(path, png_bytes(grid_image(images, nrow=nrow), settings))


def save_gif(frames: np.ndarray, path: str | os.PathLike, seconds_per_frame: float = 0.12,
             min_cell: int = 64, bounce: bool = True) -> None:
    """Save (N, C, H, W) frames in [0, 1] as a looping animated GIF, atomically. With
    `bounce` the animation plays forward then back, so the loop has no jump."""
    pictures = [grid_image(frame[None], nrow=1, min_cell=min_cell, pad=0) for frame in frames]
    if bounce and len(pictures) > 2:
        pictures = pictures + pictures[-2:0:-1]
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=int(seconds_per_frame * 1000), loop=0)
    atomic_write_bytes(path, buf.getvalue())


def read_images(paths: list[str | os.PathLike], channels: int, size: int) -> np.ndarray:
    """Image files as one (N, channels, size, size) float array in [0, 1], the way a model
    trained on `channels` channels at `size` pixels expects them (centre-cropped, resized,
    grey or colour converted). Unreadable files raise StudioError naming the file."""
    from ..data.images import bomb_guard, check_image_pixels, normalise_image
    from ..core.errors import StudioError
    out = []
    for path in paths:
        try:
            with bomb_guard(str(path)), Image.open(path) as image:
                check_image_pixels(image, str(path))   # from the header, before decoding
                pixels, _ = normalise_image(image, size)
        except (OSError, ValueError) as e:
            raise StudioError(f"cannot read image {path}: {e}") from None
        pixels = pixels.astype(np.float32) / 255.0
        if pixels.ndim == 2:                                  # grey: (H, W) -> (1, H, W)
            pixels = pixels[None]
        else:                                                 # colour: (H, W, 3) -> (3, H, W)
            pixels = pixels.transpose(2, 0, 1)
        if channels == 1 and pixels.shape[0] == 3:
            pixels = (0.299 * pixels[0] + 0.587 * pixels[1] + 0.114 * pixels[2])[None]  # ITU-R 601
        elif channels == 3 and pixels.shape[0] == 1:
            pixels = np.repeat(pixels, 3, axis=0)
        out.append(pixels)
    return np.stack(out).astype(np.float32)


def check_input_files(paths, channels: int, size: int, model: str, note: str) -> None:
    """Refuse, in one line, input files a model cannot translate faithfully: a grey picture
    for a model that reads colour (there is no colour in it to read) and a picture smaller
    than the model's size (upscaling invents the detail it reads). Colour to a grey model
    (luma) and larger pictures (centre-cropped, reduced) are read as `read_images` reads
    them. `note` ends the grey message, e.g. "(it was trained on 3-channel inputs)"."""
    from ..data.images import GRAY_MODES, _palette_is_gray
    for path in paths:
        try:
            with Image.open(path) as image:
                grey = image.mode in GRAY_MODES or (image.mode == "P"
                                                    and _palette_is_gray(image))
                width, height = image.size
        except (OSError, ValueError):
            continue                     # unreadable: read_images has said so already
        if grey and channels == 3:
            raise StudioError(f"{path} is a grey picture; {model} translates colour "
                              f"pictures {note}")
        if min(width, height) < size:
            raise StudioError(f"{path} is {width}x{height} pixels; {model} translates "
                              f"pictures of at least {size}x{size} (its training size)")
