"""One training run from start to end: the lock, the heartbeat, the trainer, its failures.

    train_run(run, resume=True)   what `studio train`, `studio resume` and the queue call

The order matters and is the point of this module: take the run's trainer lock first
(pipelines/core/liveness.py), so that a second trainer of the same run is refused before it
touches anything; check the new options; clean what a killed trainer left half-written and
an old STOP file; mark the run `running`; keep a heartbeat; train (pipelines/core/trainer.py); and
turn running out of memory into one plain message. The lock and the heartbeat end with the
process, however it ends.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from . import hardware as hw
from .config import TrainerConfig, apply_overrides, from_dict, to_dict
from .errors import StudioError
from .liveness import HEARTBEAT_SECONDS, TrainerLock
from .runs import RunFolder, now_iso
from .trainer import Callback, Trainer, TrainingFailed


def train_run(run: RunFolder, *, resume: bool = False, total_steps: int | None = None,
              trainer_overrides: dict[str, Any] | None = None,
              callbacks: tuple[Callback, ...] = (), lock: TrainerLock | None = None) -> str:
    """Train (or resume) the run in `run`. Returns its final status. `trainer_overrides`
    change trainer options for the rest of the run (e.g. a smaller batch after running out
    of memory); they are checked like any option and recorded in run.json.

    The first thing it does is take the run's trainer lock (pipelines/core/liveness.py): a second
    trainer of the same run, however started, is refused here before it touches anything.
    `lock`: one the caller already took (the CLI does, before importing torch)."""
    main = os.environ.get("RANK", "0") == "0"
    lock = lock or TrainerLock(run.path)
    if main and not lock.acquire():
        raise RunBusy(run.busy_message())
    heartbeat = _Heartbeat(run) if main else None
    try:
        changes = _checked_changes(run, resume, total_steps, trainer_overrides)
        if main:
            run.clean_partial_writes()   # what a killed trainer of this run left half-written
            run.clear_stop()             # an old stop request, before anyone can ask anew
            # `running` at once (with this process's pid): the run is no longer waiting
            run.update_info(status="running", pid=os.getpid(), host=socket.gethostname(),
                            heartbeat=now_iso(), **changes)
            heartbeat.start()
        return _train_locked(run, resume, callbacks, main, changes)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        lock.release()


class RunBusy(StudioError):
    """Another process holds the run's trainer lock."""


class _Heartbeat:
    """Refreshes run.json's `heartbeat` every HEARTBEAT_SECONDS from a daemon thread, so a
    reader on another machine (which may not see this one's lock) can tell a live run from a
    dead one."""

    def __init__(self, run: RunFolder):
        self.run, self._stop = run, threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def start(self) -> None:
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.run.update_info(heartbeat=now_iso())
            except (OSError, StudioError):
                pass   # a full disk or a deleted folder: the trainer itself reports it

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _checked_changes(run: RunFolder, resume: bool, total_steps: int | None,
                     trainer_overrides: dict[str, Any] | None) -> dict[str, Any]:
    """run.json's new trainer options and total, checked before anything is written."""
    changes = dict(trainer_overrides or {})
    if total_steps is not None:
        changes["steps"] = int(total_steps)
    if not changes:
        return {}
    trainer = apply_overrides(from_dict(TrainerConfig, run.info()["trainer"]), changes)
    at = (run.checkpoint_steps() or [0])[-1] if resume else 0
    if trainer.steps < at:
        raise StudioError(f"run {run.id} is at step {at}; the total step count must be at "
                          f"least that, not {trainer.steps} (it counts from the start)")
    return {"trainer": to_dict(trainer), "total_steps": trainer.steps}


def _train_locked(run: RunFolder, resume: bool, callbacks: tuple[Callback, ...],
                  main: bool, changes: dict[str, Any]) -> str:
    try:
        trainer = Trainer(run, callbacks, info_changes=changes)
    except BaseException as e:  # e.g. its data folder is gone: say so in the run, not "queued"
        if hw.is_out_of_memory(e):
            raise _out_of_memory(run, e, None, main) from e
        if main:
            run.update_info(status="failed", message=f"could not start: {e}")
        raise
    try:
        return trainer.train(resume=resume)
    except BaseException as e:
        if not hw.is_out_of_memory(e):
            raise
        raise _out_of_memory(run, e, trainer.step, main) from e


def _out_of_memory(run: RunFolder, e: BaseException, step: int | None,
                   main: bool) -> TrainingFailed:
    """The run marked failed with one plain message (what ran out, what to change)."""
    message = hw.out_of_memory_message(e, run.info(), step, run.checkpoint_steps(), run.id)
    if main:
        run.update_info(status="failed", message=message)
    return TrainingFailed(message)
