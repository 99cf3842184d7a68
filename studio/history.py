"""The generation history: every batch the Images tab draws is kept, with its settings, in the
runs folder's `outputs/<date>/<run>/<time>-seed<seed>-n<count>/` (the PNGs of the batch and its
grid; each PNG carries the settings that made it, pipelines/core/png_settings.py), as the
outputs folders of the image-generation UIs people use. The History view lists them newest
first, shows one, restores its settings into the form, or deletes it.

The page's own copies under .ui/ stay bounded per session (studio/outputs.py); the history is
bounded as a whole (HISTORY_MAX_BYTES, the oldest batches go first). Torch-free: files only.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from pipelines.core import limits
from pipelines.core.errors import StudioError
from pipelines.core.png_settings import read_settings

HISTORY_FOLDER = "outputs"


def history_root(runs_dir: Path) -> Path:
    return Path(runs_dir).resolve() / HISTORY_FOLDER


def record(runs_dir: Path, batch: Path, run_id: str, seed: int, count: int) -> Path:
    """Copy a drawn batch's PNGs (its grid.png included) into the history; returns where."""
    stamp = time.strftime("%H%M%S")
    dest = (history_root(runs_dir) / time.strftime("%Y%m%d") / run_id
            / f"{stamp}-seed{seed}-n{count}-{batch.name[:6]}")
    dest.mkdir(parents=True, exist_ok=True)
    for png in sorted(Path(batch).glob("*.png")):
        shutil.copy2(png, dest / png.name)
    prune(runs_dir)
    return dest


def _batches(runs_dir: Path) -> list[Path]:
    """Every batch folder in the history, newest first (by their grid's time)."""
    found = [grid.parent for grid in history_root(runs_dir).glob("*/*/*/grid.png")]
    return sorted(found, key=lambda f: (f / "grid.png").stat().st_mtime, reverse=True)


def prune(runs_dir: Path) -> None:
    """Delete the oldest batches while the history holds more than HISTORY_MAX_BYTES."""
    batches = _batches(runs_dir)
    sizes = [sum(f.stat().st_size for f in b.iterdir() if f.is_file()) for b in batches]
    total = sum(sizes)
    while batches and total > limits.HISTORY_MAX_BYTES and len(batches) > 1:
        total -= sizes.pop()
        shutil.rmtree(batches.pop(), ignore_errors=True)


def entries(runs_dir: Path) -> list[dict[str, Any]]:
    """The newest HISTORY_SHOWN batches: when, which run, seed, size, class, the controls."""
    rows = []
    for folder in _batches(runs_dir)[:limits.HISTORY_SHOWN]:
        try:
            settings = read_settings(folder / "grid.png")
        except StudioError:
            continue                        # a damaged or foreign file: not listed
        when = time.strftime("%Y-%m-%d %H:%M:%S",
                             time.localtime((folder / "grid.png").stat().st_mtime))
        controls = ", ".join(f"{k}={v}" for k, v in settings["controls"].items())
        rows.append({"when": when, "run": settings["run"], "seed": settings["seed"],
                     "count": settings["count"],
                     "class": "cycle" if settings["label"] is None else settings["label"],
                     "controls": controls, "folder": str(folder)})
    return rows


def batch_folder(runs_dir: Path, folder: str | Path) -> Path:
    """A history batch folder named by the page, refused if it is not one."""
    path = Path(folder).resolve()
    if history_root(runs_dir) not in path.parents or not (path / "grid.png").is_file():
        raise StudioError("that generation is no longer in the history")
    return path


def pictures(runs_dir: Path, folder: str | Path) -> list[str]:
    """The batch's pictures in seed order (not its grid)."""
    path = batch_folder(runs_dir, folder)
    files = [f for f in path.glob("seed*.png")]
    return [str(f) for f in sorted(files, key=lambda f: int(f.stem[4:].split("-")[0]))]


def delete(runs_dir: Path, folder: str | Path) -> None:
    shutil.rmtree(batch_folder(runs_dir, folder))
