"""Uploaded data sets, checked and copied into the runs folder's `.data/`, the only place an
upload is ever written. Returns the data spec to train on, by the file's type: a .zip of
images -> `folder:`, a .txt -> `text:`, a .csv (a table, or passages and their labels) ->
`csv:`, a .tsv (source<TAB>target on each line, for a translator) -> `pairs:`.

A zip is read in place by the data loader later (never extracted), but one whose entries would
escape a folder (absolute paths, `..`) is refused outright, as are oversized uploads, entries and
pictures (the limits of pipelines/core/limits.py; a picture's size is read from its header only).
Gradio itself refuses a file over limits.MAX_UPLOAD_BYTES while it arrives (studio/app.py).
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from PIL import Image

from pipelines.core import limits
from pipelines.data.folder import IMAGE_SUFFIXES
from pipelines.data.images import bomb_guard, check_image_pixels
from pipelines.data.text import decode_utf8, read_text_file
from pipelines.core.errors import StudioError


def store_upload(path: str | Path, runs_dir: Path) -> tuple[str, str]:
    """(data spec, a note for the user) for an uploaded file, after checking it."""
    source = Path(path)
    if not source.is_file():
        raise StudioError("the upload did not arrive; try again")
    size = source.stat().st_size
    if size == 0:
        raise StudioError(f"{source.name} is empty; upload a .zip of images or a UTF-8 .txt file")
    if size > limits.MAX_UPLOAD_BYTES:
        raise StudioError(f"{source.name} is {limits.size_text(size)}; uploads are limited to "
                          f"{limits.size_text(limits.MAX_UPLOAD_BYTES)} (point folder:PATH at a "
                          f"folder on this machine instead, allowed with launch.py --data-dir)")
    suffix = source.suffix.lower()
    if suffix == ".zip":
        images, skipped = check_zip(source)
        kind, note = "folder", (f"{source.name}: {images} images"
                                + (f", {skipped} other files skipped" if skipped else ""))
    elif suffix == ".txt":
        text = read_text_file(str(source))   # UTF-8 and long enough, or a clear error
        kind, note = "text", f"{source.name}: {len(text):,} characters"
    elif suffix == ".csv":
        rows = lines_of(source, limits.MAX_TABLE_BYTES)
        if len(rows) < 2:
            raise StudioError(f"{source.name} has no rows under its header; a .csv needs a "
                              f"header line of column names, then a row per example")
        kind, note = "csv", f"{source.name}: {len(rows) - 1:,} rows of {rows[0][:80]!r}"
    elif suffix == ".tsv":
        rows = lines_of(source, limits.MAX_TEXT_BYTES)
        pairs = sum("\t" in row for row in rows)
        if not pairs:
            raise StudioError(f"{source.name} has no line with a tab; a .tsv of pairs holds "
                              f"source<TAB>target on each line")
        kind, note = "pairs", f"{source.name}: {pairs:,} source-target pairs"
    else:
        raise StudioError(f"{source.name} is not a .zip of images, a .txt, a .csv or a .tsv "
                          f"file")
    dest_dir = runs_dir / ".data"
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-.")[:60] or "upload"
    dest = dest_dir / f"{stamp}-{safe}{suffix}"
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(dest)
    return f"{kind}:{dest}", note + f" — saved as {kind}:{dest}"


def lines_of(path: Path, max_bytes: int) -> list[str]:
    """The non-blank lines of a UTF-8 .csv or .tsv (size checked before reading; the data
    loaders check columns, labels and pairs when the run starts, with their own messages)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise StudioError(f"{path.name} is {limits.size_text(size)}; the limit is "
                          f"{limits.size_text(max_bytes)}: keep a part of it")
    text = decode_utf8(path, shown=path.name)
    if "\x00" in text:
        raise StudioError(f"{path.name} looks like a binary file (NUL bytes); give plain text")
    return [line for line in text.split("\n") if line.strip()]


def check_zip(path: Path) -> tuple[int, int]:
    """(image entries, other file entries) of a zip that is safe to read; else StudioError.
    Sizes come from the zip's directory and each picture's header: nothing is decompressed
    whole here (the loader streams entries within the same limits)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise StudioError(f"{path.name} is not a readable .zip file ({e})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.MAX_DATA_FILES:
            raise StudioError(f"{path.name} holds {len(infos):,} entries; the limit is "
                              f"{limits.MAX_DATA_FILES:,}: split it or pick a subset")
        total, images, others = 0, 0, 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise StudioError(f"{path.name} has an entry that points outside its folder "
                                  f"({info.filename!r}); such zips are refused")
            if info.is_dir():
                continue
            if name.suffix.lower() in IMAGE_SUFFIXES and not name.name.startswith("."):
                images += 1
                check_zip_picture(archive, info, path.name)
            else:
                others += 1     # skipped by the loader (read first if small: it may be one)
            if info.file_size <= limits.MAX_IMAGE_FILE_BYTES:   # what the loader will read
                total += info.file_size
        if total > limits.MAX_UNZIPPED_BYTES:
            raise StudioError(f"{path.name} would expand to {limits.size_text(total)}; the "
                              f"limit is {limits.size_text(limits.MAX_UNZIPPED_BYTES)}: split it "
                              f"into smaller zips")
        if images == 0:
            raise StudioError(f"{path.name} holds no images (.png, .jpg, ...); put one folder of "
                              f"images per class in the zip")
    return images, others


def check_zip_picture(archive: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str) -> None:
    """Refuse an image entry over the byte limit (from the directory) or the pixel limit (from
    its header, read from the start of the stream; nothing is decoded)."""
    where = f"{zip_name}: {info.filename}"
    if info.file_size > limits.MAX_IMAGE_FILE_BYTES:
        raise StudioError(f"{where} is {limits.size_text(info.file_size)}; an image file may "
                          f"be at most {limits.size_text(limits.MAX_IMAGE_FILE_BYTES)}: shrink "
                          f"it or leave it out")
    try:
        with archive.open(info) as stream, bomb_guard(where), Image.open(stream) as image:
            check_image_pixels(image, where)
    except StudioError:
        raise
    except Exception:  # noqa: BLE001 - not a readable picture: the loader will skip it
        return
