"""The CLI end to end: train -> sample -> runs -> export, SIGINT, and one-line errors."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.core import checkpoints as ckpt
from pipelines.cli import main
from pipelines.core.runs import RunFolder

TINY = ["--steps", "6", "--batch-size", "16", "--log-every", "2", "--sample-every", "3",
        "--checkpoint-every", "3", "--set", "width=8", "--set", "z_dim=8", "--quiet",
        "--no-final-eval"]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def trained(runs_dir, capsys):
    assert main(["train", "cgan", "--data", "digits", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run folder: ")
    return RunFolder(out.splitlines()[0].removeprefix("run folder: "))


def test_train_sample_runs_export(trained, tmp_path, capsys):
    assert trained.info()["status"] == "done"

    assert main(["sample", trained.id, "--n", "20", "--seed", "1", "--out",
                 str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 0

    assert main(["sample", str(trained.path), "--n", "12", "--class", "7", "--out",
                 str(tmp_path / "s.npz")]) == 0
    npz = np.load(tmp_path / "s.npz")
    assert npz["images"].shape == (12, 1, 8, 8) and npz["images"].dtype == np.float32
    assert 0 <= npz["images"].min() and npz["images"].max() <= 1
    assert (npz["labels"] == 7).all()

    # A weights file alone is enough: its metadata says what it is.
    assert main(["sample", str(trained.weights_path), "--n", "4", "--out",
                 str(tmp_path / "alone.npz")]) == 0
    # Same seed, same samples, from the run or from the file.
    assert main(["sample", trained.id, "--n", "4", "--out", str(tmp_path / "run.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "alone.npz")["images"],
                          np.load(tmp_path / "run.npz")["images"])

    capsys.readouterr()
    assert main(["runs"]) == 0
    table = capsys.readouterr().out
    assert trained.id in table and "cgan" in table and "done" in table and "6/6" in table

    assert main(["export", trained.id]) == 0
    export = trained.path / "export"
    assert {p.name for p in export.iterdir()} >= {"model.safetensors", "config.json", "README.md"}
    assert json.loads((export / "config.json").read_text())["pipeline"] == "cgan"


def _one_line_error(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("studio: error:"), err
    assert words in err, err


def test_bad_input_is_one_line_exit_2_and_damages_nothing(trained, runs_dir, tmp_path, capsys):
    before = digest(trained.path)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken" / "cats"
    broken.mkdir(parents=True)
    (broken / "a.png").write_bytes(b"not a png at all")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 definitely not safetensors")
    foreign = tmp_path / "foreign.safetensors"
    ckpt.save_weights(foreign, {"w": torch.zeros(3)})

    cases = [
        (["train", "nope", "--data", "digits"], "unknown pipeline 'nope'"),
        (["train", "dcgan", "--data", "mnist"], "mnist"),
        (["train", "dcgan", "--data", f"folder:{empty}"], "no readable images"),
        (["train", "dcgan", "--data", f"folder:{tmp_path / 'missing'}"], "does not exist"),
        (["train", "dcgan", "--data", f"folder:{broken.parent}"], "skipped"),
        (["train", "dcgan", "--data", "digits", "--set", "widht=3"], "unknown option 'widht'"),
        (["train", "dcgan", "--data", "digits", "--steps", "many"], "whole number"),
        (["train", "dcgan", "--data", "digits", "--set", "image_size=12"], "8, 16, 32, 64"),
        (["sample", str(garbage), "--out", str(tmp_path / "x.png")], "not a readable safetensors"),
        (["sample", str(foreign), "--out", str(tmp_path / "x.png")], "not written by this studio"),
        (["sample", "no-such-run", "--out", str(tmp_path / "x.png")], "no run 'no-such-run'"),
        (["sample", trained.id, "--class", "12", "--out", str(tmp_path / "x.png")], "class must be"),
        (["sample", trained.id, "--out", str(tmp_path / "x.jpg")], ".png or .npz"),
        (["sample", trained.id, "--step", "5", "--out", str(tmp_path / "x.png")], "no checkpoint at step 5"),
        (["resume", trained.id], "already done"),
        (["train"], "the following arguments are required"),
    ]
    for argv, words in cases:
        _one_line_error(capsys, argv, words)
    assert [p.name for p in runs_dir.iterdir()] == [trained.id]  # no folder for refused runs
    assert digest(trained.path) == before

    # A run whose data has gone since it was created: resume says why, and the run says so.
    gone = tmp_path / "gone" / "a"
    gone.mkdir(parents=True)
    for i in range(20):
        Image.new("L", (8, 8), color=i * 10).save(gone / f"{i}.png")
    assert main(["train", "dcgan", "--data", f"folder:{gone.parent}", *TINY]) == 0
    capsys.readouterr()
    moved = [p for p in runs_dir.iterdir() if p.name != trained.id][0]
    info = RunFolder(moved).info()
    RunFolder(moved).update_info(status="stopped")
    shutil.rmtree(gone.parent)
    _one_line_error(capsys, ["resume", moved.name, "--steps", "9"], "does not exist")
    assert RunFolder(moved).info()["status"] == "failed"
    assert "could not start" in RunFolder(moved).info()["message"]
    assert info["step"] == 6

    # A corrupt weights file inside a run: refused with one line, the checkpoints untouched.
    trained.weights_path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    state_before = digest(trained.state_dir)
    _one_line_error(capsys, ["sample", trained.id, "--out", str(tmp_path / "x.png")],
                    "not a readable safetensors")
    assert main(["sample", trained.id, "--step", "6", "--out", str(tmp_path / "ok.png")]) == 0
    assert digest(trained.state_dir) == state_before


def test_sigint_stops_cleanly_and_resume_finishes(runs_dir):
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "train", "dcgan", "--data", "digits",
         "--steps", "100000", "--batch-size", "16", "--log-every", "1", "--set", "width=8",
         "--set", "z_dim=8", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env)
    run = RunFolder(proc.stdout.readline().strip().removeprefix("run folder: "))
    deadline = time.time() + 120
    while not run.metrics() and time.time() < deadline:
        time.sleep(0.2)
    refused = subprocess.run([sys.executable, "-m", "pipelines", "resume", run.id],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and "already being trained" in refused.stderr  # no second trainer
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    info = run.info()
    assert info["status"] == "stopped" and "signal SIGINT" in info["message"]
    step = info["step"]
    assert step >= 1 and run.checkpoint_steps() == [step]

    # no final evaluation: the judge it trains first would take most of the test's time
    done = subprocess.run([sys.executable, "-m", "pipelines", "resume", run.id, "--steps",
                           str(step + 3), "--no-final-eval", "--quiet"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert run.info()["status"] == "done" and run.info()["step"] == step + 3
    logged = [r["step"] for r in run.metrics() if "loss_d" in r]
    assert logged == list(range(1, step + 4))  # no step lost, none logged twice


@pytest.mark.parametrize("command", ["train", "resume", "sample", "tool", "list", "runs",
                                     "eval", "export", "classify"])
def test_every_commands_help_prints(command, capsys):
    # argparse formats help text with %: an option's "5%" once turned --help into a traceback
    assert main([command, "--help"]) == 0
    assert "usage: " in capsys.readouterr().out
