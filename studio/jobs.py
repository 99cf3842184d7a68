"""Training jobs: each one is `python -m pipelines train ...`, a subprocess of the CLI.

The UI never trains in its own process (it never imports torch). A `JobManager` starts the CLI,
learns the run id from the first line the CLI prints ("run folder: PATH"), and from then on the
run folder is the truth: its run.json says how far the run is, and a STOP file asks it to save
and stop. So Stop works for any run in the folder, also one started by another UI session or
from a terminal; the manager only adds what a folder cannot say: the exit codes of the
processes it started (it reaps them, so none is left a zombie).

Everything a job prints goes to `<runs_dir>/.jobs/<time>-<random>.log`; when the CLI refuses a
job (unknown data set, bad option: exit code 2 before any run folder exists), its one-line
"studio: error: ..." becomes the `StudioError` that the UI shows.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import StudioError
from pipelines.registry import get_entry
from pipelines.runs import RunFolder

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_FOLDER_PREFIX = "run folder: "
ERROR_PREFIXES = ("studio: error: ", "studio: training failed: ")
ACTIVE_STATUSES = ("queued", "running")


@dataclass
class Job:
    """One training process this manager started."""
    command: list[str]
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.time)
    run_id: str | None = None        # known once the CLI printed its run folder

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


class JobManager:
    """Starts, watches and stops training jobs for the run folders under `runs_dir`."""

    def __init__(self, runs_dir: str | os.PathLike, *, python: str = sys.executable,
                 cwd: str | os.PathLike | None = None, start_timeout: float = 120.0):
        self.runs_dir = Path(runs_dir).resolve()
        self.python = python
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()  # relative data paths as typed
        self.start_timeout = start_timeout
        self._jobs: list[Job] = []
        self._lock = threading.Lock()

    # --- starting ------------------------------------------------------------------------
    def command(self, pipeline: str, data: str, steps: int | None = 0,
                extra_set: dict[str, object] | None = None,
                extra_args: list[str] | None = None) -> list[str]:
        """The CLI command line of a training job; steps 0 or None = the pipeline's default."""
        cmd = [self.python, "-m", "pipelines", "--runs-dir", str(self.runs_dir),
               "train", pipeline, "--data", data, "--quiet"]
        if steps:
            cmd += ["--steps", str(int(steps))]
        for key, value in (extra_set or {}).items():
            cmd += ["--set", f"{key}={value}"]
        return cmd + list(extra_args or [])

    def start(self, pipeline: str, data: str, steps: int | float | None = 0,
              extra_set: dict[str, object] | None = None,
              extra_args: list[str] | None = None) -> str:
        """Start a training job and return its run id once the CLI has created the run folder.

        Raises StudioError with the CLI's own message when it refuses the job, or when it has
        not reported a run folder within `start_timeout` seconds (it keeps starting then, and
        the run shows up in the folder when it does)."""
        pipeline, data = (pipeline or "").strip(), (data or "").strip()
        get_entry(pipeline)  # an unknown pipeline is refused here, in words, without a process
        if not data:
            raise StudioError("choose a data set (or type folder:PATH or text:PATH)")
        steps = _whole_steps(steps)
        job = self._launch(self.command(pipeline, data, steps, extra_set, extra_args))
        return self._wait_for_run_folder(job)

    def resume(self, run_id: str, steps: int | float | None = 0) -> str:
        """Continue a stopped, failed or interrupted run from its last checkpoint (a new
        process; the run keeps its folder, curves and samples). `steps`: a new total, 0 keeps
        the old one."""
        self.poll()  # reap a finished process first: its pid must not look alive
        run = self._run_folder(run_id)
        status = run.info().get("status", "?")
        if run.live_trainer_pid() is not None:
            raise StudioError(f"run {run.id} is still training; stop it first")
        if status == "done" and not steps:
            raise StudioError(f"run {run.id} is done; give a larger total step count to "
                              f"train it further")
        cmd = [self.python, "-m", "pipelines", "--runs-dir", str(self.runs_dir), "resume",
               run.id, "--quiet"]
        steps = _whole_steps(steps)
        if steps:
            cmd += ["--steps", str(steps)]
        job = self._launch(cmd)
        job.run_id = run.id
        return run.id

    def log_path(self, run_id: str) -> Path | None:
        job = self.job(run_id)
        return job.log_path if job is not None else None

    def _launch(self, cmd: list[str]) -> Job:
        log_dir = self.runs_dir / ".jobs"
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-")
        fd, log_name = tempfile.mkstemp(prefix=stamp, suffix=".log", dir=log_dir)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH"))
                                            if p)
        with os.fdopen(fd, "wb") as log:
            try:
                process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, cwd=self.cwd, env=env)
            except OSError as e:
                raise StudioError(f"could not start the training process ({e})") from None
        job = Job(cmd, process, Path(log_name))
        with self._lock:
            self._jobs.append(job)
        return job

    def _wait_for_run_folder(self, job: Job) -> str:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            exited = job.process.poll() is not None
            if self._learn_run_id(job):
                return job.run_id
            if exited:
                raise StudioError(failure_message(job.log_path, job.returncode))
            time.sleep(0.1)
        raise StudioError(f"the training process is still starting after "
                          f"{self.start_timeout:.0f} s; its run appears in the runs table when "
                          f"it has started (log: {job.log_path})")

    @staticmethod
    def _learn_run_id(job: Job) -> bool:
        if job.run_id is None:
            path = reported_run_folder(job.log_path)
            if path is not None:
                job.run_id = Path(path).name
        return job.run_id is not None

    # --- watching ------------------------------------------------------------------------
    def poll(self) -> None:
        """Reap finished processes and learn the run ids of late starters."""
        with self._lock:
            for job in self._jobs:
                job.process.poll()
                self._learn_run_id(job)

    def jobs(self) -> list[Job]:
        self.poll()
        with self._lock:
            return list(self._jobs)

    def job(self, run_id: str) -> Job | None:
        """The newest job this manager started for `run_id` (a resume would be a second one)."""
        for job in reversed(self.jobs()):
            if job.run_id == run_id:
                return job
        return None

    def exit_codes(self) -> dict[str, int]:
        """{run id: exit code} of the finished processes this manager started."""
        return {j.run_id: j.returncode for j in self.jobs()
                if j.run_id is not None and j.returncode is not None}

    def wait(self, run_id: str, timeout: float | None = None) -> int | None:
        """Wait for this manager's process of `run_id` to exit; its code, or None if unknown."""
        job = self.job(run_id)
        if job is None:
            return None
        try:
            return job.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # --- stopping ------------------------------------------------------------------------
    def stop(self, run_id: str) -> str:
        """Ask a running run to save and stop (a STOP file in its folder). Works for any run
        under runs_dir, whoever started it. Returns a message for the user."""
        run = self._run_folder(run_id)
        status = run.info().get("status", "?")
        job = self.job(run.id)
        if job is not None and job.returncode is not None:
            raise StudioError(f"run {run.id} is not running: its process exited with code "
                              f"{job.returncode} (status {status})")
        if status not in ACTIVE_STATUSES:
            raise StudioError(f"run {run.id} is {status}, not running; there is nothing to stop")
        run.request_stop()
        return f"asked run {run.id} to stop: it saves a checkpoint and stops at the next step"

    def stop_all(self, timeout: float = 60.0) -> None:
        """Ask every live process this manager started to stop, and wait for them (then kill)."""
        live = [j for j in self.jobs() if j.returncode is None]
        for job in live:
            if job.run_id is not None:
                RunFolder(self.runs_dir / job.run_id).request_stop()
            else:
                job.process.terminate()  # still starting: SIGTERM also saves and stops
        deadline = time.monotonic() + timeout
        for job in live:
            try:
                job.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()

    def _run_folder(self, run_id: str) -> RunFolder:
        return RunFolder.by_id(self.runs_dir, run_id)


def _whole_steps(steps: int | float | None) -> int:
    if steps in (None, ""):
        return 0
    try:
        value = float(steps)
    except (TypeError, ValueError):
        raise StudioError(f"steps must be a whole number, not {steps!r}") from None
    if value < 0 or value != int(value):
        raise StudioError(f"steps must be a whole number of at least 0 (0 = the pipeline's "
                          f"default), not {steps!r}")
    return int(value)


def _log_lines(log_path: Path) -> list[str]:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def reported_run_folder(log_path: Path) -> str | None:
    """The PATH of the CLI's "run folder: PATH" line in a job's log, once it is there."""
    for line in _log_lines(log_path):
        if line.startswith(RUN_FOLDER_PREFIX):
            return line[len(RUN_FOLDER_PREFIX):].strip()
    return None


def failure_message(log_path: Path, returncode: int | None) -> str:
    """Why a job ended before it had a run folder: the CLI's one-line error, else the log's
    last line and the exit code."""
    lines = [line.strip() for line in _log_lines(log_path) if line.strip()]
    for line in reversed(lines):
        for prefix in ERROR_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix):]
    last = f"; its last output: {lines[-1][:300]}" if lines else ""
    return f"the training process exited with code {returncode} before it started{last} " \
           f"(log: {log_path})"
