"""How the page talks to the CLI processes it starts (`python -m pipelines ...`): their
environment, and reading back what they printed: the run folder a job created, or the one-line
error the CLI refused it with ("studio: error: ...").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipelines.core.errors import StudioError

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_FOLDER_PREFIX = "run folder: "
ERROR_PREFIXES = ("studio: error: ", "studio: training failed: ")


def cli_error(lines: list[str]) -> str | None:
    """The CLI's last one-line error among its output lines, without its prefix."""
    for line in reversed(lines):
        for prefix in ERROR_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix):]
    return None


def run_to_the_end(cmd: list[str], cwd: Path, timeout: float, what: str, advice: str) -> str:
    """Run a CLI command that answers and exits (a dry run): its output, or a StudioError
    with the CLI's own message."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=cwd, env=child_env())
    except subprocess.TimeoutExpired:
        raise StudioError(f"{what} took longer than {timeout:.0f} s; {advice}") from None
    except OSError as e:
        raise StudioError(f"could not start {what} ({e})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                 if line.strip()]
        error = cli_error(lines)
        raise StudioError(error if error is not None else
                          f"{what} failed with code {done.returncode}"
                          + (f": {lines[-1][:300]}" if lines else ""))
    return done.stdout.strip()


def child_env(threads: int | None = None) -> dict[str, str]:
    """The CLI's environment: unbuffered output, this checkout importable, and `threads` torch
    threads when given (unless the studio's own environment sets OMP_NUM_THREADS: then that)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def threads_per_job(max_running: int) -> int | None:
    """Torch threads for each of `max_running` training jobs at once: the cores shared out
    (at least one each); None for one job at a time (torch's default: one per core). Two
    jobs of one thread per core each slow each other 4-7x on two cores (OpenMP threads wait
    for a busy core: session 27, stylegan on shapes, 1.7 steps/s each against 7.1 with one
    thread each), so sharing the cores out trains about 4x more in the same time."""
    if max_running <= 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max_running)


def log_lines(log_path: Path) -> list[str]:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def reported_run_folder(log_path: Path) -> str | None:
    """The PATH of the CLI's "run folder: PATH" line in a job's log, once it is there."""
    for line in log_lines(log_path):
        if line.startswith(RUN_FOLDER_PREFIX):
            return line[len(RUN_FOLDER_PREFIX):].strip()
    return None


def failure_message(log_path: Path, returncode: int | None) -> str:
    """Why a job ended before it had a run folder: the CLI's one-line error, else the log's
    last line and the exit code."""
    lines = [line.strip() for line in log_lines(log_path) if line.strip()]
    error = cli_error(lines)
    if error is not None:
        return error
    last = f"; its last output: {lines[-1][:300]}" if lines else ""
    return f"the training process exited with code {returncode} before it started{last} " \
           f"(log: {log_path})"
