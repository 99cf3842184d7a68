"""The processes a `JobManager` (studio/jobs.py) started, as one locked list: adding one as it
is launched, reaping the finished ones, and ending them all when the studio closes.

The run folders say how far each run is; this list only knows what a folder cannot say: the
exit codes of these processes. Reaping them (so none is left a zombie) is also where a
training process that died before it trained marks its run failed, so that the queue does not
start it again and again. What to start and when is the manager's; how one process is started
is studio/job_launch.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

from .cli_process import failure_message
from .job_launch import Job, launch


class StartedJobs:
    """The jobs started for the run folders under `runs_dir`, oldest first; each process runs
    in `cwd`. Safe to use from the page's threads and the background queue at once."""

    def __init__(self, runs_dir: Path, cwd: Path):
        self.runs_dir = runs_dir
        self.cwd = cwd
        self._jobs: list[Job] = []
        self._lock = threading.Lock()   # the job list, not the processes in it

    def launch(self, cmd: list[str], trains: bool = False, threads: int | None = None) -> Job:
        """Start a job's process and list it, so that it is watched and reaped."""
        job = launch(cmd, self.runs_dir, self.cwd, trains, threads)
        with self._lock:
            self._jobs.append(job)
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def training_run_ids(self) -> set[str]:
        """The runs whose training process this list started has not exited (also those that
        have not yet written their pid into the run folder)."""
        with self._lock:
            return {j.run_id for j in self._jobs if j.trains and j.run_id and j.returncode is None}

    def live_training_job(self, run_id: str) -> Job | None:
        """The newest training process of `run_id` that is still running, if any."""
        with self._lock:
            return next((j for j in reversed(self._jobs) if j.run_id == run_id and j.trains
                         and j.process.poll() is None), None)

    def settle(self, run_id: str) -> None:
        """Mark the processes of `run_id` as looked at: their exit no longer says anything
        about the run (it has been queued again)."""
        with self._lock:
            for job in self._jobs:
                if job.run_id == run_id:
                    job.settled = True

    def reap(self) -> None:
        """Reap finished processes; a training process that ended while its run still says
        queued (it failed before training: the run was deleted, its data is gone...) marks
        the run failed with the process's own message, so it is not started again and again."""
        for job in self.all():
            job.process.poll()
            job.learn_run_id()
            if not job.trains or job.returncode is None or job.settled:
                continue
            job.settled = True
            run = RunFolder(self.runs_dir / job.run_id)
            try:
                # (a run another process trains, e.g. `studio resume` from a terminal that
                # won the run's lock first, is not this process's failure)
                if job.cancelled or run.info().get("status") != "queued" or run.trainer_alive():
                    continue
                run.update_info(status="failed",
                                message=failure_message(job.log_path, job.returncode))
            except StudioError:
                continue  # deleted or damaged: nothing to mark

    def end_all(self, timeout: float) -> None:
        """Ask every live process to stop (SIGTERM: a training one saves and stops), and wait
        for them together for up to `timeout` seconds; kill those still running then."""
        with self._lock:
            live = [j for j in self._jobs if j.process.poll() is None]
        for job in live:
            job.process.terminate()
        deadline = time.monotonic() + timeout
        for job in live:
            try:
                job.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
