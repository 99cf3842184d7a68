"""`--report-to tensorboard`: a run's logged numbers and sample grids reach TensorBoard through
Accelerate's tracker, in the run folder, and read back (with TensorBoard's own reader) as the
same numbers at the same steps as metrics.jsonl, also after a resume that redoes steps."""

import shutil

import pytest

from pipelines.cli import main
from pipelines.core.runs import RunFolder
from pipelines.core.training_run import train_run

pytest.importorskip("tensorboard")

TINY = ["--set", "width=8", "--set", "z_dim=8", "--steps", "8", "--batch-size", "16",
        "--log-every", "2", "--sample-every", "4", "--checkpoint-every", "4",
        "--sample-count", "10", "--seed", "3", "--no-final-eval", "--quiet"]


def read_events(run: RunFolder):
    """TensorBoard's reader over the run's tracker folder: {tag: [(step, value)]} and the
    steps of its sample images."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run.path / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]}
    images = [e.step for e in events.Images("samples")] if "samples" in tags["images"] else []
    return scalars, images


def logged(run: RunFolder) -> dict[str, list]:
    """metrics.jsonl as {name: [(step, value)]}, as a tracker should have it."""
    out: dict[str, list] = {}
    for record in run.metrics():
        for key, value in record.items():
            if key not in ("step", "time") and isinstance(value, (int, float)):
                out.setdefault(key, []).append((record["step"], value))
    return out


def assert_same_numbers(run: RunFolder) -> None:
    scalars, images = read_events(run)
    expected = logged(run)
    assert set(scalars) == set(expected) and "loss_d" in scalars
    for tag, rows in expected.items():
        steps = [s for s, _ in scalars[tag]]
        assert steps == [s for s, _ in rows], tag              # no step twice, none missing
        assert [v for _, v in scalars[tag]] == pytest.approx([v for _, v in rows], rel=1e-6)
    assert images == [4, 8]


def test_a_run_reports_its_numbers_and_grids_to_tensorboard(tmp_path):
    assert main(["--runs-dir", str(tmp_path), "train", "dcgan", "--data", "digits",
                 "--report-to", "tensorboard", *TINY]) == 0
    run = RunFolder(next(tmp_path.iterdir()))
    assert run.info()["trainer"]["report_to"] == "tensorboard"
    assert_same_numbers(run)
    # A resume that redoes steps 5-8 (their checkpoint lost): TensorBoard forgets the first
    # try's steps after the checkpoint, as metrics.jsonl does.
    shutil.rmtree(run.checkpoint_dir(8))
    assert train_run(run, resume=True) == "done"
    assert_same_numbers(run)


def test_no_tracker_writes_nothing_extra(tmp_path):
    assert main(["--runs-dir", str(tmp_path), "train", "dcgan", "--data", "digits",
                 *TINY]) == 0
    assert not (next(tmp_path.iterdir()) / "tensorboard").exists()
