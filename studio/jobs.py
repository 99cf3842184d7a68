"""Training jobs: each one is `python -m pipelines train ...`, a subprocess of the CLI.

The UI never trains in its own process (it never imports torch). A `JobManager` starts the CLI,
learns the run id from the first line the CLI prints ("run folder: PATH"), and from then on the
run folder is the truth: its run.json says how far the run is, and a STOP file asks it to save
and stop. So Stop works for any run in the folder, also one started by another UI session or
from a terminal; the manager only adds what a folder cannot say: the exit codes of the
processes it started (studio/started_jobs.py lists and reaps them, so none is left a zombie).

Jobs queue. `start` runs `studio train ... --queue`: the CLI checks everything and creates the
run folder with status `queued`, without training. `dispatch` (run by `start`, `resume` and
every `poll`, so by the page's timers and a background thread of launch.py) then starts
`studio resume RUN` for the oldest queued runs while fewer than `max_running` runs under
runs_dir train: whether a run trains is read from its folder (the trainer's lock,
pipelines/core/liveness.py), so runs started by another studio or from a terminal count too,
and a queued run left by a closed studio is started by the next one. With `max_running` over
one, each training job gets its share of the CPU cores as torch threads
(studio/cli_process.py's `threads_per_job`). A dispatcher claims a run before starting it
(studio/run_queue.py), so two studios never start one run twice.

Everything a job prints goes to `<runs_dir>/.jobs/<time>-<random>.log`; when the CLI refuses a
job (unknown data set, bad option: exit code 2 before any run folder exists), its one-line
"studio: error: ..." becomes the `StudioError` that the UI shows (studio/cli_process.py reads
what the CLI printed). How one job's process is started, its command line and its log file,
is studio/job_launch.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelines.core.errors import StudioError
from pipelines.registry import get_entry
from pipelines.core.runs import RunFolder

from . import run_queue
from .cli_process import run_to_the_end, threads_per_job
from .guards import confine_data_spec
from .job_launch import Job, resume_command, train_command, wait_for_run_folder, whole_steps
from .started_jobs import StartedJobs

ACTIVE_STATUSES = ("queued", "running")

log = logging.getLogger(__name__)


class JobManager:
    """Starts, queues, watches and stops training jobs for the run folders under `runs_dir`;
    at most `max_running` of them train at once. `dispatching=False` (a read-only studio):
    queued runs are left for another studio or `studio resume`."""

    def __init__(self, runs_dir: str | os.PathLike, *, max_running: int = 1,
                 python: str = sys.executable, cwd: str | os.PathLike | None = None,
                 start_timeout: float = 120.0, dispatching: bool = True):
        if int(max_running) < 1:
            raise StudioError(f"the number of jobs at once must be at least 1, not {max_running}")
        self.runs_dir = Path(runs_dir).resolve()
        self.max_running = int(max_running)
        self.threads = threads_per_job(self.max_running)   # each training job's share
        self.dispatching = dispatching
        self.python = python
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()  # relative data paths as typed
        self.start_timeout = start_timeout
        self._started = StartedJobs(self.runs_dir, self.cwd)   # the processes it launched
        self._dispatch_lock = threading.Lock()   # one dispatcher (and stop) at a time
        self._last_dispatch = 0.0
        self._closing = threading.Event()
        self._last_inspection: tuple[tuple[str, ...], str] | None = None   # (command, report)

    # --- starting ------------------------------------------------------------------------
    def start(self, pipeline: str, data: str, steps: int | float | None = 0,
              extra_set: dict[str, object] | None = None,
              extra_args: list[str] | None = None) -> str:
        """Queue a training job and return its run id once the CLI has checked it and created
        the run folder (status queued); it starts training at once when a slot is free.

        Raises StudioError with the CLI's own message when it refuses the job, or when it has
        not reported a run folder within `start_timeout` seconds (it keeps starting then, and
        the run shows up in the folder when it does)."""
        pipeline, data = (pipeline or "").strip(), (data or "").strip()
        entry = get_entry(pipeline)  # an unknown pipeline is refused here, in words
        if not data:
            raise StudioError("choose a data set (or type folder:PATH or text:PATH)")
        confine_data_spec(data, self.runs_dir, getattr(self, "data_dirs", ()), self.cwd)
        steps = whole_steps(steps)
        # Classic models are fit in one go (seconds), not trained by steps: nothing to queue.
        queue = [] if entry.trains == "fit" else ["--queue"]
        cmd = train_command(self.python, self.runs_dir, pipeline, data, steps, extra_set,
                            [*queue, *(extra_args or [])])
        run_id = wait_for_run_folder(self._started.launch(cmd), self.start_timeout)
        self.dispatch()
        return run_id

    def inspect(self, pipeline: str, data: str, extra_set: dict[str, object] | None = None,
                timeout: float = 300.0) -> str:
        """`studio inspect PIPELINE --data D --set ...`: every network of the run these options
        describe, layer by layer (one training step in a scratch folder), as Markdown. The same
        request as the one before is answered from that one's report: the Train tab's live
        inspection asks again with unchanged values after a burst of changes."""
        import json
        from pipelines.services.inspector import as_markdown     # torch-free formatting
        pipeline, data = (pipeline or "").strip(), (data or "").strip()
        if not data:
            raise StudioError("choose a data set (or type folder:PATH or text:PATH)")
        confine_data_spec(data, self.runs_dir, getattr(self, "data_dirs", ()), self.cwd)
        cmd = [self.python, "-m", "pipelines", "--runs-dir", str(self.runs_dir), "inspect",
               pipeline, "--data", data, "--json"]
        for key, value in (extra_set or {}).items():
            cmd += ["--set", f"{key}={value}"]
        last = self._last_inspection
        if last is not None and last[0] == tuple(cmd):
            return last[1]
        report = as_markdown(json.loads(run_to_the_end(cmd, self.cwd, timeout, "the inspector",
                                                       "try a smaller batch or model")))
        self._last_inspection = (tuple(cmd), report)
        return report

    def dry_run(self, pipeline: str, data: str, steps: int | float | None = 0,
                extra_set: dict[str, object] | None = None, timeout: float = 600.0) -> str:
        """`studio train ... --dry-run`: a few steps in a scratch folder (nothing is written
        under runs_dir), waited for here. Returns the CLI's report (speed, peak memory, disk
        per checkpoint, ETA of the configured steps); StudioError with the CLI's message when
        it refuses the config."""
        pipeline, data = (pipeline or "").strip(), (data or "").strip()
        if get_entry(pipeline).trains == "fit":
            raise StudioError(f"{pipeline} is fit in one go in seconds, not trained by steps: "
                              f"there is nothing to dry-run; Start fits it")
        if not data:
            raise StudioError("choose a data set (or type folder:PATH or text:PATH)")
        confine_data_spec(data, self.runs_dir, getattr(self, "data_dirs", ()), self.cwd)
        cmd = train_command(self.python, self.runs_dir, pipeline, data, whole_steps(steps),
                            extra_set, ["--dry-run"])
        return run_to_the_end(cmd, self.cwd, timeout, "the dry run",
                              "try a smaller batch or model")

    def resume(self, run_id: str, steps: int | float | None = 0) -> str:
        """Queue a stopped, failed or interrupted run to continue from its last checkpoint
        (it keeps its folder, curves and samples). `steps`: a new total, 0 keeps the old one.
        Returns a message for the user."""
        self.poll()
        run = self._run_folder(run_id)
        steps = whole_steps(steps)
        with self._dispatch_lock:
            info = run.info()
            status = info.get("status", "?")
            if run.trainer_alive(info):
                raise StudioError(f"run {run.id} is still training; stop it first")
            if status == "queued":
                raise StudioError(f"run {run.id} is already queued")
            if status == "done" and not steps:
                raise StudioError(f"run {run.id} is done; give a larger total step count to "
                                  f"train it further")
            if steps and steps <= info.get("step", 0):
                raise StudioError(f"run {run.id} is at step {info.get('step')}; give a total "
                                  f"step count above that")
            changes: dict[str, object] = {"status": "queued", "message": ""}
            if steps:
                changes.update(total_steps=steps, trainer={**info.get("trainer", {}),
                                                           "steps": steps})
            run.update_info(**changes)
            run_queue.release(run)
            # A process of the run's last stint may still be exiting: until it has, it counts
            # as live (no second start), but its exit says nothing about this new stint.
            self._started.settle(run.id)
        self.dispatch()
        return self.queue_message(run.id, "resuming run")

    def queue_message(self, run_id: str, what: str) -> str:
        ahead = self.queue_position(run_id)
        if ahead is None:
            return f"{what} {run_id}: it is starting"
        return f"{what} {run_id}: queued, waiting for a free slot ({ahead} ahead)"

    def log_path(self, run_id: str) -> Path | None:
        job = self.job(run_id) or next((j for j in reversed(self.jobs())
                                        if j.run_id == run_id), None)
        return job.log_path if job is not None else None

    # --- the queue -----------------------------------------------------------------------
    def dispatch(self) -> list[str]:
        """Start the oldest queued runs while fewer than `max_running` runs train. Returns
        the ids of the runs it started."""
        with self._dispatch_lock:
            self._last_dispatch = time.monotonic()
            self._started.reap()
            if not self.dispatching:
                return []
            queued, live = self._scan()
            started = []
            for run in queued:
                if len(live) >= self.max_running:
                    break
                if run.id in live or not run_queue.claim(run):
                    continue
                try:
                    job = self._started.launch(
                        resume_command(self.python, self.runs_dir, run.id), trains=True,
                        threads=self.threads)
                except StudioError as e:
                    run_queue.release(run)
                    run.update_info(status="failed", message=str(e))
                    continue
                job.run_id = run.id
                run_queue.record(run, job.process.pid)
                live.add(run.id)
                started.append(run.id)
            return started

    def queue_position(self, run_id: str) -> int | None:
        """How many queued runs start before `run_id`; None when it is not waiting (it is
        being started, or not queued)."""
        queued, live = self._scan()
        waiting = [r.id for r in queued if r.id not in live]
        return waiting.index(run_id) if run_id in waiting else None

    def _scan(self) -> tuple[list[RunFolder], set[str]]:
        """(queued runs, oldest first; ids of the runs that train or are being started,
        including this manager's processes that have not written their pid yet)."""
        queued, live = run_queue.scan(self.runs_dir)
        return queued, live | self._started.training_run_ids()

    def run_queue_in_background(self, interval: float = 2.0) -> threading.Thread:
        """Dispatch queued runs every `interval` seconds in a daemon thread, so the queue moves
        on with no page open. It ends with `stop_all`."""
        def loop():
            while not self._closing.wait(interval):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - a bad folder must not end the queue
                    log.exception("the job queue failed to dispatch")
        thread = threading.Thread(target=loop, name="studio-job-queue", daemon=True)
        thread.start()
        return thread

    # --- watching ------------------------------------------------------------------------
    def poll(self) -> None:
        """Reap finished processes, learn the run ids of late starters, and start queued runs
        when slots are free (at most once a second: pages poll often)."""
        if time.monotonic() - self._last_dispatch >= 1.0:
            self.dispatch()
        else:
            with self._dispatch_lock:
                self._started.reap()

    def jobs(self) -> list[Job]:
        self.poll()
        return self._started.all()

    def job(self, run_id: str) -> Job | None:
        """The newest training process this manager started for `run_id`."""
        for job in reversed(self.jobs()):
            if job.run_id == run_id and job.trains:
                return job
        return None

    def exit_codes(self) -> dict[str, int]:
        """{run id: exit code} of the runs whose newest training process (started by this
        manager) has exited."""
        newest = {j.run_id: j.returncode for j in self.jobs() if j.trains and j.run_id}
        return {run_id: code for run_id, code in newest.items() if code is not None}

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
        """Ask a running run to save and stop (a STOP file in its folder; works for any run
        under runs_dir, whoever started it), or cancel a queued one (it is marked stopped
        without training). Returns a message for the user."""
        run = self._run_folder(run_id)
        self.poll()
        with self._dispatch_lock:
            status = run.info().get("status", "?")
            if status == "queued":
                run.update_info(status="stopped", message="cancelled before it started; "
                                "Resume queues it again")
                run_queue.release(run)
                starting = self._started.live_training_job(run.id)
                if starting is not None:   # being started by us: end it before it trains
                    starting.cancelled = True
                    starting.process.terminate()   # once training, SIGTERM saves and stops
                return f"cancelled queued run {run.id}: it did not train (status stopped)"
        job = self.job(run.id)
        if job is not None and job.returncode is not None:
            raise StudioError(f"run {run.id} is not running: its process exited with code "
                              f"{job.returncode} (status {status})")
        if status not in ACTIVE_STATUSES:
            raise StudioError(f"run {run.id} is {status}, not running; there is nothing to stop")
        if status == "running" and not run.trainer_alive():
            kept = run.checkpoint_steps()
            raise StudioError(f"run {run.id} is interrupted: its training process is gone, so "
                              f"there is nothing to stop; Resume continues it from "
                              f"{f'step {kept[-1]}' if kept else 'the start (no checkpoint yet)'}")
        run.request_stop()
        return f"asked run {run.id} to stop: it saves a checkpoint and stops at the next step"

    def stop_all(self, timeout: float = 60.0) -> None:
        """End the background queue, ask every live process this manager started to stop
        (SIGTERM: a training one saves and stops), and wait for them (then kill). Queued runs
        stay queued for the next studio."""
        self._closing.set()
        self._started.end_all(timeout)

    def _run_folder(self, run_id: str) -> RunFolder:
        return RunFolder.by_id(self.runs_dir, run_id)
