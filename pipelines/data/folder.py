"""A user's own images: a folder (subfolders = classes) or a .zip of one, read in place."""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..errors import StudioError
from .images import normalise_image

EXPECTED_LAYOUT = ("expected one subfolder of images per class (e.g. cats/*.jpg, dogs/*.jpg), "
                   "or images directly in the folder for a single class")


def load_image_folder(path_text: str, image_size: int
                      ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Images from a folder or a .zip as (N, C, H, W) floats, labels, class names, skipped count."""
    if not path_text.strip():
        raise StudioError("The folder path is empty; use folder:<path to a folder or .zip>.")
    path = Path(path_text.strip()).expanduser()
    if not path.exists():
        raise StudioError(f"The folder {path} does not exist; check the path ({EXPECTED_LAYOUT}).")
    if path.is_dir():
        return _load_entries(_folder_entries(path), path.name, image_size, read=_open_file)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise StudioError(f"{path} is neither a folder nor a readable .zip file ({error}); "
                          "give a folder of images or a .zip of one (for text use text:<path>).")
    with archive:
        entries, root_name = _zip_entries(archive, default_root=path.stem)
        return _load_entries(entries, root_name, image_size,
                             read=lambda info: Image.open(io.BytesIO(archive.read(info))))


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


def _open_file(path: Path) -> Image.Image:
    return Image.open(path)


def _load_entries(entries, root_name: str, image_size: int, read
                  ) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Read every entry; class = first subfolder, or root_name when there are no subfolders.

    Files that are not readable images are skipped and counted, as are loose files next to
    class subfolders (they belong to no class).
    """
    has_subfolders = any(len(parts) > 1 for parts, _ in entries)
    pictures: list[np.ndarray] = []
    grays: list[bool] = []
    class_of_picture: list[str] = []
    skipped = 0
    for parts, source in entries:
        if has_subfolders and len(parts) == 1:
            skipped += 1
            continue
        picture = _read_picture(read, source, image_size)
        if picture is None:
            skipped += 1
            continue
        pictures.append(picture[0])
        grays.append(picture[1])
        class_of_picture.append(parts[0] if has_subfolders else root_name)

    if not pictures:
        raise StudioError(f"Found no readable images in {root_name} ({skipped} files skipped "
                          f"as unreadable or misplaced); {EXPECTED_LAYOUT}.")
    # Only classes that yielded an image exist: an empty class would break the stratified split
    # and give a class-conditional model a label it never sees.
    class_names = sorted(set(class_of_picture))
    labels = np.array([class_names.index(c) for c in class_of_picture], dtype=np.int64)
    return _stack(pictures, all(grays)), labels, class_names, skipped


def _read_picture(read, source, image_size: int) -> tuple[np.ndarray, bool] | None:
    """One normalised picture, or None when the file is not a readable image."""
    # PIL warns on huge or oddly-encoded images; the loader prints nothing and counts skips.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with read(source) as image:
                image.draft(image.mode, (image_size, image_size))  # JPEG: decode at reduced scale
                image.load()  # a truncated file fails here, not later
                return normalise_image(image, image_size)
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
