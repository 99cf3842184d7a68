"""The bundled `shapes` set: procedurally drawn coloured shapes with labels and captions.

Every attribute (shape, colour, size, position, background) is drawn from a fixed-seed generator
before any pixel is drawn, so the set is identical on every machine and at every image size, and
each image's caption states exactly what is in it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SHAPE_NAMES = ("circle", "square", "triangle", "cross", "diamond")
PALETTE = (("red", (220, 40, 40)), ("green", (40, 170, 60)), ("blue", (40, 80, 220)),
           ("yellow", (235, 200, 30)), ("purple", (140, 60, 190)), ("orange", (245, 130, 30)))
# Half-width of the shape as a fraction of the image side; a large one still fits its 1/3 cell.
SIZES = (("small", 0.09), ("large", 0.15))
ROWS = ("top", "center", "bottom")
COLUMNS = ("left", "center", "right")
BACKGROUNDS = (("white", (255, 255, 255)), ("black", (0, 0, 0)))

NATIVE_SIZE = 32
DEFAULT_COUNT = 5000
MAX_CANVAS = 256  # the supersampled canvas is at most this wide, to keep big sizes quick


def position_name(row: int, column: int) -> str:
    """'top left', 'top center', ..., 'center', ..., 'bottom right'."""
    if row == 1 and column == 1:
        return "center"
    return f"{ROWS[row]} {COLUMNS[column]}"


def make_shapes(image_size: int = NATIVE_SIZE, count: int = DEFAULT_COUNT, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """count images as (N, 3, H, W) floats in [0, 1], labels, class names, captions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.int64) % len(SHAPE_NAMES)  # balanced classes
    colours = rng.integers(len(PALETTE), size=count)
    sizes = rng.integers(len(SIZES), size=count)
    rows = rng.integers(3, size=count)
    columns = rng.integers(3, size=count)
    backgrounds = rng.integers(len(BACKGROUNDS), size=count)
    # A little jitter inside the cell so that positions are not pixel-identical.
    jitter = rng.uniform(-0.02, 0.02, size=(count, 2))

    # Anti-aliasing by supersampling: draw each shape's mask at up to 4x and average every
    # scale x scale block (Image.reduce), which gives each pixel the fraction of it the shape
    # covers. (A Lanczos filter looks the same at this size but is ~10x slower in PIL.)
    scale = max(1, min(4, MAX_CANVAS // image_size))
    canvas_side = image_size * scale
    coverage = np.empty((count, image_size, image_size), dtype=np.float32)
    for i in range(count):
        mask = Image.new("L", (canvas_side, canvas_side), 0)
        centre_x = ((columns[i] + 0.5) / 3 + jitter[i, 0]) * canvas_side
        centre_y = ((rows[i] + 0.5) / 3 + jitter[i, 1]) * canvas_side
        radius = SIZES[sizes[i]][1] * canvas_side
        _draw_shape(ImageDraw.Draw(mask), SHAPE_NAMES[labels[i]], centre_x, centre_y, radius)
        coverage[i] = np.asarray(mask.reduce(scale) if scale > 1 else mask)
    coverage /= 255.0

    # Colour in one step: each pixel mixes background and shape colour by its coverage.
    shape_rgb = np.array([rgb for _, rgb in PALETTE], dtype=np.float32)[colours] / 255.0
    background_rgb = np.array([rgb for _, rgb in BACKGROUNDS], np.float32)[backgrounds] / 255.0
    floats = (background_rgb[:, :, None, None]
              + (shape_rgb - background_rgb)[:, :, None, None] * coverage[:, None])
    captions = [f"a {SIZES[sizes[i]][0]} {PALETTE[colours[i]][0]} {SHAPE_NAMES[labels[i]]}"
                f" at the {position_name(rows[i], columns[i])}"
                f" on a {BACKGROUNDS[backgrounds[i]][0]} background" for i in range(count)]
    return floats, labels, list(SHAPE_NAMES), captions


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float) -> None:
    """One filled shape (value 255 on a 0 mask) centred at (x, y) with half-width r."""
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    elif shape == "square":
        side = 0.85 * r  # a bit smaller, so its area is close to the circle's
        draw.rectangle((x - side, y - side, x + side, y + side), fill=255)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + 0.8 * r), (x - r, y + 0.8 * r)], fill=255)
    elif shape == "cross":
        arm = 0.35 * r  # half the thickness of each bar
        draw.rectangle((x - r, y - arm, x + r, y + arm), fill=255)
        draw.rectangle((x - arm, y - r, x + arm, y + r), fill=255)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
