"""Starting one training job's CLI process: its command line (`python -m pipelines train ...`,
or `... resume RUN` for a queued run), its log file `<runs_dir>/.jobs/<time>-<random>.log`, and
the run id it reports once it has created its run folder.

What to start and when (the queue, stopping) is studio/jobs.py's `JobManager`; the list of the
processes it started, reaped and ended there, is studio/started_jobs.py; reading what a process
printed is studio/cli_process.py.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.core.errors import StudioError

from .cli_process import child_env, failure_message, reported_run_folder


@dataclass
class Job:
    """One training process a JobManager started."""
    command: list[str]
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.time)
    run_id: str | None = None        # known once the CLI printed its run folder
    trains: bool = False             # a training process (resume); else it only creates a run
    cancelled: bool = False          # stopped by the user while it was still starting
    settled: bool = False            # its exit has been looked at (StartedJobs.reap)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def learn_run_id(self) -> bool:
        """Whether the run id is known, reading it from the log if the CLI has printed it."""
        if self.run_id is None:
            path = reported_run_folder(self.log_path)
            if path is not None:
                self.run_id = Path(path).name
        return self.run_id is not None


def train_command(python: str, runs_dir: Path, pipeline: str, data: str,
                  steps: int | None = 0, extra_set: dict[str, object] | None = None,
                  extra_args: list[str] | None = None) -> list[str]:
    """The CLI command line of a training job; steps 0 or None = the pipeline's default."""
    cmd = [python, "-m", "pipelines", "--runs-dir", str(runs_dir),
           "train", pipeline, "--data", data, "--quiet"]
    if steps:
        cmd += ["--steps", str(int(steps))]
    for key, value in (extra_set or {}).items():
        cmd += ["--set", f"{key}={value}"]
    return cmd + list(extra_args or [])


def resume_command(python: str, runs_dir: Path, run_id: str) -> list[str]:
    """The CLI command line that trains a queued run (from its last checkpoint, if any)."""
    return [python, "-m", "pipelines", "--runs-dir", str(runs_dir), "resume", run_id, "--quiet"]


def launch(cmd: list[str], runs_dir: Path, cwd: Path, trains: bool = False,
           threads: int | None = None) -> Job:
    """Start `cmd` in `cwd` (with `threads` torch threads, when given), everything it prints
    going to a new log file under `<runs_dir>/.jobs/`."""
    log_dir = runs_dir / ".jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-")
    fd, log_name = tempfile.mkstemp(prefix=stamp, suffix=".log", dir=log_dir)
    with os.fdopen(fd, "wb") as log_file:
        try:
            process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=cwd,
                                       env=child_env(threads))
        except OSError as e:
            raise StudioError(f"could not start the training process ({e})") from None
    return Job(cmd, process, Path(log_name), trains=trains)


def wait_for_run_folder(job: Job, timeout: float) -> str:
    """The run id of a starting job, once its CLI has created the run folder. StudioError with
    the CLI's own message when it exits first (it refused the job), or after `timeout`
    seconds (the process keeps starting then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = job.process.poll() is not None
        if job.learn_run_id():
            return job.run_id
        if exited:
            raise StudioError(failure_message(job.log_path, job.returncode))
        time.sleep(0.1)
    raise StudioError(f"the training process is still starting after "
                      f"{timeout:.0f} s; its run appears in the runs table when "
                      f"it has started (log: {job.log_path})")


def whole_steps(steps: int | float | None) -> int:
    """A step count as the user typed it (a number box may give 6.0), as a whole number."""
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
