"""A user's own images: a folder (subfolders = classes) or a .zip of one, read in place, with
their captions where the set has them (for text-to-image): a caption file beside each image
(`cat1.png` + `cat1.txt`, as kohya's and many diffusers examples keep them), or a
`metadata.jsonl` or `metadata.csv` in the folder (Hugging Face's imagefolder layout: one JSON
object a line, or a CSV row, with the image's `file_name` and its `text`, or `caption`). A set with captions must caption every
image.

Sizes are checked before anything is decoded or read whole (pipelines/core/limits.py): a picture's
pixels from its header, a file's or zip entry's bytes from the file system or the zip's
directory, and zip entries are streamed with a running count, so neither a decompression bomb
nor a zip that lies about its sizes costs more than the limits. A picture over a limit is
refused by name; a file over the byte limit that is not named like a picture is skipped unread.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..core import limits
from ..core.errors import StudioError
from .images import bomb_guard, check_image_pixels, normalise_image

EXPECTED_LAYOUT = ("expected one subfolder of images per class (e.g. cats/*.jpg, dogs/*.jpg), "
                   "or images directly in the folder for a single class")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
CHUNK = 1 << 20


def load_image_folder(path_text: str, image_size: int
                      ) -> tuple[np.ndarray, np.ndarray, list[str], int, list[str] | None]:
    """Images from a folder or a .zip as (N, C, H, W) floats, labels, class names, skipped
    count, and one caption per image (None when the set has no captions)."""
    if not path_text.strip():
        raise StudioError("The folder path is empty; use folder:<path to a folder or .zip>.")
    path = Path(path_text.strip()).expanduser()
    if not path.exists():
        raise StudioError(f"The folder {path} does not exist; check the path ({EXPECTED_LAYOUT}).")
    if path.is_dir():
        entries = _folder_entries(path)
        _check_count(len(entries), path.name, "files")
        return _load_entries(entries, path.name, image_size, read=_read_file,
                             size_of=_file_size,
                             name_of=lambda file: f"{path.name}/{file.relative_to(path)}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise StudioError(f"{path} is neither a folder nor a readable .zip file ({error}); "
                          "give a folder of images or a .zip of one (for text use text:<path>).")
    with archive:
        entries, root_name = _zip_entries(archive, default_root=path.stem)
        _check_count(len(entries), path.name, "entries")
        declared = sum(info.file_size for _, info in entries
                       if info.file_size <= limits.MAX_IMAGE_FILE_BYTES)
        if declared > limits.MAX_UNZIPPED_BYTES:
            raise StudioError(_too_much(path.name, declared))
        budget = _ZipBudget(archive, path.name)
        return _load_entries(entries, root_name, image_size, read=budget.read,
                             size_of=lambda info: info.file_size,
                             name_of=lambda info: f"{path.name}: {info.filename}")


def _check_count(count: int, name: str, what: str) -> None:
    if count > limits.MAX_DATA_FILES:
        raise StudioError(f"{name} holds {count:,} {what}; an image set may have at most "
                          f"{limits.MAX_DATA_FILES:,}: split it or pick a subset")


class _ZipBudget:
    """Reads zip entries by streaming, never more than limits.MAX_IMAGE_FILE_BYTES of one
    entry nor limits.MAX_UNZIPPED_BYTES in all, whatever the zip's directory claims."""

    def __init__(self, archive: zipfile.ZipFile, zip_name: str):
        self.archive, self.zip_name, self.total = archive, zip_name, 0

    def read(self, info: zipfile.ZipInfo) -> bytes:
        data = bytearray()
        with self.archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                data += chunk
                self.total += len(chunk)
                if len(data) > limits.MAX_IMAGE_FILE_BYTES:
                    raise StudioError(_too_big(f"{self.zip_name}: {info.filename}", len(data),
                                               "expands to more than"))
                if self.total > limits.MAX_UNZIPPED_BYTES:
                    raise StudioError(_too_much(self.zip_name, self.total))
        return bytes(data)


def _too_much(zip_name: str, size: int) -> str:
    return (f"{zip_name} expands to {limits.size_text(size)}; a zip of images may expand to at "
            f"most {limits.size_text(limits.MAX_UNZIPPED_BYTES)}: split it into smaller zips or "
            f"use a folder on the server")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:      # a dangling link: not readable, skipped like any unreadable file
        return 0


def _too_big(name: str, size: int, verb: str = "is") -> str:
    return (f"{name} {verb} {limits.size_text(size)}; an image file may be at most "
            f"{limits.size_text(limits.MAX_IMAGE_FILE_BYTES)}: shrink it or leave it out")


def _is_hidden(part: str) -> bool:
    """Files and folders an OS or archiver adds behind the user's back (.DS_Store, __MACOSX)."""
    return part.startswith(".") or part == "__MACOSX"


def _folder_entries(root: Path) -> list[tuple[tuple[str, ...], Path]]:
    """Every visible file under root, as (path parts relative to root, file path), sorted."""
    entries = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not _is_hidden(d)]  # prune in place
        relative = Path(directory).relative_to(root).parts
        entries += [(relative + (f,), Path(directory, f)) for f in files if not _is_hidden(f)]
    return sorted(entries)


def _zip_entries(archive: zipfile.ZipFile, default_root: str
                 ) -> tuple[list[tuple[tuple[str, ...], zipfile.ZipInfo]], str]:
    """The zip's visible files as (parts, info), and the root's name.

    Zipping a folder usually puts everything under one top-level directory; that directory is
    then the root (its name is the class name for a single-class set), not a class of its own.
    """
    entries = []
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or not parts or any(_is_hidden(p) for p in parts):
            continue
        entries.append((parts, info))
    entries.sort(key=lambda entry: entry[0])
    top_levels = {parts[0] for parts, _ in entries}
    if len(top_levels) == 1 and all(len(parts) > 1 for parts, _ in entries):
        root_name = top_levels.pop()
        return [(parts[1:], info) for parts, info in entries], root_name
    return entries, default_root


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


CAPTION_INDEXES = ("metadata.jsonl", "metadata.csv")   # Hugging Face imagefolder's two forms


def _load_entries(entries, root_name: str, image_size: int, read, size_of, name_of
                  ) -> tuple[np.ndarray, np.ndarray, list[str], int, list[str] | None]:
    """Read every entry; class = first subfolder, or root_name when there are no subfolders.

    Files that are not readable images are skipped and counted, as are loose files next to
    class subfolders (they belong to no class); caption files are read, not counted. A
    picture over a size limit is refused.
    """
    captions_by_image = _captions(entries, read, size_of, name_of)
    has_subfolders = any(len(parts) > 1 for parts, _ in entries
                         if not _is_caption_file(parts, captions_by_image))
    pictures: list[np.ndarray] = []
    grays: list[bool] = []
    class_of_picture: list[str] = []
    captions: list[str | None] = []
    skipped = 0
    for parts, source in entries:
        if _is_caption_file(parts, captions_by_image):
            continue
        if has_subfolders and len(parts) == 1:
            skipped += 1
            continue
        if size_of(source) > limits.MAX_IMAGE_FILE_BYTES:
            if PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
                raise StudioError(_too_big(name_of(source), size_of(source)))
            skipped += 1     # a big file that is not named like a picture: skipped unread
            continue
        picture = _read_picture(read, source, image_size, name_of(source))
        if picture is None:
            skipped += 1
            continue
        pictures.append(picture[0])
        grays.append(picture[1])
        class_of_picture.append(parts[0] if has_subfolders else root_name)
        captions.append(captions_by_image.get(tuple(parts)))

    if not pictures:
        raise StudioError(f"Found no readable images in {root_name} ({skipped} files skipped "
                          f"as unreadable or misplaced); {EXPECTED_LAYOUT}.")
    # Only classes that yielded an image exist: an empty class would break the stratified split
    # and give a class-conditional model a label it never sees.
    class_names = sorted(set(class_of_picture))
    labels = np.array([class_names.index(c) for c in class_of_picture], dtype=np.int64)
    return (_stack(pictures, all(grays)), labels, class_names, skipped,
            _all_or_none(captions, entries, root_name))


def _is_caption_file(parts: tuple[str, ...], captions_by_image: dict) -> bool:
    """A metadata.jsonl, or a .txt that captions an image (`x.txt` beside `x.png`)."""
    if parts[-1] in CAPTION_INDEXES:
        return True
    return bool(captions_by_image) and PurePosixPath(parts[-1]).suffix.lower() == ".txt"


def _captions(entries, read, size_of, name_of) -> dict[tuple[str, ...], str]:
    """Image path parts -> caption, from caption files beside images and metadata.jsonl files
    (whose `file_name`s are relative to their own folder)."""
    by_stem = {}
    for parts, source in entries:
        if PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
            by_stem[parts[:-1] + (PurePosixPath(parts[-1]).stem,)] = tuple(parts)
    captions: dict[tuple[str, ...], str] = {}
    for parts, source in entries:
        name = parts[-1]
        if name in CAPTION_INDEXES:
            text = _read_text(read, source, size_of, name_of, limits.MAX_CAPTION_INDEX_BYTES)
            for number, row in _index_rows(text, name, name_of(source)):
                try:
                    key = parts[:-1] + tuple(PurePosixPath(row["file_name"]).parts)
                    captions[key] = str(row["text"] if "text" in row else row["caption"]).strip()
                except (KeyError, TypeError):
                    raise StudioError(
                        f"{name_of(source)} line {number} has no file_name and text (or "
                        f"caption): {str(row)[:80]}") from None
        elif PurePosixPath(name).suffix.lower() == ".txt":
            image = by_stem.get(parts[:-1] + (PurePosixPath(name).stem,))
            if image is not None:
                captions[image] = _read_text(read, source, size_of, name_of,
                                             limits.MAX_CAPTION_FILE_BYTES).strip()
    return captions


def _index_rows(text: str, name: str, where: str):
    """(line number, row) of a metadata.jsonl (a JSON object a line) or metadata.csv (a header
    with file_name and text, or caption)."""
    if name.endswith(".csv"):
        import csv
        for number, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
            yield number, row
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError:
                raise StudioError(f"{where} line {number} is not a JSON object with a "
                                  f"file_name and a text (or caption): {line[:80]!r}") from None


def _read_text(read, source, size_of, name_of, limit: int) -> str:
    if size_of(source) > limit:
        raise StudioError(f"{name_of(source)} is {limits.size_text(size_of(source))}; a caption "
                          f"file may be at most {limits.size_text(limit)}")
    try:
        return read(source).decode("utf-8")
    except UnicodeDecodeError:
        raise StudioError(f"{name_of(source)} is not UTF-8 text; save the captions as "
                          f"UTF-8") from None


def _all_or_none(captions: list[str | None], entries, root_name: str) -> list[str] | None:
    """Every image's caption, or None for a set without captions; a set that captions only
    some of its images is refused (a text-to-image model would learn nothing from the rest)."""
    missing = sum(c is None for c in captions)
    if missing == len(captions):
        return None
    if missing:
        raise StudioError(f"{root_name}: {missing} of {len(captions)} images have no caption; "
                          f"give each image one (x.txt beside x.png, or a line of "
                          f"metadata.jsonl or metadata.csv), or remove the caption files")
    return [c or "" for c in captions]


def _read_picture(read, source, image_size: int, name: str) -> tuple[np.ndarray, bool] | None:
    """One normalised picture, or None when the file is not a readable image; StudioError for
    one over a limit (checked from its header, before it is decoded)."""
    # PIL warns on oddly-encoded images; the loader prints nothing and counts skips. Its
    # decompression-bomb warning, though, is an error (bomb_guard).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with bomb_guard(name), Image.open(io.BytesIO(read(source))) as image:
                check_image_pixels(image, name)
                image.draft(image.mode, (image_size, image_size))  # JPEG: decode at reduced scale
                image.load()  # a truncated file fails here, not later
                return normalise_image(image, image_size)
        except StudioError:
            raise
        except Exception:  # noqa: BLE001 - any decoder failure means "not a readable image"
            return None


def _stack(pictures: list[np.ndarray], all_gray: bool) -> np.ndarray:
    """uint8 pictures (H, W) or (H, W, 3) to one (N, C, H, W) float32 array in [0, 1]."""
    if all_gray:
        batch = np.stack(pictures)[:, None]
    else:
        # A grey picture in a colour set gets its one channel repeated as R, G and B.
        batch = np.stack([p if p.ndim == 3 else np.repeat(p[..., None], 3, axis=2)
                          for p in pictures]).transpose(0, 3, 1, 2)
    return batch.astype(np.float32) / 255.0
