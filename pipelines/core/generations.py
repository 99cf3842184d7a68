"""The generation history: every generation, from the page or the CLI, is kept with its
settings in the runs folder's `outputs/<date>/<run>/<time>-.../`, as the outputs folders of the
image-generation UIs people use.

- An image batch is its PNGs and its `grid.png`; each PNG carries the settings that made it
  (pipelines/core/png_settings.py), so the folder needs nothing else.
- A text generation (a Write on the Text tab, `studio sample` of a text run, a chat session) is
  `generation.json` (its kind, settings and text) and the same text as `text.txt`, for people
  who browse the folder. A chat session rewrites its own folder after every turn.

The History views list them newest first, show one, restore its settings, or delete it. The
history is bounded as a whole (limits.HISTORY_MAX_BYTES: the oldest generations go first).
Torch-free: files only. The page (studio/) and the CLI both write here.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from . import limits
from .atomic_files import atomic_write_json, atomic_write_text
from .errors import StudioError
from .png_settings import read_settings

HISTORY_FOLDER = "outputs"
IMAGE_MARK, TEXT_MARK = "grid.png", "generation.json"
TEXT_KINDS = ("write", "chat")


def history_root(runs_dir: Path) -> Path:
    return Path(runs_dir).resolve() / HISTORY_FOLDER


def new_folder(runs_dir: Path, run_id: str, label: str) -> Path:
    """A fresh folder for one generation: outputs/<date>/<run>/<time>-<label>-<random>."""
    dest = (history_root(runs_dir) / time.strftime("%Y%m%d") / run_id
            / f"{time.strftime('%H%M%S')}-{label}-{secrets.token_hex(3)}")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def record_images(runs_dir: Path, run_id: str, pngs: list[Path], seed: int,
                  count: int) -> Path:
    """Copy a drawn batch's PNGs (its grid.png among them) into the history; returns where."""
    if not any(Path(p).name == IMAGE_MARK for p in pngs):
        raise ValueError("an image batch is recorded with its grid.png")
    dest = new_folder(runs_dir, run_id, f"seed{seed}-n{count}")
    for png in pngs:
        shutil.copy2(png, dest / Path(png).name)
    prune(runs_dir)
    return dest


def record_text(runs_dir: Path, run_id: str, kind: str, text: str, settings: dict[str, Any],
                folder: Path | str | None = None) -> Path:
    """Keep a text generation (kind "write" or "chat") with its settings; `folder` rewrites
    an existing one (a chat session after its next turn). Returns the folder."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"unknown text generation kind {kind!r}")
    if folder is not None:
        dest = generation_folder(runs_dir, folder)
    else:
        dest = new_folder(runs_dir, run_id, f"{kind}-seed{settings.get('seed', 0)}")
    atomic_write_text(dest / "text.txt", text)
    atomic_write_json(dest / TEXT_MARK, {"kind": kind, "run": run_id, "settings": settings,
                                         "text": text})
    prune(runs_dir)
    return dest


def _generations(runs_dir: Path) -> list[Path]:
    """Every generation folder in the history, newest first (by their mark file's time)."""
    root = history_root(runs_dir)
    found = [m.parent for mark in (IMAGE_MARK, TEXT_MARK) for m in root.glob(f"*/*/*/{mark}")]
    return sorted(found, key=lambda f: _mark(f).stat().st_mtime, reverse=True)


def _mark(folder: Path) -> Path:
    return folder / (TEXT_MARK if (folder / TEXT_MARK).is_file() else IMAGE_MARK)


def prune(runs_dir: Path) -> None:
    """Delete the oldest generations while the history holds more than HISTORY_MAX_BYTES."""
    folders = _generations(runs_dir)
    sizes = [sum(f.stat().st_size for f in g.iterdir() if f.is_file()) for g in folders]
    total = sum(sizes)
    while folders and total > limits.HISTORY_MAX_BYTES and len(folders) > 1:
        total -= sizes.pop()
        shutil.rmtree(folders.pop(), ignore_errors=True)


def _when(folder: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(_mark(folder).stat().st_mtime))


def image_entries(runs_dir: Path) -> list[dict[str, Any]]:
    """The newest HISTORY_SHOWN image batches: when, which run, seed, size, class, controls."""
    rows = []
    for folder in _generations(runs_dir):
        if not (folder / IMAGE_MARK).is_file():
            continue
        try:
            settings = read_settings(folder / IMAGE_MARK)
        except StudioError:
            continue                        # a damaged or foreign file: not listed
        controls = ", ".join(f"{k}={v}" for k, v in settings["controls"].items())
        rows.append({"when": _when(folder), "run": settings["run"], "seed": settings["seed"],
                     "count": settings["count"],
                     "class": "cycle" if settings["label"] is None else settings["label"],
                     "controls": controls, "folder": str(folder)})
        if len(rows) == limits.HISTORY_SHOWN:
            break
    return rows


def read_text(runs_dir: Path, folder: Path | str) -> dict[str, Any]:
    """A text generation's record: {"kind", "run", "settings", "text"}."""
    path = generation_folder(runs_dir, folder) / TEXT_MARK
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StudioError(f"that text generation cannot be read ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise StudioError("that text generation's record is damaged")
    return record


def text_entries(runs_dir: Path) -> list[dict[str, Any]]:
    """The newest HISTORY_SHOWN text generations: when, run, kind, seed, the start of it."""
    rows = []
    for folder in _generations(runs_dir):
        if not (folder / TEXT_MARK).is_file():
            continue
        try:
            record = read_text(runs_dir, folder)
        except StudioError:
            continue
        settings = record.get("settings") or {}
        start = " ".join(record["text"].split())[:80]
        rows.append({"when": _when(folder), "run": record.get("run", ""),
                     "kind": record.get("kind", ""), "seed": settings.get("seed", ""),
                     "start": start, "folder": str(folder)})
        if len(rows) == limits.HISTORY_SHOWN:
            break
    return rows


def generation_folder(runs_dir: Path, folder: str | Path) -> Path:
    """A history folder named by the page, refused if it is not one."""
    path = Path(folder).resolve()
    if (history_root(runs_dir) not in path.parents
            or not ((path / IMAGE_MARK).is_file() or (path / TEXT_MARK).is_file())):
        raise StudioError("that generation is no longer in the history")
    return path


def pictures(runs_dir: Path, folder: str | Path) -> list[str]:
    """An image batch's pictures in seed order (its grid alone when it has no others: a
    `studio sample` grid)."""
    path = generation_folder(runs_dir, folder)
    files = sorted(path.glob("seed*.png"), key=lambda f: (int(f.stem[4:].split("-")[0]), f.stem))
    return [str(f) for f in files] or [str(path / IMAGE_MARK)]


def delete(runs_dir: Path, folder: str | Path) -> None:
    shutil.rmtree(generation_folder(runs_dir, folder))
