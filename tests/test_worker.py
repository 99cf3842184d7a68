"""The sampling worker the UI samples through: a separate process (the UI never imports torch)
that answers JSON requests; same seed same image, errors in words, crashes survived."""

import numpy as np
import pytest
from PIL import Image

from pipelines.core.errors import StudioError
from studio.forms import changed_values
from studio.worker import SamplingWorker

from helpers import tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    run, status = tiny_run(runs_dir)
    assert status == "done"
    worker = SamplingWorker(runs_dir, threads=1)
    yield runs_dir, run, worker
    worker.close()


def pixels(path):
    return np.asarray(Image.open(path))


def test_same_seed_same_image_and_image_i_uses_seed_plus_i(trained):
    _, run, worker = trained
    a = worker.call("sample", run=run.id, n=3, seed=5)
    b = worker.call("sample", run=run.id, n=1, seed=6)
    assert len(a["files"]) == 3 and a["files"][1].endswith("seed6.png")
    assert np.array_equal(pixels(a["files"][1]), pixels(b["files"][0]))
    walk = worker.call("interpolate", run=run.id, seed_a=1, seed_b=2, frames=4)
    assert walk["gif"].endswith(".gif") and pixels(walk["strip"]).shape[1] > pixels(walk["strip"]).shape[0]


def test_errors_come_back_in_words_and_the_worker_keeps_serving(trained):
    _, run, worker = trained
    with pytest.raises(StudioError, match="gone"):
        worker.call("sample", run="no-such-run", n=2)
    with pytest.raises(StudioError, match="not a run id"):
        worker.call("sample", run="../x", n=2)
    with pytest.raises(StudioError, match="unknown option 'bogus'"):
        worker.call("sample", run=run.id, n=2, controls={"bogus": "0.5"})
    with pytest.raises(StudioError, match="between 1 and 1024"):
        worker.call("sample", run=run.id, n=0)
    assert worker.call("sample", run=run.id, n=1, seed=0)["files"]


def test_a_killed_worker_is_started_again(trained):
    _, run, worker = trained
    worker.call("sample", run=run.id, n=1)
    worker._process.kill()
    worker._process.wait()
    assert worker.call("sample", run=run.id, n=1, seed=2)["files"]


def test_form_values_become_set_overrides_only_where_changed():
    specs = [{"name": "lr", "type": "float", "default": 0.001},
             {"name": "steps", "type": "int", "default": 100},
             {"name": "ema", "type": "bool", "default": False},
             {"name": "loss", "type": "str", "default": "hinge"},
             {"name": "cap", "type": "int", "default": None}]
    assert changed_values(specs, [0.001, 100.0, False, "hinge", None]) == {}
    assert changed_values(specs, [0.01, 200.0, True, "bce", 3]) == {
        "lr": "0.01", "steps": "200", "ema": "true", "loss": "bce", "cap": "3"}
    with pytest.raises(StudioError, match="steps is empty"):
        changed_values(specs, [0.001, None, False, "hinge", None])
