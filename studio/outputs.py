"""The pictures the page makes (samples, walks, tool results, drawings to classify), kept under
the runs folder's `.ui/` only as long as someone may still look at them.

The sampling worker writes each batch into a folder of its own, `.ui/<date>/<id>/`, and the page
serves it from there (studio/app.py marks `.ui/` static, so Gradio does not copy it into its
cache as well). `OutputCache` then bounds them (pipelines/core/limits.py):

- per browser session, the newest OUTPUT_BATCHES_PER_SESSION batches; all of a session's when
  it is left (the page's unload event: tab closed, or a gradio_client closed);
- for all sessions together, OUTPUT_MAX_BYTES, the oldest batches first (never one younger than
  OUTPUT_MIN_AGE_SECONDS, which a page may still be about to show);
- any batch folder older than OUTPUT_MAX_AGE_SECONDS, also those left by a studio that stopped.

So an anonymous visitor of a shared link can fill at most a bounded corner of the disk.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path

from pipelines.core import limits

log = logging.getLogger(__name__)

OUTPUT_FOLDER = ".ui"          # under the runs folder; pipelines/worker.py writes there
SWEEP_EVERY_SECONDS = 600


def current_session() -> str:
    """The Gradio session of the request being answered ('' outside one)."""
    try:
        from gradio.context import LocalContext
        request = LocalContext.request.get(None)
        return str(getattr(request, "session_hash", None) or "")
    except Exception:  # noqa: BLE001 - no request context: one shared bucket
        return ""


class OutputCache:
    """Batch folders under `root` (a runs folder's .ui/), remembered per session and bounded."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self._lock = threading.Lock()
        # folder -> (session, bytes, when kept); oldest first
        self._batches: OrderedDict[Path, tuple[str, int, float]] = OrderedDict()
        self._last_sweep = 0.0

    def keep(self, folder: str | Path | None, session: str | None = None) -> None:
        """Remember a batch folder the worker just wrote for `session` (default: the current
        request's), deleting what the limits no longer allow."""
        if not folder:
            return
        folder = Path(folder).resolve()
        if self.root not in folder.parents or not folder.is_dir():
            return                       # only ever delete what lies under .ui/
        session = current_session() if session is None else session
        try:
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        except OSError:          # deleted meanwhile (a sweep): nothing left to keep
            return
        with self._lock:
            self._batches.pop(folder, None)
            self._batches[folder] = (session, size, time.time())
            doomed = self._over_limits(folder, session)
        self._delete(doomed)
        if time.time() - self._last_sweep > SWEEP_EVERY_SECONDS:
            self.sweep()

    def _over_limits(self, newest: Path, session: str) -> list[Path]:
        doomed = []
        mine = [f for f, (s, _, _) in self._batches.items() if s == session]
        doomed += mine[:max(0, len(mine) - limits.OUTPUT_BATCHES_PER_SESSION)]
        for folder in doomed:
            del self._batches[folder]
        total = sum(size for _, size, _ in self._batches.values())
        now = time.time()
        for folder, (_, size, when) in list(self._batches.items()):
            if total <= limits.OUTPUT_MAX_BYTES:
                break
            if folder == newest or now - when < limits.OUTPUT_MIN_AGE_SECONDS:
                continue
            del self._batches[folder]
            doomed.append(folder)
            total -= size
        return doomed

    def drop_session(self, session: str) -> int:
        """Delete every batch of `session` (it was left); returns how many."""
        with self._lock:
            doomed = [f for f, (s, _, _) in self._batches.items() if s == session]
            for folder in doomed:
                del self._batches[folder]
        self._delete(doomed)
        return len(doomed)

    def session_batches(self, session: str) -> list[Path]:
        with self._lock:
            return [f for f, (s, _, _) in self._batches.items() if s == session]

    def sweep(self) -> None:
        """Delete batch folders (tracked or not) older than OUTPUT_MAX_AGE_SECONDS, and empty
        day folders."""
        self._last_sweep = time.time()
        cutoff = time.time() - limits.OUTPUT_MAX_AGE_SECONDS
        if not self.root.is_dir():
            return
        doomed = []
        for day in self.root.iterdir():
            if not day.is_dir() or day.is_symlink():
                continue
            for batch in day.iterdir():
                try:
                    if batch.is_dir() and batch.stat().st_mtime < cutoff:
                        doomed.append(batch.resolve())
                except OSError:
                    continue
        with self._lock:
            for folder in doomed:
                self._batches.pop(folder, None)
        self._delete(doomed)
        today = time.strftime("%Y%m%d")
        for day in self.root.iterdir():
            if (day.name != today and day.is_dir() and not day.is_symlink()
                    and not any(day.iterdir())):
                try:
                    day.rmdir()
                except OSError:
                    pass          # a batch arrived meanwhile

    def _delete(self, folders: list[Path]) -> None:
        for folder in folders:
            if self.root in folder.parents:
                shutil.rmtree(folder, ignore_errors=True)
        if folders:
            log.debug("deleted %d sample batches under %s", len(folders), self.root)
