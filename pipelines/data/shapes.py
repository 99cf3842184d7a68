"""The bundled `shapes` set: procedurally drawn coloured shapes with labels and captions.

Every attribute (shape, colour, size, position, background) is drawn from a fixed-seed generator
before any pixel is drawn, so the set is identical on every machine and at every image size, and
each image's caption states exactly what is in it. The caption grammar is read back here too:
the (colour, shape) pairs a text-to-image model holds out, the colour, shape and position a
caption or prompt names, prompts drawn from a seed, and readers of a drawn picture's colour
and position (what judges a text-to-image model trained on this set).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..core.errors import StudioError

SHAPE_NAMES = ("circle", "square", "triangle", "cross", "diamond")
PALETTE = (("red", (220, 40, 40)), ("green", (40, 170, 60)), ("blue", (40, 80, 220)),
           ("yellow", (235, 200, 30)), ("purple", (140, 60, 190)), ("orange", (245, 130, 30)))
# Half-width of the shape as a fraction of the image side; a large one still fits its 1/3 cell.
SIZES = (("small", 0.09), ("large", 0.15))
ROWS = ("top", "center", "bottom")
COLUMNS = ("left", "center", "right")
BACKGROUNDS = (("white", (255, 255, 255)), ("black", (0, 0, 0)))
COLOUR_NAMES = tuple(name for name, _ in PALETTE)

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


# --- the caption grammar, read back -------------------------------------------------------
def parse_pairs(text: str) -> list[tuple[int, int]]:
    """'red triangle, blue cross' -> [(colour index, shape index), ...]."""
    pairs = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        words = item.split()
        if len(words) != 2 or words[0] not in COLOUR_NAMES or words[1] not in SHAPE_NAMES:
            raise StudioError(f"held_out must list 'colour shape' pairs separated by commas "
                              f"(colours: {', '.join(COLOUR_NAMES)}; shapes: "
                              f"{', '.join(SHAPE_NAMES)}), not {item!r}")
        pairs.append((COLOUR_NAMES.index(words[0]), SHAPE_NAMES.index(words[1])))
    return pairs


def caption_attributes(caption: str) -> tuple[int, int]:
    """(colour index, shape index) named in a caption or prompt; -1 where none is."""
    words = caption.lower().split()
    colour = next((COLOUR_NAMES.index(w) for w in words if w in COLOUR_NAMES), -1)
    shape = next((SHAPE_NAMES.index(w) for w in words if w in SHAPE_NAMES), -1)
    return colour, shape


def caption_position(caption: str) -> int:
    """The position a caption or prompt names, as row * 3 + column (0: top left, 4: center,
    8: bottom right); -1 where it names none."""
    words = caption.lower().split(" on ")[0].split(" at the ")[-1].split()
    if len(words) == 1 and words[0] == "center":
        return 4
    if len(words) == 2 and words[0] in ROWS and words[1] in COLUMNS:
        return ROWS.index(words[0]) * 3 + COLUMNS.index(words[1])
    return -1


def seeded_prompt(seed: int, colour: int | None = None, shape: int | None = None) -> str:
    """A caption in the data's own grammar, all from `seed`: the shape cycles with the seed and
    the colour with seed // 5, so consecutive seeds show every combination; size, position and
    background are drawn from the seed."""
    rng = np.random.default_rng(seed)
    colour = (seed // len(SHAPE_NAMES)) % len(PALETTE) if colour is None else colour
    shape = seed % len(SHAPE_NAMES) if shape is None else shape
    size, row, column, background = (rng.integers(len(SIZES)), rng.integers(len(ROWS)),
                                     rng.integers(len(COLUMNS)), rng.integers(len(BACKGROUNDS)))
    return (f"a {SIZES[size][0]} {PALETTE[colour][0]} {SHAPE_NAMES[shape]} at the "
            f"{position_name(row, column)} on a {BACKGROUNDS[background][0]} background")


def _shape_pixels(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels far from the image's background (the median of its border)."""
    border = np.concatenate([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], axis=1)
    background = np.median(border, axis=1)                                       # (3,)
    return np.abs(image - background[:, None, None]).max(0) > 0.35


def measure_positions(images: np.ndarray) -> np.ndarray:
    """Where each image's shape is (N,), as row * 3 + column of the 3 x 3 grid its centre of
    mass falls in; -1 where no shape is found. images: (N, 3, H, W) in [0, 1]."""
    out = np.full(len(images), -1, dtype=np.int64)
    for i, image in enumerate(np.asarray(images, np.float32)):
        rows, columns = np.nonzero(_shape_pixels(image))
        if len(rows) >= 3:
            side = image.shape[-1]
            out[i] = min(2, int(rows.mean() * 3 / side)) * 3 + min(2, int(columns.mean() * 3 / side))
    return out


def measure_colours(images: np.ndarray) -> np.ndarray:
    """The palette colour of each image's shape (N,), -1 where no shape is found.
    images: (N, 3, H, W) in [0, 1]. The background is the median of the border pixels; the
    shape is every pixel far from it; its median colour is matched to the nearest palette one."""
    palette = np.array([rgb for _, rgb in PALETTE], np.float32) / 255.0          # (6, 3)
    out = np.full(len(images), -1, dtype=np.int64)
    for i, image in enumerate(np.asarray(images, np.float32)):
        far = _shape_pixels(image)                                               # (H, W)
        if far.sum() >= 3:
            colour = np.median(image[:, far], axis=1)                            # (3,)
            out[i] = int(np.argmin(((palette - colour) ** 2).sum(1)))
    return out


def prompt_accuracies(images: np.ndarray, prompts: list[str]) -> dict[str, float]:
    """How often each image drawn for a prompt in this grammar has the colour and the place
    the prompt names, read from its pixels: {"colour_accuracy", "position_accuracy"}.
    images: (N, 3, H, W) in [0, 1]. (The shape is read by the judge, metrics/judge.py.)"""
    colours = np.array([caption_attributes(p)[0] for p in prompts])
    positions = np.array([caption_position(p) for p in prompts])
    return {"colour_accuracy": float(np.mean(measure_colours(images) == colours)),
            "position_accuracy": float(np.mean(measure_positions(images) == positions))}
