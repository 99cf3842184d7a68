"""Generation settings in the studio's PNGs: every sample the worker or `studio sample` writes
carries them; the Images tab's restore reads them back (checked against the runs folder), and
drawing with them gives the same picture again; the History keeps every batch the page draws.
Damaged or foreign PNGs are refused in words. (tests/test_browser.py does both on the page.)"""

import json
from pathlib import Path
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


def test_the_history_keeps_every_batch_drawn_with_its_settings(trained, tmp_path, monkeypatch):
    from pipelines.core import limits
    from pipelines.core import generations as history
    from studio.outputs import OutputCache
    from studio.tabs.images import sample_batch
    runs_dir, run, worker = trained
    studio = SimpleNamespace(runs_dir=runs_dir, worker=worker,
                             outputs=OutputCache(runs_dir / ".ui"))
    shown, _ = sample_batch(studio, run.id, "latest", 21, 3, "cycle through classes", {})
    sample_batch(studio, run.id, "latest", 30, 2, "4: 4", {"truncation": "0.5"})
    newest, older = history.image_entries(runs_dir)[:2]
    assert (newest["seed"], newest["count"], newest["class"]) == (30, 2, 4)
    assert "truncation=0.5" in newest["controls"] and older["seed"] == 21
    assert Path(newest["folder"]).relative_to(runs_dir / "outputs").parts[1] == run.id
    pictures = history.pictures(runs_dir, older["folder"])
    assert [Path(p).name.split("-")[0] for p in pictures] == ["seed21", "seed22", "seed23"]
    assert np.array_equal(pixels(pictures[1]), pixels(shown[1][0]))
    # Kept after the page's own copies are gone (a closed session), until deleted.
    studio.outputs.drop_session("")
    assert not Path(shown[0][0]).exists() and Path(pictures[0]).exists()
    history.delete(runs_dir, older["folder"])
    assert older["folder"] not in [e["folder"] for e in history.image_entries(runs_dir)]
    with pytest.raises(StudioError, match="no longer in the history"):
        history.pictures(runs_dir, older["folder"])
    with pytest.raises(StudioError, match="no longer in the history"):
        history.delete(runs_dir, runs_dir)                       # only history folders
    # Over its size limit, the oldest batches go first.
    monkeypatch.setattr(limits, "HISTORY_MAX_BYTES", 1)
    sample_batch(studio, run.id, "latest", 40, 1, "cycle through classes", {})
    assert [e["seed"] for e in history.image_entries(runs_dir)] == [40]
