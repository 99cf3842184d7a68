"""The studio's first page and its job manager: torch-free UI, tables read from run folders,
jobs that start, fail in words, finish and stop, and `launch.py` serving the page."""

import ast
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import gradio as gr
import pytest

from helpers import free_port, wait_for
from pipelines.core.errors import StudioError
from pipelines.core.liveness import TrainerLock
from pipelines.core.runs import RunFolder, list_runs
from studio import live
from studio.app import build_app
from studio.common import format_created, shows_errors
from studio.tabs.runs import run_rows
from studio.jobs import JobManager

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--set", "width=8", "--set", "z_dim=8", "--batch-size", "16", "--log-every", "1",
             "--no-final-eval"]


def status_of(run):
    return run.info().get("status")


@pytest.fixture
def jobs(runs_dir):
    manager = JobManager(runs_dir, start_timeout=60)
    yield manager
    manager.stop_all(timeout=30)


def fake_run(runs_dir, **info):
    run = RunFolder.create(runs_dir, "x", {"pipeline": "dcgan", "data": "digits",
                                           "status": "running", "step": 5, "total_steps": 10,
                                           **info})
    run.log_metrics({"step": 5, "loss_d": 0.5, "loss_g": 1.25, "time": 1.0})
    # a live trainer holds the run's lock; without it a `running` run reads `interrupted`
    run.trainer_lock = TrainerLock(run.path)
    run.trainer_lock.acquire()
    return run


# --- the page, without a browser --------------------------------------------------------

def test_the_studio_never_imports_torch(runs_dir):
    code = ("import sys, studio.app; studio.app.build_app(sys.argv[1]); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m in ('pipelines.core.trainer', 'pipelines.gan.pipeline')); "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code, str(runs_dir)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_studio_file_names_a_pipeline_or_a_family():
    """A new family shows up in the UI with no UI code: the studio reads the registry and the
    sampling worker's descriptions, so no string in it is a pipeline's or a family's name.
    (The kinds, image / text / classifier / classic, say which tab lists a run; some families
    share those words, which is allowed.)"""
    from pipelines.registry import list_pipelines
    entries = list_pipelines()
    kinds = {e.kind for e in entries}
    names = {e.name for e in entries} | ({e.family for e in entries} - kinds)
    for path in sorted((REPO / "studio").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                   and isinstance(node.value, str) and id(node) not in docstrings}
        named = sorted(names & strings)   # docstrings may show an example, code may not
        assert not named, f"{path.relative_to(REPO)} names {named}"


def test_build_app_returns_blocks_with_its_job_manager(runs_dir):
    app = build_app(runs_dir)
    assert isinstance(app, gr.Blocks)
    assert app.title == "Generative Media Studio"
    assert app.studio_jobs.runs_dir == runs_dir.resolve()


def test_runs_table_rows_come_from_the_run_folders(runs_dir):
    assert run_rows(runs_dir) == []
    run = fake_run(runs_dir)
    run.log_metrics({"step": 5, "eval/accuracy": 0.9})  # the last line may have no losses
    created = format_created(run.info()["created"])
    assert run_rows(runs_dir) == [[run.id, "dcgan", "digits", "running", "5/10",
                                   "loss_d=0.5 loss_g=1.25", "", "", "", "", created]]
    run.update_info(eval={"fd": 9.25, "fd_floor": 1.85, "fd_pixels": 2.5, "fd_pixels_floor": 1.0,
                          "recall": 0.5, "recall_floor": 0.9},
                    device="cuda:0", precision="bf16", processes=2, peak_memory_mb=1843.2)
    assert run_rows(runs_dir)[0][6:10] == [
        "fd=9.25 (5.0x floor) fd_pixels=2.5 (2.5x floor) recall=0.5", "cuda:0 · bf16", "2",
        "1.8 GB"]
    # a process this UI started that died while run.json still says running
    assert run_rows(runs_dir, {run.id: -9})[0][3] == "running? (process exited with code -9)"
    run.trainer_lock.release()   # ... and once its lock is free, nobody trains it
    assert run_rows(runs_dir)[0][3] == "interrupted (Resume: from step 0)"
    run.update_info(checkpoint_step=4)
    assert run_rows(runs_dir)[0][3] == "interrupted (Resume: from step 4)"


def test_live_view_shows_grids_progress_and_a_damaged_run_in_words(runs_dir):
    run = fake_run(runs_dir, message="1 unreadable file was skipped")
    assert live.sample_grids(run) == []
    for step in (2, 10):
        run.sample_path(step).write_bytes(b"\x89PNG fake")
    assert live.sample_grids(run) == [(2, run.sample_path(2)), (10, run.sample_path(10))]
    text = live.progress_text(run)
    assert "**running**" in text and "5/10" in text and "1 unreadable file was skipped" in text
    run.info_path.write_text("{not json")
    assert live.progress_text(run).startswith("**damaged**")
    assert run_rows(runs_dir)[0][3] == "damaged"


def test_handler_errors_become_messages():
    @shows_errors(2)
    def refuses():
        raise StudioError("no such thing")

    @shows_errors(1)
    def breaks():
        raise RuntimeError("boom")

    with pytest.warns(UserWarning, match="no such thing"):
        assert len(refuses()) == 2
    with pytest.warns(UserWarning, match="boom"):
        breaks()


def test_curve_tables_have_numeric_dtypes_even_empty_and_an_empty_plot_is_none(runs_dir):
    """gr.LinePlot tells the browser each column's kind from its dtype, and Gradio 6's plot
    keeps the kinds (and the lines) of the first table it draws: an empty object-dtype frame
    made the y axis categorical, one tick label per value, and no line was drawn."""
    run = RunFolder.create(runs_dir, "x", {"pipeline": "dcgan", "data": "digits"})
    plot = gr.LinePlot(x="step", y="value", color="series")
    for frame in live.curve_frames(run):           # no metrics yet
        assert len(frame) == 0 and live.plot_value(frame) is None
        assert plot.postprocess(frame).datatypes == {
            "step": "quantitative", "value": "quantitative", "series": "nominal"}
    run.log_metrics({"time": 1.0, "loss_g": 0.5})  # no step: no place on the x axis
    run.log_metrics({"step": 5, "loss_g": 1, "loss_d": 0.25, "val/elbo": -3})
    train, checks = live.curve_frames(run)
    assert live.plot_value(train) is train and live.plotted_series(train) == ("loss_d", "loss_g")
    assert str(train["step"].dtype) == "int64" and str(train["value"].dtype) == "float64"
    for frame in (train, checks):
        assert plot.postprocess(frame).datatypes == {
            "step": "quantitative", "value": "quantitative", "series": "nominal"}
    assert not live.needs_redraw((), ("loss_g",))             # from an empty plot: it draws
    assert not live.needs_redraw(("loss_g",), ("loss_g",))    # same lines: the data changes
    assert live.needs_redraw(["loss_g"], ("loss_d", "loss_g"))  # a new line: blank it first


def test_the_live_view_blanks_a_plot_before_it_shows_new_lines(runs_dir):
    app = build_app(runs_dir)
    refresh = next(f.fn for f in app.fns.values() if f.fn and f.fn.__name__ == "refresh")
    run = fake_run(runs_dir)
    first = list(refresh(run.id, 0.0, 0, [()] * 4))
    assert len(first) == 1   # an empty plot draws the first table as it comes
    progress, losses, diagnostics, rates, validation, note, *_, drawn = first[0]
    assert "**running**" in progress and validation is None and diagnostics is None
    assert "*validation*: no validation numbers" in note and "*losses*" not in note
    assert list(losses["series"].unique()) == ["loss_d", "loss_g"]
    assert drawn == [("loss_d", "loss_g"), (), (), ()]
    assert len(list(refresh(run.id, 0.0, 0, drawn))) == 1   # same lines: just the new data
    # One chart per group, each on its own axis: a new loss joins the losses (whose chart is
    # blanked first), a gradient norm of ~20 goes to the diagnostics, the learning rate to
    # its own, and a count is not drawn at all.
    run.log_metrics({"step": 10, "loss_d": 0.4, "loss_g": 1.0, "loss_aux": 0.1,
                     "grad_norm_d": 20.0, "lr": 2e-4, "val/x": 1, "val/tokens": 120000})
    blank, full = list(refresh(run.id, 0.0, 0, drawn))
    assert blank[1] is None and isinstance(blank[2], dict)  # losses blanked, the rest skipped
    assert full[-1] == [("loss_aux", "loss_d", "loss_g"), ("grad_norm_d",), ("lr",), ("val/x",)]
    assert full[5] == ""                                    # no chart is empty now
    assert set(full[1]["series"]) == {"loss_aux", "loss_d", "loss_g"}
    app.studio_jobs.stop_all(timeout=10)


# --- jobs: real CLI subprocesses --------------------------------------------------------

def test_a_job_the_cli_refuses_gives_its_message_and_no_run(jobs, runs_dir):
    with pytest.raises(StudioError, match="Unknown data set 'nope'"):
        jobs.start("dcgan", "nope", 6)
    with pytest.raises(StudioError, match="unknown pipeline"):
        jobs.start("nope", "digits", 6)
    with pytest.raises(StudioError, match="whole number"):
        jobs.start("dcgan", "digits", -3)
    assert list_runs(runs_dir) == []
    assert [p.name for p in runs_dir.iterdir()] == [".jobs"]
    with pytest.raises(StudioError, match="no run"):
        jobs.stop("nope")


def test_stop_writes_STOP_and_the_run_ends_stopped(jobs, runs_dir):
    run_id = jobs.start("dcgan", "digits", 100000, extra_set={"width": 8, "z_dim": 8},
                        extra_args=["--batch-size", "16", "--log-every", "1"])
    run = RunFolder(runs_dir / run_id)
    wait_for(lambda: status_of(run) == "running" and run.metrics(), 60, "the run to train")
    assert "stop" in jobs.stop(run_id)
    assert run.stop_requested() or status_of(run) == "stopped"
    wait_for(lambda: status_of(run) == "stopped", 60, "the run to stop")
    info = run.info()
    assert 0 < info["step"] < 100000 and "studio resume" in info["message"]
    assert not run.stop_requested()  # the trainer clears it once stopped
    # Resume at once (as a person clicks it: the old process may still be exiting) queues it
    # again; it trains on from its checkpoint once the old process is gone.
    stint = jobs.job(run_id)
    assert "resuming run" in jobs.resume(run_id)
    assert stint.process.wait(30) == 0
    wait_for(lambda: jobs.poll() or (status_of(run) == "running" and
                                     run.info()["step"] > info["step"]), 60, "the resumed run")


# --- the queue ---------------------------------------------------------------------------

def test_queued_jobs_run_one_after_the_other_to_done(runs_dir):
    jobs = JobManager(runs_dir, max_running=1, start_timeout=60)
    try:
        first = RunFolder(runs_dir / jobs.start("dcgan", "digits", 12, extra_args=TINY_ARGS))
        second = RunFolder(runs_dir / jobs.start("dcgan", "digits", 6, extra_args=TINY_ARGS))
        assert status_of(second) == "queued" and jobs.queue_position(second.id) == 0
        assert jobs.queue_position(first.id) is None   # being started, not waiting
        assert "waiting for a free slot: 0 ahead" in live.progress_text(second, None, 0)
        both = []

        def second_done():
            jobs.poll()
            statuses = (status_of(first), status_of(second))
            both.append(statuses)
            return statuses == ("done", "done")

        wait_for(second_done, 120, "both runs to be done")
        # Never two at once: the second was queued until the first had finished.
        assert not any(s == ("running", "running") for s in both)
        assert ("running", "queued") in both
        assert jobs.wait(second.id, 30) == 0 and jobs.exit_codes() == {first.id: 0,
                                                                       second.id: 0}
        row = run_rows(runs_dir, jobs.exit_codes())[0]
        assert row[:5] == [second.id, "dcgan", "digits", "done", "6/6"] and "loss_g=" in row[5]
        with pytest.raises(StudioError, match="not running"):
            jobs.stop(second.id)
    finally:
        jobs.stop_all(timeout=30)


def test_jobs_at_once_share_the_cores_out_and_each_run_says_its_threads(runs_dir,
                                                                          monkeypatch):
    """Two jobs of one thread per core each slowed each other 4-7x (studio/cli_process.py):
    with two at a time each trains on half the cores, as its run.json records; the studio's
    own OMP_NUM_THREADS (the test workers' 1) would win, so it is unset here."""
    from studio.cli_process import threads_per_job
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert threads_per_job(1) is None and threads_per_job(2) == max(1, cores // 2)
    assert threads_per_job(4 * cores) == 1
    jobs = JobManager(runs_dir, max_running=2, start_timeout=60)
    try:
        runs = [RunFolder(runs_dir / jobs.start("dcgan", "digits", 6, extra_args=TINY_ARGS))
                for _ in range(2)]
        wait_for(lambda: jobs.poll() or all(status_of(r) == "done" for r in runs), 120,
                 "both runs to be done")
        assert [r.info()["threads"] for r in runs] == [max(1, cores // 2)] * 2
    finally:
        jobs.stop_all(timeout=30)


def test_a_queued_run_is_cancelled_and_a_new_manager_starts_a_leftover_one(runs_dir):
    from helpers import TINY
    from pipelines.core.run_setup import start_run
    busy = fake_run(runs_dir, pid=os.getpid(), host=socket.gethostname())  # holds the slot
    # Queued as `studio train --queue` queues them (jobs.start is tested above).
    cancelled, leftover = (start_run("dcgan", "digits", config_overrides={"width": 8, "z_dim": 8},
                                     trainer_overrides={**TINY, "steps": 6}, runs_dir=runs_dir,
                                     name=name).id for name in ("cancelled", "leftover"))
    jobs = JobManager(runs_dir, max_running=1, start_timeout=60)
    assert jobs.dispatch() == []   # the slot is taken
    assert [status_of(RunFolder(runs_dir / r)) for r in (cancelled, leftover)] == ["queued"] * 2
    assert jobs.queue_position(leftover) == 1
    assert "cancelled" in jobs.stop(cancelled)
    run = RunFolder(runs_dir / cancelled)
    assert status_of(run) == "stopped" and run.info()["step"] == 0 and run.metrics() == []
    assert jobs.queue_position(leftover) == 0 and jobs.exit_codes() == {}
    del jobs   # the studio closes; the queued run stays queued

    busy.update_info(status="done")   # the slot frees up
    later = JobManager(runs_dir, max_running=1, start_timeout=60)
    try:
        assert later.dispatch() == [leftover]
        wait_for(lambda: status_of(RunFolder(runs_dir / leftover)) == "done", 90,
                 "the leftover run to be done")
        assert later.wait(leftover, 30) == 0 and later.exit_codes() == {leftover: 0}
        assert status_of(run) == "stopped"
    finally:
        later.stop_all(timeout=30)


# --- launch.py ---------------------------------------------------------------------------

def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except OSError:
        return None


def test_launch_serves_the_page(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "launch.py", "--no-browser", "--port", str(port),
                               "--runs-dir", str(tmp_path / "runs")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        status, _ = wait_for(lambda: fetch(base + "/") or server.poll() is not None and
                             (0, "exited"), 60, "the page")
        assert status == 200, server.stdout.read() if server.poll() is not None else status
        status, config = fetch(base + "/config")
        config = json.loads(config)
        assert config["title"] == "Generative Media Studio"
        assert "dcgan" in json.dumps(config["components"])
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
