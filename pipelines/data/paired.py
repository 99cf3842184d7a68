"""Paired images for image-to-image models (pix2pix): each example is an input and the target
it should become.

    paired:PATH                     PATH/A/x.png (input) beside PATH/B/x.png (its target)
    paired:PATH?layout=side_by_side every picture under PATH holds the two side by side, A|B
    paired:PATH?size=64             read at 64 x 64 (default 32, like folder:)
    shapes-edges                    bundled: the outline drawing of each `shapes` picture ->
                                    the picture itself (its shape class is the label)

PATH is a folder or a .zip of one, read with folder.py's guards (sizes checked from headers
and the zip's directory, entries streamed against the byte limits). Partners are matched by
their path under A/ and B/ without the suffix (A/x.png pairs with B/x.jpg); a file without a
partner, a loose file, and a pair with an unreadable side are skipped and counted
(`skipped_files`). Every picture is centre-cropped square and resized to one size; inputs
and targets may differ in channels (grey drawings, colour photos). The options ride in the
spec itself (`?layout=...&size=...`) because a spec is the whole name of a data set: the
run's run.json, `studio eval` and the sampling worker reload it from that string alone.

`PairedImageData` is an `ImageData` whose images are the targets (what the judge learns from
and what Fréchet distance compares outputs with; `studio eval` reads it like any image set),
with the inputs beside them. Torch-free: numpy and PIL.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, ClassVar

import numpy as np
from PIL import Image

from . import ImageData
from . import folder as F
from ..core import limits
from ..core.errors import StudioError
from .images import bomb_guard, check_image_pixels, normalise_image

LAYOUTS = ("folders", "side_by_side")
NATIVE_SIZE = 32
PAIRED_HELP = ("put each input in A/ and its target, under the same file name, in B/ "
               "(paired:PATH), or each pair side by side in one picture, input on the left "
               "(paired:PATH?layout=side_by_side)")


@dataclass
class PairedImageData(ImageData):
    """Pairs as (N, C, H, W) float32 in [0, 1]: the targets are `train_images`/`val_images`
    (also named `train_targets`/`val_targets`), the inputs `train_inputs`/`val_inputs`, in the
    same order; labels int64 (the shape class for shapes-edges, else zeros)."""

    train_inputs: np.ndarray = field(kw_only=True)
    val_inputs: np.ndarray = field(kw_only=True)
    kind: ClassVar[str] = "paired"

    @property
    def train_targets(self) -> np.ndarray:
        return self.train_images

    @property
    def val_targets(self) -> np.ndarray:
        return self.val_images

    @property
    def input_channels(self) -> int:
        return int(self.train_inputs.shape[1])

    @property
    def target_channels(self) -> int:
        return self.channels


def load_paired(spec: str, image_size: int | None = None) -> PairedImageData:
    """`shapes-edges` or `paired:PATH[?layout=side_by_side&size=N]` (see the module doc)."""
    name = spec.strip()
    if name.lower() == "shapes-edges":
        return shapes_edges(name, image_size or NATIVE_SIZE)
    path_text, layout, size = parse_paired_spec(name.partition(":")[2])
    size = size or image_size or NATIVE_SIZE
    with _opened(path_text) as (entries, root_name, reader):
        read_pairs = _side_by_side if layout == "side_by_side" else _a_b_folders
        inputs, targets, skipped = read_pairs(entries, root_name, size, reader)
    labels = np.zeros(len(inputs), dtype=np.int64)
    return _split_pairs(name, inputs, targets, labels, [root_name], skipped)


def parse_paired_spec(argument: str) -> tuple[str, str, int | None]:
    """'PATH?layout=side_by_side&size=64' -> (PATH, layout, size or None)."""
    path_text, _, query = argument.partition("?")
    layout, size = "folders", None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "layout":
            layout = value.lower().replace("-", "_")
            if layout not in LAYOUTS:
                raise StudioError(f"layout must be {' or '.join(LAYOUTS)}, not {value!r}")
        elif key == "size":
            from . import _check_image_size
            if not value.isdecimal():
                raise StudioError(f"size must be a whole number of pixels, not {value!r}")
            size = int(value)
            _check_image_size(size)
        else:
            raise StudioError(f"paired: takes the options layout and size (e.g. paired:PATH?"
                              f"layout=side_by_side&size=64), not {key!r}")
    if not path_text.strip():
        raise StudioError(f"The paired path is empty; use paired:<folder or .zip>: {PAIRED_HELP}.")
    return path_text.strip(), layout, size


# --- reading a folder or a zip, with folder.py's guards ------------------------------------
@dataclass
class _Reader:
    read: Callable[[Any], bytes]
    size_of: Callable[[Any], int]     # bytes, from the file system or the zip's directory
    name_of: Callable[[Any], str]     # a name for messages


@contextmanager
def _opened(path_text: str):
    """(entries, root name, reader) of a folder or a .zip, as folder.load_image_folder reads
    them: visible files only, counted, a zip's declared and streamed sizes bounded."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise StudioError(f"The folder {path} does not exist; check the path ({PAIRED_HELP}).")
    if path.is_dir():
        entries = F._folder_entries(path)
        F._check_count(len(entries), path.name, "files")
        yield entries, path.name, _Reader(F._read_file, F._file_size,
                                          lambda file: f"{path.name}/{file.relative_to(path)}")
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise StudioError(f"{path} is neither a folder nor a readable .zip file ({error}); "
                          f"{PAIRED_HELP}.") from None
    with archive:
        entries, root_name = F._zip_entries(archive, default_root=path.stem)
        F._check_count(len(entries), path.name, "entries")
        declared = sum(info.file_size for _, info in entries
                       if info.file_size <= limits.MAX_IMAGE_FILE_BYTES)
        if declared > limits.MAX_UNZIPPED_BYTES:
            raise StudioError(F._too_much(path.name, declared))
        yield entries, root_name, _Reader(F._ZipBudget(archive, path.name).read,
                                          lambda info: info.file_size,
                                          lambda info: f"{path.name}: {info.filename}")


def _checked_size(reader: _Reader, source) -> None:
    if reader.size_of(source) > limits.MAX_IMAGE_FILE_BYTES:
        raise StudioError(F._too_big(reader.name_of(source), reader.size_of(source)))


def _a_b_folders(entries, root_name: str, size: int, reader: _Reader):
    """Inputs from A/, targets from B/, partners matched by path without suffix."""
    sides: dict[str, dict[tuple[str, ...], object]] = {"A": {}, "B": {}}
    skipped = 0
    for parts, source in entries:
        side = parts[0].upper() if len(parts) > 1 else ""
        key = parts[1:-1] + (PurePosixPath(parts[-1]).stem,)
        if side not in sides or key in sides[side]:
            skipped += 1          # a loose file, another folder, or a second x.* of one name
            continue
        sides[side][key] = source
    if not sides["A"]:
        raise StudioError(f"{root_name} has no input images in A/ (found "
                          f"{len(sides['B'])} in B/); {PAIRED_HELP}.")
    keys = sorted(set(sides["A"]) & set(sides["B"]))
    skipped += len(sides["A"]) + len(sides["B"]) - 2 * len(keys)
    if not keys:
        raise StudioError(f"{root_name}: none of the {len(sides['A'])} images in A/ has a "
                          f"partner of the same name in B/; {PAIRED_HELP}.")
    inputs, targets = [], []
    for key in keys:
        a, b = sides["A"][key], sides["B"][key]
        _checked_size(reader, a)
        _checked_size(reader, b)
        pair = (F._read_picture(reader.read, a, size, reader.name_of(a)),
                F._read_picture(reader.read, b, size, reader.name_of(b)))
        if None in pair:
            skipped += 2          # the pair is unusable: both its files are left out
            continue
        inputs.append(pair[0])
        targets.append(pair[1])
    return _stacked(inputs, targets, root_name, skipped)


def _side_by_side(entries, root_name: str, size: int, reader: _Reader):
    """Every picture is input | target, split down the middle."""
    inputs, targets, skipped = [], [], 0
    for _, source in entries:
        _checked_size(reader, source)
        halves = _read_halves(reader, source, size)
        if halves is None:
            skipped += 1
            continue
        inputs.append(halves[0])
        targets.append(halves[1])
    return _stacked(inputs, targets, root_name, skipped)


def _read_halves(reader: _Reader, source, size: int):
    """((left array, grey), (right array, grey)) of one A|B picture, or None when the file is
    not a readable picture at least 2 pixels wide."""
    name = reader.name_of(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with bomb_guard(name), Image.open(io.BytesIO(reader.read(source))) as image:
                check_image_pixels(image, name)
                image.load()
                width, height = image.size
                if width < 2:
                    return None
                half = width // 2
                return (normalise_image(image.crop((0, 0, half, height)), size),
                        normalise_image(image.crop((width - half, 0, width, height)), size))
        except StudioError:
            raise
        except Exception:  # noqa: BLE001 - any decoder failure means "not a readable image"
            return None


def _stacked(inputs, targets, root_name: str, skipped: int):
    if not inputs:
        raise StudioError(f"Found no readable image pairs in {root_name} ({skipped} files "
                          f"skipped as unreadable or unpaired); {PAIRED_HELP}.")
    return (F._stack([p for p, _ in inputs], all(g for _, g in inputs)),
            F._stack([p for p, _ in targets], all(g for _, g in targets)), skipped)


def _split_pairs(name: str, inputs: np.ndarray, targets: np.ndarray, labels: np.ndarray,
                 class_names: list[str], skipped: int) -> PairedImageData:
    """The data layer's fixed 10% validation split (split_indices), pairs kept together."""
    from . import split_indices
    train, val = split_indices(labels)
    return PairedImageData(
        name=name, train_images=np.ascontiguousarray(targets[train]),
        train_labels=labels[train], val_images=np.ascontiguousarray(targets[val]),
        val_labels=labels[val], class_names=list(class_names), skipped_files=skipped,
        train_inputs=np.ascontiguousarray(inputs[train]),
        val_inputs=np.ascontiguousarray(inputs[val]))


# --- the bundled shapes-edges ---------------------------------------------------------------
def shapes_edges(name: str, image_size: int) -> PairedImageData:
    """The `shapes` set (the same 5,000 pictures, labels and split) as targets, each one's
    outline drawing as its input: the shape's edge in ink on paper of the picture's own
    background (dark lines on white, light lines on black). The colour is not in the drawing:
    a model must guess it (the multimodal part of the task, as with edges -> shoes)."""
    from .shapes import make_shapes
    targets, labels, class_names, _ = make_shapes(image_size)
    return _split_pairs(name, outline_drawings(targets), targets, labels, class_names, 0)


def outline_drawings(pictures: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) pictures of one shape on a plain background -> (N, 1, H, W) drawings of
    the shape's outline. The shape's coverage of each pixel is read back from the picture (its
    distance from the background, over the largest), and the outline is the coverage less its
    3 x 3 erosion: the band of about two pixels just inside the shape's edge."""
    border = np.concatenate([pictures[:, :, 0], pictures[:, :, -1], pictures[:, :, :, 0],
                             pictures[:, :, :, -1]], axis=2)                   # (N, 3, 4W)
    background = np.median(border, axis=2).astype(np.float32)                  # (N, 3)
    distance = np.abs(pictures - background[:, :, None, None]).max(axis=1)     # (N, H, W)
    coverage = distance / np.maximum(distance.max(axis=(1, 2), keepdims=True), 1e-6)
    padded = np.pad(coverage, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = np.minimum(np.minimum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    eroded = np.minimum(np.minimum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])
    line = np.clip(coverage - eroded, 0.0, 1.0)
    paper = np.round(background.mean(axis=1))[:, None, None]                   # 1 white, 0 black
    return (paper + (1 - 2 * paper) * line)[:, None].astype(np.float32)
