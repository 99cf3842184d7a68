"""A tool's input files as picture files: a .zip among them is opened and its pictures are
written to a temporary folder, so that every tool reads plain files (`read_images`) and
checks them by path (`check_input_files`). Used by `run_tool`, so the CLI's `--input x.zip`
and the page's upload behave the same.

The guards are the data layer's: entries that would escape a folder, hidden files and non-
pictures are left out; an entry over the byte limit, a zip of more pictures than a tool takes
and a zip with none are refused in one line. Pictures keep their path inside the zip under a
folder named after it (`drawings.zip/a.png`), which is how messages name them.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path, PurePosixPath

from ..core import limits
from ..core.errors import StudioError
from ..data import folder as F
from ..data.folder import IMAGE_SUFFIXES


def unpack_inputs(paths: list[str | os.PathLike], into: Path) -> list[Path]:
    """`paths` with each .zip replaced by its pictures (written under `into`), in order."""
    out: list[Path] = []
    for number, path in enumerate(map(Path, paths)):
        if path.suffix.lower() == ".zip":
            folder = into / path.name                       # a second zip of that name: x-2.zip
            if folder.exists():
                folder = into / f"{path.stem}-{number + 1}{path.suffix}"
            out += unpack_zip(path, folder)
        else:
            out.append(path)
        if len(out) > limits.MAX_TOOL_INPUTS:
            raise StudioError(f"a tool takes at most {limits.MAX_TOOL_INPUTS} pictures at a "
                              f"time; give fewer (or a smaller zip)")
    return out


def unpack_zip(path: Path, folder: Path) -> list[Path]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise StudioError(f"{path.name} is not a readable .zip file ({e})") from None
    with archive:
        pictures = [info for info in archive.infolist() if is_picture_entry(info)]
        if not pictures:
            raise StudioError(f"{path.name} holds no pictures (.png, .jpg, ...); zip the "
                              f"pictures to run the tool on")
        if len(pictures) > limits.MAX_TOOL_INPUTS:
            raise StudioError(f"{path.name} holds {len(pictures)} pictures; a tool takes at "
                              f"most {limits.MAX_TOOL_INPUTS} at a time: zip fewer")
        out = []
        for info in sorted(pictures, key=lambda i: i.filename):
            if info.file_size > limits.MAX_IMAGE_FILE_BYTES:
                raise StudioError(f"{path.name}: {info.filename} is "
                                  f"{limits.size_text(info.file_size)}; a picture may be at "
                                  f"most {limits.size_text(limits.MAX_IMAGE_FILE_BYTES)}")
            target = folder.joinpath(*PurePosixPath(info.filename).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            # Read at most the limit: the directory's size can lie about what inflates.
            with archive.open(info) as stream:
                data = stream.read(limits.MAX_IMAGE_FILE_BYTES + 1)
            if len(data) > limits.MAX_IMAGE_FILE_BYTES:
                raise StudioError(f"{path.name}: {info.filename} inflates past "
                                  f"{limits.size_text(limits.MAX_IMAGE_FILE_BYTES)}; refused")
            target.write_bytes(data)
            out.append(target)
    return out


def is_picture_entry(info: zipfile.ZipInfo) -> bool:
    """A picture file inside the zip's own folder: not a folder, not hidden (a dot file, or
    macOS's __MACOSX), not absolute and without `..`."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    return (not info.is_dir() and bool(parts) and not name.startswith("/")
            and ":" not in parts[0] and ".." not in parts
            and not any(F._is_hidden(p) for p in parts)
            and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES)
