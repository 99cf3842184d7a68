"""Uploaded data sets: a .zip of images or a .txt file, checked and copied into the runs
folder's `.data/`, the only place an upload is ever written. Returns the data spec to train on.

A zip is read in place by the data loader later (never extracted), but one whose entries would
escape a folder (absolute paths, `..`) is refused outright, as are oversized uploads.
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from pipelines.data.text import read_text_file
from pipelines.errors import StudioError

MAX_UPLOAD_BYTES = 512 * 1024 * 1024          # what a browser may send
MAX_UNZIPPED_BYTES = 2 * 1024 * 1024 * 1024   # what a zip may expand to (zip bombs)
MAX_ZIP_ENTRIES = 200_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def store_upload(path: str | Path, runs_dir: Path) -> tuple[str, str]:
    """(data spec, a note for the user) for an uploaded file, after checking it."""
    source = Path(path)
    if not source.is_file():
        raise StudioError("the upload did not arrive; try again")
    size = source.stat().st_size
    if size == 0:
        raise StudioError(f"{source.name} is empty; upload a .zip of images or a UTF-8 .txt file")
    if size > MAX_UPLOAD_BYTES:
        raise StudioError(f"{source.name} is {size / 2**20:.0f} MB; uploads are limited to "
                          f"{MAX_UPLOAD_BYTES // 2**20} MB (point folder:PATH at a folder on "
                          f"this machine instead)")
    suffix = source.suffix.lower()
    if suffix == ".zip":
        images, skipped = check_zip(source)
        kind, note = "folder", (f"{source.name}: {images} images"
                                + (f", {skipped} other files skipped" if skipped else ""))
    elif suffix == ".txt":
        text = read_text_file(str(source))   # UTF-8 and long enough, or a clear error
        kind, note = "text", f"{source.name}: {len(text):,} characters"
    else:
        raise StudioError(f"{source.name} is neither a .zip of images nor a .txt file")
    dest_dir = runs_dir / ".data"
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-.")[:60] or "upload"
    dest = dest_dir / f"{stamp}-{safe}{suffix}"
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(dest)
    return f"{kind}:{dest}", note + f" — saved as {kind}:{dest}"


def check_zip(path: Path) -> tuple[int, int]:
    """(image entries, other file entries) of a zip that is safe to read; else StudioError."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise StudioError(f"{path.name} is not a readable .zip file ({e})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise StudioError(f"{path.name} holds {len(infos):,} entries; the limit is "
                              f"{MAX_ZIP_ENTRIES:,}")
        total, images, others = 0, 0, 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise StudioError(f"{path.name} has an entry that points outside its folder "
                                  f"({info.filename!r}); such zips are refused")
            if info.is_dir():
                continue
            total += info.file_size
            if name.suffix.lower() in IMAGE_SUFFIXES and not name.name.startswith("."):
                images += 1
            else:
                others += 1
        if total > MAX_UNZIPPED_BYTES:
            raise StudioError(f"{path.name} would expand to {total / 2**30:.1f} GB; the limit is "
                              f"{MAX_UNZIPPED_BYTES // 2**30} GB")
        if images == 0:
            raise StudioError(f"{path.name} holds no images (.png, .jpg, ...); put one folder of "
                              f"images per class in the zip")
    return images, others
