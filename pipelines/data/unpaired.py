"""Unpaired images for unpaired image-to-image models (CycleGAN): two domains, A and B, with
no picture of one matched to any of the other.

    unpaired:PATH            PATH/trainA/ and PATH/trainB/ (the CycleGAN data sets' layout);
                             PATH/testA/ and PATH/testB/, when both are there, are the
                             validation pictures, else the data layer's fixed 10% of each
    unpaired:PATH?size=64    read at 64 x 64 (default 32, like folder: and paired:)
    shapes-seasons           bundled: `shapes` scenes in "summer" (A: the shapes' own colours
                             on white or black) and "winter" (B: a cold, desaturated palette
                             on pale blue or night blue, with snowy speckle), drawn from two
                             different seeds: no scene of A is in B (labels: the shape class)

PATH is a folder or a .zip of one, read with folder.py's guards through paired.py's reader
(sizes checked from headers and the zip's directory, entries streamed against the byte
limits); unreadable pictures and files outside the four folders are skipped and counted.

`UnpairedImageData` is an `ImageData` whose images are domain B (what the judge learns from
and what Fréchet distance compares A -> B translations with), with domain A beside them.
Torch-free: numpy and PIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from . import ImageData
from . import folder as F
from ..core.errors import StudioError
from .paired import NATIVE_SIZE, _checked_size, _opened

SHAPES_SEASONS_COUNT = 2500        # scenes per domain
SUMMER_SEED, WINTER_SEED = 11, 12  # two draws of the shapes generator: different scenes
FOLDERS = ("traina", "trainb", "testa", "testb")
UNPAIRED_HELP = ("put domain A's pictures in trainA/ and domain B's in trainB/ (optionally "
                 "testA/ and testB/ for validation): unpaired:PATH")


@dataclass
class UnpairedImageData(ImageData):
    """Two domains as (N, C, H, W) float32 in [0, 1]: B is `train_images`/`val_images` (also
    `train_b`/`val_b`), A is `train_a`/`val_a` with its own labels (the shape class for
    shapes-seasons, else zeros). The domains' sizes, and their channels, may differ."""

    train_a: np.ndarray = field(kw_only=True)
    val_a: np.ndarray = field(kw_only=True)
    train_a_labels: np.ndarray = field(kw_only=True)
    val_a_labels: np.ndarray = field(kw_only=True)
    kind: ClassVar[str] = "unpaired"

    @property
    def train_b(self) -> np.ndarray:
        return self.train_images

    @property
    def val_b(self) -> np.ndarray:
        return self.val_images

    @property
    def a_channels(self) -> int:
        return int(self.train_a.shape[1])

    def domain_a(self) -> ImageData:
        """Domain A as plain image data (named `<name>#A`): what a judge of A learns from."""
        return ImageData(f"{self.name}#A", self.train_a, self.train_a_labels, self.val_a,
                         self.val_a_labels, list(self.class_names))


def load_unpaired(spec: str, image_size: int | None = None) -> UnpairedImageData:
    """`shapes-seasons` or `unpaired:PATH[?size=N]` (see the module doc)."""
    name = spec.strip()
    if name.lower() == "shapes-seasons":
        return shapes_seasons(name, image_size or NATIVE_SIZE)
    path_text, size = parse_unpaired_spec(name.partition(":")[2])
    size = size or image_size or NATIVE_SIZE
    found: dict[str, list[tuple[np.ndarray, bool]]] = {k: [] for k in FOLDERS}
    skipped = 0
    with _opened(path_text) as (entries, root_name, reader):
        for parts, source in entries:
            where = parts[0].lower() if len(parts) > 1 else ""
            if where not in found:
                skipped += 1                  # a loose file or another folder
                continue
            _checked_size(reader, source)
            picture = F._read_picture(reader.read, source, size, reader.name_of(source))
            if picture is None:
                skipped += 1
                continue
            found[where].append(picture)
    for side in ("A", "B"):
        if not found[f"train{side.lower()}"]:
            raise StudioError(f"{root_name} has no readable pictures in train{side}/ "
                              f"({skipped} files skipped); {UNPAIRED_HELP}.")
    stacked = {k: F._stack([p for p, _ in v], all(g for _, g in v)) if v else None
               for k, v in found.items()}
    if stacked["testa"] is not None and stacked["testb"] is not None:
        a = (stacked["traina"], stacked["testa"])
        b = (stacked["trainb"], stacked["testb"])
    else:                                     # the fixed 10% of each domain
        a, b = _split(stacked["traina"]), _split(stacked["trainb"])
    return _unpaired(name, a, b, None, None, [root_name], skipped)


def parse_unpaired_spec(argument: str) -> tuple[str, int | None]:
    """'PATH?size=64' -> (PATH, size or None)."""
    from . import _check_image_size
    path_text, _, query = argument.partition("?")
    size = None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key != "size":
            raise StudioError(f"unpaired: takes the option size (e.g. unpaired:PATH?size=64), "
                              f"not {key!r}")
        if not value.isdecimal():
            raise StudioError(f"size must be a whole number of pixels, not {value!r}")
        size = int(value)
        _check_image_size(size)
    if not path_text.strip():
        raise StudioError(f"The unpaired path is empty; use unpaired:<folder or .zip>: "
                          f"{UNPAIRED_HELP}.")
    return path_text.strip(), size


def _split(pictures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from . import split_indices
    train, val = split_indices(np.zeros(len(pictures), np.int64))
    return pictures[train], pictures[val]


def _unpaired(name, a, b, a_labels, b_labels, class_names, skipped) -> UnpairedImageData:
    """Data from (train, val) pictures of each domain and (train, val) labels (None: zeros)."""
    def labels(pair, given):
        return given if given is not None else tuple(np.zeros(len(p), np.int64) for p in pair)
    la, lb = labels(a, a_labels), labels(b, b_labels)
    c = np.ascontiguousarray
    return UnpairedImageData(
        name=name, train_images=c(b[0]), train_labels=lb[0], val_images=c(b[1]),
        val_labels=lb[1], class_names=list(class_names), skipped_files=skipped,
        train_a=c(a[0]), val_a=c(a[1]), train_a_labels=la[0], val_a_labels=la[1])


# --- the bundled shapes-seasons -------------------------------------------------------------
WINTER_TINT = np.array([0.78, 0.88, 1.0], np.float32)     # luma -> a cold blue-grey
WINTER_LIFT = np.array([0.04, 0.07, 0.16], np.float32)    # black becomes night blue
WINTER_COLOUR = 0.3        # how much of the shape's own colour is left (desaturated)
SPECKLE = 0.02             # a fine grain (standard deviation per pixel; 0.07 hid small shapes)


def shapes_seasons(name: str, image_size: int) -> UnpairedImageData:
    """Summer (A): 2,500 `shapes` scenes as drawn. Winter (B): 2,500 other scenes (another
    seed: other shapes, colours, places), recoloured cold and speckled. Each domain split
    by the data layer's fixed rule, stratified by shape class."""
    from . import split_indices
    from .shapes import make_shapes
    summer, a_labels, class_names, _ = make_shapes(image_size, SHAPES_SEASONS_COUNT,
                                                   SUMMER_SEED)
    scenes, b_labels, _, _ = make_shapes(image_size, SHAPES_SEASONS_COUNT, WINTER_SEED)
    winter = winter_look(scenes, seed=WINTER_SEED)
    ta, va = split_indices(a_labels)
    tb, vb = split_indices(b_labels)
    return _unpaired(name, (summer[ta], summer[va]), (winter[tb], winter[vb]),
                     (a_labels[ta], a_labels[va]), (b_labels[tb], b_labels[vb]),
                     class_names, 0)


def winter_look(pictures: np.ndarray, seed: int) -> np.ndarray:
    """(N, 3, H, W) pictures -> the same scenes in winter: mostly their luma tinted cold
    (white -> pale blue-grey, black -> night blue), a little of their colour, and grey
    speckle drawn from `seed` (one noise field per picture, the same in R, G and B)."""
    luma = (pictures[:, :1] * 0.299 + pictures[:, 1:2] * 0.587 + pictures[:, 2:3] * 0.114)
    cold = luma * WINTER_TINT[:, None, None] + WINTER_LIFT[:, None, None] * (1 - luma)
    mixed = WINTER_COLOUR * pictures + (1 - WINTER_COLOUR) * cold
    noise = np.random.default_rng(seed).standard_normal(
        (len(pictures), 1) + pictures.shape[2:]).astype(np.float32)
    return np.clip(mixed + SPECKLE * noise, 0.0, 1.0).astype(np.float32)
