"""Generation settings in the studio's PNGs: every sample the worker or `studio sample` writes
carries them; the Images tab's restore reads them back (checked against the runs folder), and
drawing with them gives the same picture again. Damaged or foreign PNGs are refused in words.
(tests/test_browser.py drops a sample on the page itself.)"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.png_settings import KEY, read_settings
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from studio.common import describe
from studio.forms import changed_values
from studio.tabs.images import parse_label, parse_step, restored_settings
from studio.worker import SamplingWorker

from helpers import TINY


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished class-conditional GAN (it has classes and a sampling control)."""
    runs_dir = tmp_path_factory.mktemp("runs")
    run = start_run("cgan", "digits", config_overrides={"width": 8, "z_dim": 8},
                    trainer_overrides=TINY, runs_dir=runs_dir)
    assert train_run(run) == "done"
    worker = SamplingWorker(runs_dir, threads=1)
    yield runs_dir, run, worker
    worker.close()


def pixels(path):
    return np.asarray(Image.open(path))


def test_a_sample_restores_its_settings_and_draws_the_same_picture(trained):
    runs_dir, run, worker = trained
    first = worker.call("sample", run=run.id, n=5, seed=11, label=None,
                        controls={"truncation": "0.7"})
    picture = first["files"][3]
    settings = restored_settings(SimpleNamespace(runs_dir=runs_dir), picture)
    assert (settings["run"], settings["seed"], settings["count"], settings["index"]) == \
        (run.id, 11, 5, 3)
    assert settings["controls"]["truncation"] == 0.7 and settings["label_choice"].startswith(
        "cycle")
    # What the page sends once the restored values fill its form: the same batch again.
    specs = describe(settings["pipeline"])["controls"]
    again = worker.call("sample", run=settings["run"], step=parse_step(settings["checkpoint"]),
                        seed=settings["seed"], n=settings["count"],
                        label=parse_label(settings["label_choice"]),
                        controls=changed_values(specs, [settings["controls"][s["name"]]
                                                        for s in specs]))
    assert np.array_equal(pixels(again["files"][3]), pixels(picture))
    assert read_settings(again["grid"])["index"] is None      # the grid says it is the batch
    # One class asked for: the restored Class dropdown names it.
    three = worker.call("sample", run=run.id, n=2, seed=0, label=3)
    assert restored_settings(SimpleNamespace(runs_dir=runs_dir),
                             three["files"][1])["label_choice"] == "3: 3"


def test_studio_sample_writes_the_settings_of_its_grid(trained, tmp_path):
    runs_dir, run, _ = trained
    out = tmp_path / "grid.png"
    assert main(["--runs-dir", str(runs_dir), "sample", run.id, "--n", "6", "--seed", "4",
                 "--class", "2", "--out", str(out)]) == 0
    settings = read_settings(out)
    assert (settings["count"], settings["seed"], settings["label"], settings["index"]) == \
        (6, 4, 2, None)
    assert settings["controls"] == {"truncation": 0.0}


def test_foreign_damaged_and_orphaned_pngs_are_refused_in_words(trained, tmp_path):
    runs_dir, run, worker = trained
    studio = SimpleNamespace(runs_dir=runs_dir)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(StudioError, match="has no studio settings"):
        restored_settings(studio, plain)
    good = read_settings(worker.call("sample", run=run.id, n=1)["files"][0])

    def png_with(text, name):
        info = PngImagePlugin.PngInfo()
        info.add_text(KEY, text)
        Image.new("RGB", (4, 4)).save(tmp_path / name, pnginfo=info)
        return tmp_path / name

    with pytest.raises(StudioError, match="damaged"):
        restored_settings(studio, png_with("{not json", "a.png"))
    with pytest.raises(StudioError, match="damaged: seed"):
        restored_settings(studio, png_with(json.dumps({**good, "seed": "7"}), "b.png"))
    with pytest.raises(StudioError, match="not in this studio's runs folder"):
        restored_settings(studio, png_with(json.dumps({**good, "run": "gone"}), "c.png"))
    with pytest.raises(StudioError, match="no longer keeps the checkpoint of step 3"):
        restored_settings(studio, png_with(json.dumps({**good, "checkpoint": 3}), "d.png"))
    with pytest.raises(StudioError, match="newer studio"):
        restored_settings(studio, png_with(json.dumps({**good, "version": 99}), "e.png"))
    with pytest.raises(StudioError, match="not a picture"):
        (tmp_path / "f.png").write_bytes(b"not a png")
        restored_settings(studio, tmp_path / "f.png")
