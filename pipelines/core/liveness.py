"""Is anyone training this run? An OS lock that dies with its process, and a heartbeat.

    lock = TrainerLock(run.path)
    if not lock.acquire(): refuse            # a second trainer of the same run, at once
    ...train...; lock.release()              # or the process dies: the kernel releases it

    trainer_lock_held(run.path)              # what every reader asks (`studio runs`, the page,
                                             # the queue, resume, delete, stop)

Why a lock and not the pid in run.json: a pid says nothing after a reboot, can be reused by
another process, and is written seconds after a trainer starts (after torch is imported and
the data loaded), which is how two resumes of one run came to train at once. The lock is
taken before anything else and released by the kernel whatever way the process ends
(kill -9, a crash, the machine going down), so "the lock is free" means "nobody is training
it" with no stale state to clean up. A run whose run.json says `running` while its lock is
free is shown as `interrupted`.

The heartbeat (run.json's `heartbeat`, refreshed every HEARTBEAT_SECONDS by the trainer) is for
a run folder shared with another machine, where this machine may not see that one's locks:
such a run counts as alive while its heartbeat is fresh.

POSIX: `fcntl.flock` on `<run>/.trainer.lock`; Windows: `msvcrt.locking` on its first byte.
Both are released by the OS when the process exits. This module never imports torch.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

from .errors import StudioError

LOCK_FILE = ".trainer.lock"
HEARTBEAT_SECONDS = 30.0
HEARTBEAT_STALE = 4 * HEARTBEAT_SECONDS   # a heartbeat older than this is a dead trainer's

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class TrainerLock:
    """The exclusive right to train one run folder, held by one process at a time."""

    def __init__(self, run_path: str | os.PathLike):
        self.path = Path(run_path) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process (or another
        TrainerLock in this one) holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if _try_lock(fd):
            self._fd = fd
            os.set_inheritable(fd, False)   # a child process must not keep the run locked
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            _unlock(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "TrainerLock":
        if not self.acquire():
            raise StudioError(f"{self.path.parent.name} is already being trained by another "
                              f"process")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def trainer_lock_held(run_path: str | os.PathLike) -> bool:
    """Whether a live process holds the run's trainer lock (taking it for an instant to see,
    so two readers never both see it free while a trainer holds it)."""
    path = Path(run_path) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False     # never trained since locks exist: nobody can be training it now
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)


def heartbeat_fresh(info: dict[str, Any], now: _dt.datetime | None = None) -> bool:
    """Whether run.json's heartbeat is recent enough for its trainer to be alive."""
    beat = info.get("heartbeat")
    if not isinstance(beat, str):
        return False
    try:
        when = _dt.datetime.fromisoformat(beat)
    except ValueError:
        return False
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return (now - when).total_seconds() < HEARTBEAT_STALE
