"""Run state that never lies: what happens around the checkpoints when a trainer dies, two
trainers race, or the disk fills (issue: run state, one trainer per run, limits).

Real processes where a real process matters: a trainer killed with SIGKILL, two `studio
resume` processes of one run, a file-size limit (RLIMIT_FSIZE) in a child. The kill-at-random
test kills a trainer at 20 points of one run, checkpoint writes included, and checks that the
run ends exactly where an uninterrupted one does.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.core import checkpoints as ckpt
from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.liveness import TrainerLock, trainer_lock_held
from pipelines.core.runs import RunFolder, list_runs
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from studio.jobs import JobManager
from studio.live import progress_text

from helpers import TINY, records

REPO = Path(__file__).resolve().parents[1]
DCGAN = {"width": 8, "z_dim": 8}

# A trainer in a child process that SIGKILLs itself at its N-th "event": a training step, a
# file's fsync (every durable write: metrics lines, grids, run.json, each checkpoint file) or
# a rename (a checkpoint folder or an atomic write put in place). N = 0: never.
CHILD = r"""
import os, signal, sys
from pipelines.core.runs import RunFolder
from pipelines.core.training_run import train_run
run, kill_at = RunFolder(sys.argv[1]), int(sys.argv[2])
count = [0]
def event():
    count[0] += 1
    if count[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
for name in ("fsync", "rename", "replace"):
    real = getattr(os, name)
    def wrapped(*a, _real=real, **k):
        event()
        return _real(*a, **k)
    setattr(os, name, wrapped)
status = train_run(run, resume=sys.argv[3] == "resume",
                   callbacks=(lambda kind, e: event() if kind == "step" else None,))
print("events", count[0], status)
"""


def child(run, kill_at=0, mode="resume", **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", CHILD, str(run.path), str(kill_at), mode],
                          env=env, capture_output=True, text=True, timeout=300, **kwargs)


# Twenty kills need twenty-odd trainer processes, and each new Python spent most of its few
# seconds importing torch and the studio. A "zygote" child imports them once (and runs no
# torch op, so no thread pool exists yet to be broken by a fork) and forks one process per
# stint: each is still a whole trainer that SIGKILLs itself, reported by its exit status.
ZYGOTE = r"""
import json, os, sys, traceback
import pipelines.core.runs, pipelines.core.training_run, pipelines.gan
for line in sys.stdin:
    path, kill_at, mode, out = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.argv = ["-c", path, str(kill_at), mode]
            exec(compile(CHILD, "<child>", "exec"), {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class ForkedTrainers:
    """child() for many stints: `run(run, kill_at)` -> (returncode, output) of a trainer
    forked from the zygote."""

    def __init__(self, folder: Path):
        # One thread each: numpy's OpenBLAS starts a thread pool as it is imported, and a
        # fork copies only the forking thread (the pools' fork handlers cope, but a
        # single-threaded zygote needs none).
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.out = folder / "stint.log"
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", f"CHILD = {CHILD!r}\n" + ZYGOTE], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, run, kill_at=0, mode="resume") -> tuple[int, str]:
        self.zygote.stdin.write(json.dumps([str(run.path), kill_at, mode, str(self.out)]) + "\n")
        self.zygote.stdin.flush()
        pid = self.zygote.stdout.readline()
        assert pid, "the zygote died"
        # as child()'s timeout: a stint that hangs is killed and fails the test, not the suite
        hung = threading.Event()
        watchdog = threading.Timer(300, lambda: (hung.set(), os.kill(int(pid), signal.SIGKILL)))
        watchdog.start()
        code = self.zygote.stdout.readline()
        watchdog.cancel()
        assert code and not hung.is_set(), f"a forked trainer hung:\n{self.out.read_text()}"
        return int(code), self.out.read_text()

    def close(self) -> None:
        self.zygote.stdin.close()
        self.zygote.wait(timeout=60)


def queued(runs_dir, name, **trainer):
    return start_run("dcgan", "digits", config_overrides=DCGAN,
                     trainer_overrides={**TINY, **trainer}, runs_dir=runs_dir, name=name)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- a dead trainer is never `running` -------------------------------------------------------
def test_a_killed_run_reads_interrupted_everywhere_and_resumes_without_duplicates(runs_dir):
    whole = queued(runs_dir, "whole", steps=8, checkpoint_every=0, sample_every=0)
    assert child(whole).returncode == 0
    run = queued(runs_dir, "killed", steps=8, checkpoint_every=0, sample_every=0)
    killed = child(run, kill_at=12)              # a few steps and metric lines in, no checkpoint
    assert killed.returncode == -9
    info = run.info()
    assert info["status"] == "running" and run.checkpoint_steps() == []
    assert [r["step"] for r in run.metrics()]     # it had logged steps
    assert run.display_status() == "interrupted"
    assert next(r for r in list_runs(runs_dir) if r["id"] == run.id)["status"] == "interrupted"
    assert progress_text(run).startswith("**interrupted**")
    assert "Resume continues from the start" in progress_text(run)
    with pytest.raises(StudioError, match="interrupted.*nothing to stop"):
        JobManager(runs_dir).stop(run.id)
    assert main(["--runs-dir", str(runs_dir), "resume", run.id, "--quiet"]) == 0
    assert records(run) == records(whole)        # every step once, as if never killed


def test_two_resumes_of_one_run_train_it_once(runs_dir, capsys):
    assert main(["--runs-dir", str(runs_dir), "train", "dcgan", "--data", "digits",
                 "--queue", "--steps", "30", "--batch-size", "16", "--log-every", "1",
                 "--sample-every", "0", "--checkpoint-every", "0", "--set", "width=8",
                 "--set", "z_dim=8", "--name", "twice"]) == 0
    (run,) = [RunFolder(p) for p in runs_dir.iterdir()]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pipelines", "--runs-dir", str(runs_dir), "resume", run.id,
           "--quiet"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    time.sleep(1)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    codes = sorted([first.returncode, second.returncode])
    loser = second if second.returncode else first
    assert codes == [0, 2], (out, err, second.stderr)
    lines = (loser.stderr if loser is second else err).strip().splitlines()
    assert len(lines) == 1 and "already being trained by another process" in lines[0]
    steps = [r["step"] for r in run.metrics() if "loss_d" in r]
    assert steps == list(range(1, 31))           # each step logged once
    assert run.info()["status"] == "done"


def test_the_trainer_lock_refuses_a_second_trainer_before_it_touches_anything(runs_dir):
    run = queued(runs_dir, "held")
    before = run.info_path.read_bytes()
    with TrainerLock(run.path) as lock:
        assert lock.acquire() and trainer_lock_held(run.path)
        with pytest.raises(StudioError, match="already being trained"):
            train_run(run, resume=True)
        assert main(["--runs-dir", str(runs_dir), "resume", run.id]) == 2
        assert run.info_path.read_bytes() == before and not run.metrics()
    assert not trainer_lock_held(run.path)
    assert train_run(run, resume=True) == "done" and not trainer_lock_held(run.path)


# --- the end of a run, a full disk, leftovers --------------------------------------------------
def test_a_full_disk_at_the_final_checkpoint_fails_the_run_in_words(runs_dir):
    run = queued(runs_dir, "full", steps=20, checkpoint_every=0, sample_every=0,
                 log_every=5)
    limit = 48 * 1024   # bytes per file: run.json and the metrics fit, the checkpoint not

    def small_files():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    done = child(run, preexec_fn=small_files)
    assert done.returncode != 0
    info = run.info()
    assert info["status"] == "failed", info
    assert "File too large" in info["message"] and "disk" in info["message"]
    assert "none yet: a resume starts from step 0" in info["message"]
    assert run.checkpoint_steps() == [] and list(run.state_dir.glob(".tmp-*"))
    assert run.display_status() == "failed"
    # resumable: the next start cleans the half-written checkpoint and finishes
    assert child(run).returncode == 0
    assert run.info()["status"] == "done" and run.checkpoint_steps() == [20]
    assert not list(run.state_dir.glob(".tmp-*"))
    assert [r["step"] for r in run.metrics() if "loss_d" in r] == [5, 10, 15, 20]


def test_leftovers_of_interrupted_writes_are_cleaned_at_the_next_start(runs_dir):
    run = queued(runs_dir, "leftovers", steps=4)
    stale = [run.path / ".model.safetensors.x1y2.tmp", run.samples_dir / ".step_000004.png.q.tmp",
             run.state_dir / ".tmp-step_000004-999"]
    run.state_dir.mkdir()
    stale[2].mkdir()
    for p in stale[:2]:
        p.write_bytes(b"half")
    assert train_run(run, resume=True) == "done"
    assert not any(p.exists() for p in stale)


def test_resume_below_the_current_step_is_refused_and_changes_nothing(runs_dir, capsys):
    run = queued(runs_dir, "short", steps=4)
    assert train_run(run) == "done"
    before = run.info_path.read_bytes()
    capsys.readouterr()
    assert main(["--runs-dir", str(runs_dir), "resume", run.id, "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at step 4" in err[0]
    assert run.info_path.read_bytes() == before
    with pytest.raises(StudioError, match="at least that, not 2"):
        train_run(run, resume=True, total_steps=2)


def test_the_skipped_files_note_survives_the_start_of_training(runs_dir, tmp_path):
    from PIL import Image
    folder = tmp_path / "pics"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(20):
            Image.new("L", (8, 8), 40 * i % 255).save(folder / cls / f"{i}.png")
    (folder / "a" / "broken.png").write_bytes(b"not a png")
    run = start_run("dcgan", f"folder:{folder}", config_overrides=DCGAN,
                    trainer_overrides={**TINY, "steps": 2}, runs_dir=runs_dir)
    assert "1 unreadable files were skipped" in run.info()["message"]
    assert train_run(run) == "done"
    assert "1 unreadable files were skipped" in run.info()["message"]


# --- kill at 20 random points ----------------------------------------------------------------
def test_twenty_kills_at_random_points_end_exactly_like_an_uninterrupted_run(runs_dir):
    trainer = {"steps": 96, "log_every": 2, "sample_every": 6, "checkpoint_every": 4,
               "keep_checkpoints": 2}
    whole = queued(runs_dir, "whole", **trainer)
    trainers = ForkedTrainers(runs_dir.parent)
    try:
        assert trainers.run(whole)[0] == 0

        run = queued(runs_dir, "killed", **trainer)
        rng, kills, statuses, reached = random.Random(19), 0, [], []
        while kills < 20:
            # within ~110 events of its start: a stint dies during its first steps, log lines,
            # grids or checkpoint writes, sometimes before it saved anything new, so the 20
            # kills fall all along the run's first part and on every kind of write
            code, output = trainers.run(run, kill_at=rng.randint(1, 110))
            if code == 0:
                break   # it finished before its kill point: start over with a fresh run's worth
            assert code == -9, output
            kills += 1
            statuses.append(run.display_status())
            reached.append((run.checkpoint_steps() or [0])[-1])
        assert kills == 20, f"the run finished after {kills} kills; make it longer"
        assert set(statuses) <= {"interrupted", "queued"}   # never `running` with nobody there
        assert len(set(reached)) >= 5, reached     # killed at many stages of the run, not one
        print("checkpoint step at each kill:", reached)
        code, output = trainers.run(run)
        assert code == 0, output
    finally:
        trainers.close()

    assert run.info()["status"] == whole.info()["status"] == "done"
    assert run.info()["step"] == 96
    assert records(run) == records(whole)
    assert folder_bytes(run.samples_dir) == folder_bytes(whole.samples_dir)
    assert run.checkpoint_steps() == whole.checkpoint_steps()
    a, b = ckpt.load_weights(whole.weights_path), ckpt.load_weights(run.weights_path)
    assert a[1] == b[1] and all(a[0][k].equal(b[0][k]) for k in a[0])
    assert not list(run.path.rglob("*.tmp")) and not list(run.state_dir.glob(".tmp-*"))


def test_sample_out_into_a_missing_folder_is_refused_without_creating_it(runs_dir, tmp_path,
                                                                          capsys):
    run = queued(runs_dir, "out", steps=2)
    assert train_run(run) == "done"
    target = tmp_path / "no" / "such" / "dir" / "o.png"
    assert main(["--runs-dir", str(runs_dir), "sample", run.id, "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "no").exists()


def test_a_full_disk_from_the_cli_is_one_line_and_a_failed_run(runs_dir):
    """The issue's reproduction: `(ulimit -f 25; studio train dcgan ... --checkpoint-every 0)`."""
    # self_conditioning=0: its clusters' centroids make run.json itself larger than 12.5 KB, and
    # the run would fail as it starts (one line too), not at its checkpoint.
    def small_files():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (25 * 512, 25 * 512))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "--runs-dir", str(runs_dir), "train", "dcgan",
         "--data", "digits", "--steps", "20", "--checkpoint-every", "0", "--sample-every", "0",
         "--set", "width=8", "--set", "z_dim=8", "--set", "self_conditioning=0",
         "--batch-size", "16", "--quiet"],
        env=env, capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "studio resume" in lines[0]
    (run,) = [RunFolder(p) for p in runs_dir.iterdir()]
    assert run.info()["status"] == "failed" and run.display_status() == "failed"


def test_the_page_refuses_to_resume_a_run_another_process_trains(runs_dir):
    run = queued(runs_dir, "busy", steps=2)
    run.update_info(status="stopped")
    jobs = JobManager(runs_dir, dispatching=False)
    with TrainerLock(run.path):           # e.g. `studio resume` in a terminal has it
        with pytest.raises(StudioError, match="still training"):
            jobs.resume(run.id)
        assert run.info()["status"] == "stopped"


def test_the_pages_resume_continues_an_interrupted_run_without_duplicates(runs_dir):
    whole = queued(runs_dir, "whole", steps=8, checkpoint_every=4, sample_every=0)
    assert child(whole).returncode == 0
    run = queued(runs_dir, "killed", steps=8, checkpoint_every=4, sample_every=0)
    assert child(run, kill_at=40).returncode == -9        # past its first checkpoint
    assert run.display_status() == "interrupted" and run.checkpoint_steps() == [4]
    jobs = JobManager(runs_dir, start_timeout=120)
    assert "resuming run" in jobs.resume(run.id)          # the Resume button's call
    assert jobs.wait(run.id, 180) == 0
    assert run.info()["status"] == "done" and records(run) == records(whole)
