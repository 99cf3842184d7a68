"""Image grids and files, with PIL and numpy only (the UI may use this without torch)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from .runs import atomic_write_bytes


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


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_grid(images: np.ndarray, path: str | os.PathLike, labels: np.ndarray | None = None,
              nrow: int | None = None) -> None:
    """Save a sample grid as PNG, atomically. When the labels cycle through the classes (as
    the periodic grids do), each row holds whole cycles, so every column is one class."""
    if nrow is None and labels is not None and len(labels):
        classes = int(np.max(labels)) + 1
        if len(labels) >= classes and 2 <= classes <= 16:
            nrow = classes * max(1, round(np.sqrt(len(labels)) / classes))
    atomic_write_bytes(path, png_bytes(grid_image(images, nrow=nrow)))
