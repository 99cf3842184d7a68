"""The job queue as the run folders hold it (plain files, no torch): which runs wait, which
train, and claims, so that two studios on one runs folder never start the same run twice.

A queued run is a run folder whose run.json says `queued` (created by `studio train --queue`,
or a stopped run given back to the queue by Resume). A dispatcher that starts one first
creates `.dispatched` in its folder with O_EXCL (only one can), then writes the pid of the
process it started into it. A claim whose process died before training, or that is older
than CLAIM_TTL while the run still waits, is taken over; a run that leaves `queued` has its
claim removed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from pipelines.core.atomic_files import atomic_write_json
from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

CLAIM_FILE = ".dispatched"
CLAIM_TTL = 600.0   # seconds: a run still queued this long after its claim is retried


def scan(runs_dir: Path) -> tuple[list[RunFolder], set[str]]:
    """(queued runs, oldest first; ids of the runs that train or are being started, by any
    process on this machine). Damaged run folders are skipped (the runs table shows them)."""
    found, live = [], set()
    for path in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        run = RunFolder(path)
        try:
            info = run.info() if run.info_path.is_file() else None
        except StudioError:
            continue
        if info is None:
            continue
        status = info.get("status")
        if status == "queued":
            found.append((str(info.get("created", "")), run.id, run))
            if claim_alive(run) or run.trainer_alive(info):   # (a terminal may train it)
                live.add(run.id)
        else:
            release(run)
            if status == "running" and run.trainer_alive(info):
                live.add(run.id)
    return [run for _, _, run in sorted(found, key=lambda t: (t[0], t[1]))], live


def claim(run: RunFolder) -> bool:
    """Take the right to start `run`, or False when a live dispatcher holds it."""
    path = run.path / CLAIM_FILE
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            if claim_alive(run):
                return False
            path.unlink(missing_ok=True)   # its process died before training: take over
        except FileNotFoundError:
            return False                   # the run was deleted meanwhile
    return False


def record(run: RunFolder, pid: int) -> None:
    """Write the pid of the process started for a claimed run into its claim."""
    atomic_write_json(run.path / CLAIM_FILE, {"pid": pid, "host": socket.gethostname(),
                                              "time": time.time()})


def release(run: RunFolder) -> None:
    (run.path / CLAIM_FILE).unlink(missing_ok=True)


def claim_alive(run: RunFolder) -> bool:
    path = run.path / CLAIM_FILE
    try:
        age = time.time() - path.stat().st_mtime
        held = json.loads(path.read_text(encoding="utf-8") or "null")
    except FileNotFoundError:
        return False
    except ValueError:
        held = None
    if age > CLAIM_TTL:
        return False
    if not isinstance(held, dict):
        return True   # claimed a moment ago; the pid is being written
    if held.get("host") != socket.gethostname():
        return True   # another machine's process: it cannot be checked from here
    return pid_alive(held.get("pid"))


def pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
