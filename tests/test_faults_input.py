"""Bad input gets one line, never a traceback, and touches no run or file: numbers outside a
library's domain (NaN, infinity, Adam's beta = 1, seeds outside 0..2**32-1, enormous whole
numbers), a damaged run.json among good runs, a weights file with made-up studio metadata, and
an API call with options that are not a JSON object."""

import hashlib
import json
import math
import re

import gradio as gr
import pytest

from pipelines.core import checkpoints as ckpt
from pipelines.cli import main
from pipelines.core.config import SEED_MAX, TrainerConfig, apply_overrides, check_seed, describe
from pipelines.core.errors import StudioError
from pipelines.services.latent import requested_labels
from pipelines.registry import list_pipelines, load_pipeline_class
from pipelines.core.run_schema import check_run_info, check_weights_metadata
from pipelines.core.runs import RunFolder, list_runs
from pipelines.worker import Worker
from studio.api import register
from studio.common import Studio
from studio.tabs.runs import run_rows

from helpers import tiny_run

HUGE = str(2**64)          # past every integer type torch and numpy take
TRAIN = ["train", "dcgan", "--data", "digits", "--steps", "2", "--batch-size", "8",
         "--set", "width=8", "--set", "z_dim=8", "--quiet", "--no-final-eval"]


def one_line_error(capsys, argv, *words):
    """`studio ARGV` exits with 2 and one `studio: error: ...` line naming `words`."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("studio: error: "), err
    for word in words:
        assert word in err, err
    return err


def digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished DCGAN run (a few seconds)."""
    runs_dir = tmp_path_factory.mktemp("faults") / "runs"
    run, status = tiny_run(runs_dir, name="good")
    assert status == "done"
    return run


# --- options: finite, inside the library's domain, no overflow -------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--set", "lr_g=nan"], ("lr_g", "finite")),
    (["--set", "lr_d=inf"], ("lr_d", "finite")),
    (["--set", "lr_g=-inf"], ("lr_g", "finite")),
    (["--grad-clip", "nan"], ("grad_clip", "finite")),
    (["--set", "beta1=1"], ("beta1", "below 1.0")),
    (["--set", "beta2=1.0"], ("beta2", "below 1.0")),
    (["--seed", "-1"], ("seed", "at least 0")),
    (["--seed", HUGE], ("seed", str(SEED_MAX))),
    (["--seed", str(SEED_MAX + 1)], ("seed", str(SEED_MAX))),
    (["--sample-seed", HUGE], ("sample_seed", str(SEED_MAX))),
    (["--sample-seed", "-3"], ("sample_seed", "at least 0")),
    (["--steps", "9" * 20], ("steps", "at most")),
    (["--set", "instance_noise_steps=" + HUGE], ("instance_noise_steps", "at most")),
])
def test_train_refuses_out_of_domain_numbers_and_creates_nothing(runs_dir, capsys, argv, words):
    one_line_error(capsys, [*TRAIN, *argv], *words)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_every_adam_beta_is_below_one_and_every_seed_in_range():
    """All families: each Adam/AdamW beta option stops below 1; each seed is 0..2**32-1;
    no float option takes NaN or infinity."""
    seen, betas, seeds = set(), [], []
    classes = [TrainerConfig]
    for entry in list_pipelines():
        cls = load_pipeline_class(entry.name)
        classes += [getattr(cls, "Config", None), getattr(cls, "SampleControls", None),
                    *(t.Options for t in getattr(cls, "tools", ()))]
    for config_cls in classes:
        if config_cls is None or config_cls in seen:
            continue
        seen.add(config_cls)
        for spec in describe(config_cls):
            if re.fullmatch(r"beta\d", spec.name):
                betas.append(spec)
                assert spec.high == 1.0 and spec.high_exclusive, (config_cls, spec)
                with pytest.raises(StudioError, match="below 1.0"):
                    apply_overrides(config_cls(), {spec.name: 1.0})
            if spec.name == "seed" or spec.name.endswith("_seed"):
                seeds.append(spec)
                assert (spec.low, spec.high) == (0, SEED_MAX), (config_cls, spec)
            if spec.type is float:
                for bad in (math.nan, math.inf, "nan", "-inf"):
                    with pytest.raises(StudioError, match=f"{spec.name} must be a finite"):
                        apply_overrides(config_cls(), {spec.name: bad})
            if spec.type is int and spec.high is None:
                with pytest.raises(StudioError, match=f"{spec.name} must be at most"):
                    apply_overrides(config_cls(), {spec.name: 2**70})
    assert len(betas) >= 3 and len(seeds) >= 6       # gan beta1/beta2, text beta2; seeds


def test_seed_check_and_an_enormous_class():
    assert check_seed("7") == 7 and check_seed(7.0) == 7 and check_seed(SEED_MAX) == SEED_MAX
    for bad in (-1, SEED_MAX + 1, 2**64, "seven", 1.5, True, None, math.nan):
        with pytest.raises(StudioError, match="seed must be a whole number from 0 to"):
            check_seed(bad)
    with pytest.raises(StudioError, match="class must be between 0 and 9"):
        requested_labels(4, 10**20, 10)


# --- sampling: seeds, controls, and weights files with made-up metadata -------------------------

def test_sample_refuses_bad_seeds_and_controls(trained, tmp_path, capsys):
    runs = ["--runs-dir", str(trained.path.parent)]
    before = digest(trained.path)
    out = str(tmp_path / "grid.png")
    for argv, words in [
            (["--seed", "-1"], ("--seed", str(SEED_MAX))),
            (["--seed", HUGE], ("--seed", HUGE)),
            (["--interpolate", "0", HUGE], ("SEED_B",)),
            (["--interpolate", "-1", "3"], ("SEED_A",)),
            (["--set", "truncation=nan"], ("truncation", "finite"))]:
        one_line_error(capsys, [*runs, "sample", trained.id, "--n", "2", "--out", out, *argv],
                       *words)
    assert not (tmp_path / "grid.png").exists()
    # The largest seed is a seed like any other.
    assert main([*runs, "sample", trained.id, "--n", "2", "--seed", str(SEED_MAX),
                 "--out", out]) == 0
    assert digest(trained.path) == before


def forged(trained, tmp_path, name, **changes):
    """A copy of the run's weights whose studio metadata has `changes`."""
    tensors, meta = ckpt.load_weights(trained.weights_path)
    path = tmp_path / f"{name}.safetensors"
    ckpt.save_weights(path, tensors, {**meta, **changes})
    return path


def test_sample_refuses_a_weights_file_with_made_up_metadata(trained, tmp_path, capsys):
    before = digest(trained.path)
    _, meta = ckpt.load_weights(trained.weights_path)
    info = json.loads(meta["studio_data_info"])
    cases = [
        (forged(trained, tmp_path, "made-up", studio_data_info=json.dumps(
            {"name": "mine", "kind": "image", "pixels": 64})), ("channels", "image_size")),
        (forged(trained, tmp_path, "step", studio_step="abc"), ("studio_step", "'abc'")),
        (forged(trained, tmp_path, "negative", studio_step="-4"), ("studio_step",)),
        (forged(trained, tmp_path, "channels", studio_data_info=json.dumps(
            {**info, "channels": "one"})), ("studio_data_info.channels",)),
        (forged(trained, tmp_path, "list", studio_data_info="[1, 2]"), ("studio_data_info",)),
        (forged(trained, tmp_path, "config", studio_config="not json"), ("studio_config",)),
        (forged(trained, tmp_path, "foreign", studio_config=json.dumps({"lr_g": "fast"})),
         ("lr_g",)),
        (forged(trained, tmp_path, "pipeline", studio_pipeline="mystery"), ("mystery",)),
        (forged(trained, tmp_path, "size", studio_data_info=json.dumps(
            {**info, "image_size": 7})), ("image_size",)),
    ]
    for path, words in cases:
        one_line_error(capsys, ["sample", str(path), "--n", "2", "--out",
                                str(tmp_path / "x.png")], str(path), *words)
        one_line_error(capsys, ["tool", str(path)], "damaged studio metadata")
    assert not (tmp_path / "x.png").exists() and digest(trained.path) == before


def test_weights_metadata_schema_accepts_what_the_trainer_writes(trained):
    _, meta = ckpt.load_weights(trained.weights_path)
    checked = check_weights_metadata(meta, trained.weights_path)
    assert checked.pipeline == "dcgan" and checked.step == 8
    assert checked.data_info["channels"] == 1 and checked.config["width"] == 8


# --- run.json: one damaged run lists as damaged, every other run still lists -------------------

def damage(run, **changes):
    info = json.loads(run.info_path.read_text())
    run.info_path.write_text(json.dumps({**info, **changes}))


def good_and_damaged(runs_dir, status):
    """Two dcgan runs with `status`; the second's run.json has a number for a timestamp."""
    runs = [RunFolder.create(runs_dir, name, {"pipeline": "dcgan", "data": "digits",
                                              "status": status, "step": 0})
            for name in ("good", "bad")]
    damage(runs[1], created=7)
    return runs


def test_a_damaged_run_json_lists_as_damaged_and_the_others_still_list(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    good, bad = good_and_damaged(runs_dir, "stopped")
    rows = {r["id"]: r for r in list_runs(runs_dir)}
    assert rows[good.id]["status"] == "stopped"
    assert rows[bad.id]["status"] == "damaged"
    assert rows[bad.id]["message"] == (f"run {bad.id}'s metadata is damaged: created must be a "
                                       f"date and time, as text, not 7")
    with pytest.raises(StudioError, match="metadata is damaged: created"):
        bad.info()
    # `studio runs`, as a table and as JSON: both runs, the damage said in one line.
    assert main(["--runs-dir", str(runs_dir), "runs"]) == 0
    out = capsys.readouterr().out
    assert good.id in out and f"{bad.id}: run {bad.id}'s metadata is damaged" in out
    assert main(["--runs-dir", str(runs_dir), "runs", "--json"]) == 0
    assert {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)} == {
        good.id: "stopped", bad.id: "damaged"}
    # The web Runs table.
    assert {row[0]: row[3] for row in run_rows(runs_dir)} == {good.id: "stopped",
                                                              bad.id: "damaged"}
    # Commands on the damaged run itself: one line.
    one_line_error(capsys, ["--runs-dir", str(runs_dir), "resume", bad.id], "damaged")


@pytest.mark.parametrize("changes, words", [
    ({"step": "abc"}, "step must be a whole number"),
    ({"step": -3}, "step must be a whole number"),
    ({"status": "sleeping"}, "status must be one of"),
    ({"pipeline": 5}, "pipeline must be"),
    ({"total_steps": "many"}, "total_steps"),
    ({"config": [1]}, "config must be a JSON object"),
    ({"trainer": "fast"}, "trainer must be a JSON object"),
    ({"eval": 3}, "eval must be"),
    ({"best": [1]}, "best must be"),
    ({"message": {"a": 1}}, "message must be"),
    ({"peak_memory_mb": "lots"}, "peak_memory_mb must be"),
    ({"data_info": {"name": "digits", "kind": "image"}}, "data_info has no channels"),
])
def test_each_malformed_run_field_is_named(tmp_path, changes, words):
    runs_dir = tmp_path / "runs"
    run = RunFolder.create(runs_dir, "r", {"pipeline": "dcgan", "data": "digits",
                                           "status": "done", "step": 0})
    damage(run, **changes)
    (row,) = list_runs(runs_dir)
    assert row["status"] == "damaged" and words in row["message"], row["message"]
    assert len(row["message"].splitlines()) == 1


def test_the_run_schema_accepts_what_the_trainer_writes(trained):
    assert check_run_info(trained.info(), trained.id)["status"] == "done"
    row = next(r for r in list_runs(trained.path.parent) if r["id"] == trained.id)
    assert row["status"] == "done" and row["step"] == 8


# --- the API and the sampling worker ------------------------------------------------------------

class Refuses:
    """A job manager or sampling worker that must not be reached."""

    def exit_codes(self):
        return {}

    def __getattr__(self, name):
        def reached(*args, **kwargs):
            raise AssertionError(f"{name} was reached with bad input")
        return reached


def api_functions(runs_dir):
    with gr.Blocks() as demo:
        register(Studio(runs_dir, Refuses(), Refuses()))
    return {f.api_name: f.fn for f in demo.fns.values()}


def refused(answer, *words):
    message = answer[-1] if isinstance(answer, tuple) else answer
    assert message.startswith("error: ") and "Traceback" not in message, message
    assert "Something went wrong" not in message, message       # a sentence, not a type name
    for word in words:
        assert word in message, message


@pytest.mark.filterwarnings("ignore::UserWarning")   # gr.Warning outside a page
def test_api_refuses_options_that_are_not_an_object_and_seeds_out_of_range(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    api = api_functions(runs_dir)
    for options in ([1, 2], "steps=3", 5, True):
        refused(api["train"]("dcgan", "digits", options), "options must be a JSON object")
        refused(api["dry_run"]("dcgan", "digits", options), "options must be a JSON object")
    refused(api["sample"]("x", 0, 2, "latest", "", [1]), "controls must be a JSON object")
    for seed in (-1, 2**64, SEED_MAX + 1, "seven"):
        refused(api["sample"]("x", seed, 2), "seed must be a whole number from 0 to")
        refused(api["write"]("x", seed, 1), "seed must be a whole number from 0 to")
    assert [p for p in runs_dir.iterdir() if not p.name.startswith(".")] == []   # no run


def test_api_runs_lists_a_damaged_run_beside_a_good_one(tmp_path):
    runs_dir = tmp_path / "runs"
    good, bad = good_and_damaged(runs_dir, "done")
    columns, rows, message = api_functions(runs_dir)["runs"]()
    status = columns.index("status")
    assert message == "2 runs"
    assert {row[0]: row[status] for row in rows} == {good.id: "done", bad.id: "damaged"}


def test_the_sampling_worker_refuses_seeds_out_of_range(trained):
    worker, answers = Worker(trained.path.parent), []
    for op, args in [("sample", {"run": trained.id, "n": 2, "seed": -1}),
                     ("sample", {"run": trained.id, "n": 2, "seed": 2**64}),
                     ("interpolate", {"run": trained.id, "seed_a": 0, "seed_b": 2**64}),
                     ("stream_text", {"run": trained.id, "seed": -5})]:
        worker.handle({"id": op, "op": op, "args": args}, answers.append)
    assert [a["ok"] for a in answers] == [False] * 4
    assert all("must be a whole number from 0 to" in a["error"] for a in answers), answers
