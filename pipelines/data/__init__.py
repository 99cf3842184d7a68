"""Data sets: the bundled digits, shapes and Shakespeare, and a user's image folder or text file
(labelled passages and text pairs: language.py).

`load_data(spec)` is the one entry point. Every data set comes back already split into training
and validation parts by a fixed rule (10% held out; stratified by label; seed 0), which does not
depend on any training seed, so every family and every run is measured on the same held-out data.

Torch-free (numpy, PIL, scikit-learn): the UI imports this to list and preview data sets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..core.errors import StudioError
from . import folder, images, shapes, text

if TYPE_CHECKING:   # imported where used: language.py reads this module's split rule
    from .language import LabelledTextData, TextPairsData

VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0
FOLDER_NATIVE_SIZE = 32
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 1024

BUNDLED_DATASETS = (
    ("digits", "image", "scikit-learn's hand-written digits: 1,797 grey 8x8 images, 10 classes"),
    ("shapes", "image", "5,000 drawn 32x32 colour shapes, 5 classes, each with a caption"),
    ("photos", "image", "32x32 crops of scikit-learn's two sample photographs: 2,000 of "
                        "china.jpg to train on, 500 of flower.jpg to validate on"),
    ("shakespeare", "text", "eight Shakespeare plays (public domain), ~1.1 million characters"),
    ("shapes-edges", "paired", "the 5,000 shapes, each paired with its outline drawing "
                               "(input) for image-to-image models (pix2pix)"),
    ("shapes-seasons", "unpaired", "2,500 shapes scenes in summer colours and 2,500 other "
                                   "scenes in winter (cold, speckled), unpaired (CycleGAN)"),
    ("digits-m", "unpaired", "the digits (source) and the same digits over colour photo "
                             "texture (target, MNIST-M's recipe), for domain adaptation (dann)"),
    ("shakespeare-lines", "labelled-text", "5,964 four-line passages of the eight plays, "
                                           "labelled by play (or speaker), to classify"),
    ("dates", "text-pairs", "24,000 generated dates in 22 written formats -> ISO 1994-03-03, "
                            "four formats held out of training, to translate"),
)
VALID_SPECS = ("digits, shapes, photos, shakespeare, folder:<folder or .zip of images>, "
               "text:<UTF-8 file>, shapes-edges, paired:<folder or .zip with A/ and B/>, "
               "shapes-seasons, unpaired:<folder or .zip with trainA/ and trainB/>, digits-m, "
               "shakespeare-lines, csv:<CSV with text and label columns> (text classifiers), "
               "dates, pairs:<UTF-8 file of source<TAB>target lines>")


@dataclass
class ImageData:
    """Images as (N, C, H, W) float32 in [0, 1] (the layout torch uses), with int64 labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    class_names: list[str]
    train_captions: list[str] | None = None  # shapes, and folders with captions
    val_captions: list[str] | None = None
    # "shapes" where every caption follows the shapes set's grammar (its colour, shape and
    # position words can be checked in the pictures: data/shapes.py); None for free text.
    caption_grammar: str | None = None
    skipped_files: int = 0  # folder data: files skipped as unreadable, not images, or classless
    kind: ClassVar[str] = "image"

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class TextData:
    """A text corpus split into a training part and the last 10% for validation."""

    name: str
    train_text: str
    val_text: str
    kind: ClassVar[str] = "text"


def load_data(spec: str, *, image_size: int | None = None
              ) -> ImageData | TextData | LabelledTextData | TextPairsData:
    """Load a data set by spec: digits | shapes | shakespeare | folder:<path> | text:<path> |
    shakespeare-lines | dates | pairs:<path> | ... (VALID_SPECS). `csv:` is not taken here:
    it is a table for the classic models (data/tabular.py), and labelled text for a text
    classifier only through data/language.py's load_labelled_text (run_setup.load_data_for).

    image_size resizes every image to image_size x image_size (None = the set's native size:
    digits 8, shapes 32, folder 32); it is ignored for text.
    """
    name = spec.strip()
    prefix, _, argument = name.partition(":")
    prefix = prefix.lower()
    if image_size is not None and prefix not in ("shakespeare", "text", "shakespeare-lines",
                                                 "dates", "pairs"):
        _check_image_size(image_size)

    if name.lower() == "digits":
        pictures, labels, class_names = images.load_digits(image_size)
        return _split_images(name, pictures, labels, class_names)
    if name.lower() == "shapes":
        pictures, labels, class_names, captions = shapes.make_shapes(
            image_size or shapes.NATIVE_SIZE)
        return dataclasses.replace(
            _split_images(name, pictures, labels, class_names, captions=captions),
            caption_grammar="shapes")
    if name.lower() == "photos":   # train on one photograph, validate on the other
        from . import photos
        train, val = photos.make_photos(image_size or photos.NATIVE_SIZE)
        return ImageData(name, train, np.zeros(len(train), np.int64), val,
                         np.zeros(len(val), np.int64), ["photo"])
    if name.lower() == "shapes-edges" or (prefix == "paired" and argument):
        from .paired import load_paired   # input -> target pairs (data/paired.py)
        return load_paired(name, image_size)
    if name.lower() == "digits-m":
        from .digits_m import digits_m    # source and target domains (data/digits_m.py)
        return digits_m(name, image_size)
    if name.lower() == "shapes-seasons" or (prefix == "unpaired" and argument):
        from .unpaired import load_unpaired   # two domains, no pairs (data/unpaired.py)
        return load_unpaired(name, image_size)
    if prefix == "folder" and argument:
        pictures, labels, class_names, skipped, captions = folder.load_image_folder(
            argument, image_size or FOLDER_NATIVE_SIZE)
        return _split_images(name, pictures, labels, class_names, captions=captions,
                             skipped_files=skipped)
    if name.lower() == "shakespeare":
        return _split_text(name, text.read_shakespeare())
    if prefix == "text" and argument:
        return _split_text(name, text.read_text_file(argument))
    if name.lower() == "shakespeare-lines":   # passages to classify (data/language.py)
        from .language import load_labelled_text
        return load_labelled_text(name)
    if name.lower() == "dates" or (prefix == "pairs" and argument):   # pairs to translate
        from .language import load_text_pairs
        return load_text_pairs(name)
    raise StudioError(
        f"Unknown data set {spec!r}{_path_hint(name)}; valid specs are {VALID_SPECS}.")


def _check_image_size(image_size: int) -> None:
    if (not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool)
            or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE):
        raise StudioError(f"Image size {image_size!r} is not supported; use a whole number from "
                          f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (or leave it empty for the "
                          "data set's own size).")


def _path_hint(name: str) -> str:
    """A nudge for the common slip of giving a bare path without its folder:/text: prefix."""
    if not name:
        return ""
    path = Path(name).expanduser()
    if path.is_dir() or path.suffix.lower() == ".zip":
        return f" (did you mean folder:{name}?)"
    if path.is_file():
        return f" (did you mean text:{name}?)"
    return ""


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed train/validation split of N labelled items, as sorted index arrays.

    Stratified by label so that each class keeps its share in both parts; unstratified when a
    class is too small for that (fewer than 2 members, or more classes than validation slots).
    """
    from sklearn.model_selection import train_test_split  # lazy: sklearn is slow to import

    count = len(labels)
    if count < 2:
        raise StudioError(f"The data set has {count} image(s); at least 2 are needed so that one "
                          "can be held out for validation.")
    class_sizes = np.bincount(labels)
    class_sizes = class_sizes[class_sizes > 0]
    val_count = math.ceil(VALIDATION_FRACTION * count)  # how sklearn rounds test_size
    can_stratify = (class_sizes.min() >= 2 and val_count >= len(class_sizes)
                    and count - val_count >= len(class_sizes))
    train, val = train_test_split(np.arange(count), test_size=VALIDATION_FRACTION,
                                  stratify=labels if can_stratify else None,
                                  random_state=SPLIT_SEED)
    return np.sort(train), np.sort(val)


def _split_images(name: str, pictures: np.ndarray, labels: np.ndarray, class_names: list[str],
                  *, captions: list[str] | None = None, skipped_files: int = 0) -> ImageData:
    train, val = split_indices(labels)
    return ImageData(
        name=name,
        train_images=np.ascontiguousarray(pictures[train]), train_labels=labels[train],
        val_images=np.ascontiguousarray(pictures[val]), val_labels=labels[val],
        class_names=list(class_names),
        train_captions=[captions[i] for i in train] if captions is not None else None,
        val_captions=[captions[i] for i in val] if captions is not None else None,
        skipped_files=skipped_files,
    )


def _split_text(name: str, corpus: str) -> TextData:
    """Contiguous split: the last 10% of characters is validation (no leakage across the cut)."""
    cut = int(len(corpus) * (1 - VALIDATION_FRACTION))
    return TextData(name=name, train_text=corpus[:cut], val_text=corpus[cut:])
