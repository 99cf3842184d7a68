"""The run folder, `checkpoints/<run-id>/`: the contract between the engine and the UI.

    run.json           pipeline, data, configs, status, step, timestamps, versions, seed
    metrics.jsonl      one JSON object per logged step (see metrics_log.py)
    samples/           step_000500.png sample grids at fixed seeds
    model.safetensors  the latest weights for sampling (EMA swapped in), with metadata
    best.safetensors   the same for the best validated step, where the family validates
    state/step_N/      complete checkpoints for exact resume (see checkpoints.py)
    export/            ecosystem formats and the model card
    README.md          the model card
    STOP               created by anyone who wants the trainer to save and stop

Every write is atomic (pipelines/core/atomic_files.py: temp file, fsync, rename), so a reader
never sees half a file and a run killed at any instant keeps its last complete state. This
module never imports torch: the UI reads run folders too.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from .atomic_files import atomic_write_json, atomic_write_text
from .errors import StudioError
from .liveness import heartbeat_fresh, trainer_lock_held
from .metrics_log import append_metrics, drop_metrics_after, last_losses, read_metrics
from .run_schema import STATUSES, check_run_info

# What readers show: a `running` run nobody trains any more is `interrupted` (never written).
DISPLAY_STATUSES = (*STATUSES, "interrupted")
_INFO_LOCK = threading.Lock()
DEFAULT_RUNS_DIR = "checkpoints"


def runs_dir_from_env(explicit: str | os.PathLike | None = None) -> Path:
    """Where runs live: an explicit path, else $STUDIO_RUNS_DIR, else ./checkpoints."""
    return Path(explicit or os.environ.get("STUDIO_RUNS_DIR") or DEFAULT_RUNS_DIR)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudioError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StudioError(f"{path} is not valid JSON ({e}); the file is damaged") from None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "run"


class RunFolder:
    """One run's folder. Only the training process writes run.json and metrics; anyone may
    read, and anyone may ask for a stop by creating STOP."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # --- names ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    @property
    def weights_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def best_weights_path(self) -> Path:
        """The sampling weights of the best validated step (pipelines/core/best.py), if kept."""
        return self.path / "best.safetensors"

    @property
    def sampling_weights_path(self) -> Path:
        """What sampling and export use by default: the best validated weights where the run
        keeps them, else the latest."""
        best = self.best_weights_path
        return best if best.is_file() else self.weights_path

    @property
    def stop_path(self) -> Path:
        return self.path / "STOP"

    # --- creation and lookup -------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str, info: dict[str, Any]) -> "RunFolder":
        """A new, empty run folder named `<time>-<name>` with `info` as its run.json."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_safe_name(name)}"
        for i in range(1000):
            path = runs_dir / (base if i == 0 else f"{base}-{i + 1}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover
            raise StudioError(f"could not create a run folder under {runs_dir}")
        run = cls(path)
        run.samples_dir.mkdir()
        now = now_iso()
        atomic_write_json(run.info_path, {**info, "id": run.id, "created": now, "updated": now})
        return run

    @classmethod
    def resolve(cls, ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> "RunFolder":
        """A run by id (under runs_dir) or by path; a clear error if there is none."""
        candidates = [Path(ref), runs_dir_from_env(runs_dir) / str(ref)]
        for path in candidates:
            if (path / "run.json").is_file():
                return cls(path)
        raise StudioError(f"no run {str(ref)!r} (looked for run.json in "
                          f"{' and '.join(str(c) for c in candidates)}); `studio runs` lists them")

    @classmethod
    def by_id(cls, runs_dir: str | os.PathLike, run_id: str) -> "RunFolder":
        """The run `run_id` of `runs_dir`, and nothing else: a path or '..' is refused, so a
        request from the page can never reach outside the runs folder."""
        run_id = (run_id or "").strip()
        if not run_id:
            raise StudioError("choose a run first")
        if Path(run_id).name != run_id or run_id in (".", ".."):
            raise StudioError(f"{run_id!r} is not a run id")
        run = cls(Path(runs_dir) / run_id)
        if not run.info_path.is_file():
            raise StudioError(f"no run {run_id!r} in {runs_dir} (gone? deleted?); pick another")
        return run

    # --- run.json ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """run.json, checked (pipelines/core/run_schema.py): a missing, unreadable or malformed one
        is a StudioError naming this run and what is damaged, never a KeyError later."""
        try:
            info = read_json(self.info_path)
        except OSError as e:   # a folder in its place, no permission, ...
            raise StudioError(f"run {self.id}'s run.json cannot be read ({e})") from None
        if not isinstance(info, dict):
            raise StudioError(f"{self.info_path} does not describe a run; the file is damaged")
        return check_run_info(info, self.id)

    def update_info(self, **changes: Any) -> dict[str, Any]:
        if "status" in changes and changes["status"] not in STATUSES:
            raise ValueError(f"unknown status {changes['status']}")
        with _INFO_LOCK:  # the trainer's heartbeat thread writes run.json too
            info = self.info()
            info.update(changes, updated=now_iso())
            atomic_write_json(self.info_path, info)
        return info

    # --- metrics.jsonl (pipelines/core/metrics_log.py) ------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append `record` as one line, fsynced (a crash cuts at most that line)."""
        append_metrics(self.metrics_path, record)

    def metrics(self) -> list[dict[str, Any]]:
        """Every whole line of metrics.jsonl (a line cut by a crash is skipped)."""
        return list(read_metrics(self.metrics_path))

    def truncate_metrics(self, last_step: int) -> None:
        """Drop metrics logged after `last_step` (the checkpoint a resume starts from), so the
        resumed run does not log those steps twice."""
        drop_metrics_after(self.metrics_path, last_step)

    # --- samples, checkpoints, stop ------------------------------------------------------
    def sample_path(self, step: int, suffix: str = ".png") -> Path:
        return self.samples_dir / f"step_{step:06d}{suffix}"

    def sample_files(self) -> list[Path]:
        if not self.samples_dir.is_dir():
            return []
        return sorted(p for p in self.samples_dir.iterdir()
                      if p.name.startswith("step_") and not p.name.startswith("."))

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints under state/, oldest first."""
        if not self.state_dir.is_dir():
            return []
        steps = []
        for p in self.state_dir.iterdir():
            m = re.fullmatch(r"step_(\d+)", p.name)
            if m and p.is_dir():
                steps.append(int(m.group(1)))
        return sorted(steps)

    def keep_checkpoint(self, step: int) -> None:
        """Mark checkpoint `step` to be kept when newer ones replace it (a KEEP file in it)."""
        folder = self.checkpoint_dir(step)
        if not folder.is_dir():
            raise StudioError(f"run {self.id} has no checkpoint at step {step}; it has "
                              f"{self.checkpoint_steps() or 'none'}")
        (folder / "KEEP").write_text("kept by the user\n")

    def kept_steps(self) -> list[int]:
        return [s for s in self.checkpoint_steps() if (self.checkpoint_dir(s) / "KEEP").is_file()]

    def checkpoint_dir(self, step: int) -> Path:
        return self.state_dir / f"step_{step:06d}"

    def request_stop(self) -> None:
        atomic_write_text(self.stop_path, now_iso() + "\n")

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stop(self) -> None:
        self.stop_path.unlink(missing_ok=True)

    # --- liveness (pipelines/core/liveness.py) ------------------------------------------------
    def trainer_alive(self, info: dict[str, Any] | None = None) -> bool:
        """Whether a process is training (or starting to train) this run now: its trainer
        lock is held, or, for a run trained on another machine, its heartbeat is fresh."""
        if trainer_lock_held(self.path):
            return True
        if info is None:
            try:
                info = self.info()
            except StudioError:   # damaged run.json: only the lock can tell, and it is free
                return False
        return info.get("host") not in (None, socket.gethostname()) and heartbeat_fresh(info)

    def busy_message(self) -> str:
        """What a second trainer of this run is told (its lock is held by another process)."""
        try:
            pid = self.info().get("pid")
        except StudioError:
            pid = None
        by = f" (process {pid})" if isinstance(pid, int) and pid != os.getpid() else ""
        return (f"run {self.id} is already being trained by another process{by}; stop it "
                f"first (Ctrl-C there, the Stop button, or create {self.stop_path}) or wait "
                f"for it")

    def display_status(self, info: dict[str, Any] | None = None) -> str:
        """run.json's status, except that a run that says `running` while nobody trains it
        (killed, crashed, the machine went down) is `interrupted`: what every reader shows."""
        info = self.info() if info is None else info
        status = info.get("status", "?")
        if status == "running" and not self.trainer_alive(info):
            return "interrupted"
        return status

    def clean_partial_writes(self) -> list[Path]:
        """Delete what interrupted writes left (atomic writes' `.NAME.*.tmp`, checkpoint
        folders' `.tmp-step_*`): called by the next trainer of the run, which holds its lock,
        so no write of a live process is touched. Returns what was deleted."""
        gone = []
        for folder in (self.path, self.samples_dir, self.state_dir, self.path / "export"):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.name.startswith(".") and (p.name.endswith(".tmp")
                                               or p.name.startswith(".tmp-")):
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                    gone.append(p)
        return gone

    def trim_samples(self, last_step: int) -> None:
        """Delete sample grids of steps after `last_step` (a resume repeats those steps)."""
        for p in self.sample_files():
            m = re.fullmatch(r"step_(\d+)\.\w+", p.name)
            if m and int(m.group(1)) > last_step:
                p.unlink(missing_ok=True)


def summary_row(run: RunFolder) -> dict[str, Any]:
    """One row for `studio runs` and the UI's table."""
    info = run.info()
    losses = last_losses(run.metrics())   # the last line may be evaluation, not losses
    return {
        "id": run.id,
        "pipeline": info.get("pipeline", "?"),
        "data": info.get("data", "?"),
        "status": run.display_status(info),   # `interrupted`: nobody trains it
        "step": info.get("step", 0),
        "total_steps": info.get("total_steps"),
        "last_loss": losses,
        "created": info.get("created", ""),
        "message": info.get("message") or "",
        "warning": info.get("warning") or "",
        "eval": info.get("eval") or {},
        # where and how it trained (set when training starts; peak memory at each log)
        "device": info.get("device") or "",
        "precision": info.get("precision") or "",
        "processes": info.get("processes"),
        "peak_memory_mb": info.get("peak_memory_mb"),
        "checkpoint_step": info.get("checkpoint_step"),   # where a resume continues
    }


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Summaries of every readable run under runs_dir, newest first. A damaged run.json is
    listed with status "damaged" instead of hiding the folder."""
    root = runs_dir_from_env(runs_dir)
    if not root.is_dir():
        return []
    rows = []
    for path in root.iterdir():
        if not (path / "run.json").is_file():
            continue
        try:
            rows.append(summary_row(RunFolder(path)))
        except (StudioError, OSError) as e:   # this run alone: every other one still lists
            rows.append({"id": path.name, "pipeline": "?", "data": "?", "status": "damaged",
                         "step": 0, "total_steps": None, "last_loss": {}, "created": "",
                         "message": str(e), "warning": "", "eval": {}, "device": "",
                         "precision": "", "processes": None, "peak_memory_mb": None})
    return sorted(rows, key=lambda r: (r["created"], r["id"]), reverse=True)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def delete_run(runs_dir: str | os.PathLike, run_id: str) -> str:
    """Delete a run's folder, unless a trainer is still working on it. Returns a message."""
    run = RunFolder.by_id(runs_dir, run_id)
    if run.trainer_alive():
        raise StudioError(f"run {run_id} is training; stop it first (its folder is kept)")
    # Rename first, so a half-finished delete never leaves a run that looks whole.
    doomed = run.path.with_name(f".deleting-{run.id}")
    run.path.rename(doomed)
    remove_tree(doomed)
    return f"deleted run {run_id}"
