"""Training presets (pipelines/core/presets.py): every trainable family declares a gpu preset that
passes the same checks as the user's options, `studio train --preset` lands in run.json under
the user's own --set and flags, and a wrong preset is one line and exit code 2. Nothing
trains: runs are only created (--queue)."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.core.config import to_dict
from pipelines.core.errors import StudioError
from pipelines.core.presets import PRESET_NAMES, family_presets, preset_overrides, preset_steps
from pipelines.registry import get_entry, list_pipelines, load_pipeline_class
from pipelines.core.run_setup import make_configs
from pipelines.core.runs import RunFolder

REPO = Path(__file__).resolve().parents[1]
TRAINABLE = [e.name for e in list_pipelines() if e.kind != "classic"]
CLASSIC = [e.name for e in list_pipelines() if e.kind == "classic"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_trainable_pipeline_has_a_valid_gpu_preset(name):
    cls = load_pipeline_class(name)
    presets = family_presets(cls)
    assert list(presets) == list(PRESET_NAMES)
    default_steps = cls.train_defaults.get("steps", 2000)
    assert presets["quick look"]["trainer"] == {"steps": preset_steps(default_steps, "quick look")}
    if "long" in cls.presets:         # a family's own measured longer recipe (bert's)
        long_config, long_trainer = preset_overrides(cls, "long")
        built, trainer_config = make_configs(cls, long_config, long_trainer)
        assert {k: to_dict(built)[k] for k in long_config} == long_config
        assert long_trainer["steps"] > default_steps
    else:
        assert presets["long"]["trainer"] == {"steps": 3 * default_steps}

    config, trainer = preset_overrides(cls, "gpu")
    # A GPU preset sizes the model and the batch, not only the steps.
    assert config and trainer["mixed_precision"] == "auto"
    assert trainer["batch_size"] > cls.train_defaults.get("batch_size", 64)
    built, trainer_config = make_configs(cls, config, trainer)   # the run start's checks
    assert {k: to_dict(built)[k] for k in config} == config
    assert {k: to_dict(trainer_config)[k] for k in trainer} == trainer


def test_models_fit_in_one_go_have_no_presets():
    cls = load_pipeline_class(CLASSIC[0])
    assert family_presets(cls) == {}
    with pytest.raises(StudioError, match="no presets"):
        preset_overrides(cls, "gpu")


def test_preset_names_are_forgiving_and_unknown_ones_list_the_valid():
    cls = load_pipeline_class("dcgan")
    assert preset_overrides(cls, "Quick-Look") == preset_overrides(cls, "quick look")
    with pytest.raises(StudioError, match="valid presets are: quick look, default, long, gpu"):
        preset_overrides(cls, "turbo")


def test_presets_are_read_without_torch():
    code = ("import sys, pipelines.core.presets; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'torch']")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def _created_run(capsys) -> RunFolder:
    out = capsys.readouterr().out
    return RunFolder(out.splitlines()[0].removeprefix("run folder: "))


def test_cli_preset_lands_in_run_json_and_the_users_options_win(runs_dir, capsys):
    assert main(["train", "transformer", "--data", "shakespeare", "--preset", "gpu",
                 "--set", "n_layer=2", "--batch-size", "8", "--queue", "--quiet"]) == 0
    info = _created_run(capsys).info()
    assert info["preset"] == "gpu" and info["status"] == "queued"
    assert (info["config"]["n_embd"], info["config"]["context"]) == (384, 256)   # the preset
    assert info["trainer"]["steps"] == info["total_steps"] == 5000
    assert info["trainer"]["mixed_precision"] == "auto"
    assert info["config"]["n_layer"] == 2 and info["trainer"]["batch_size"] == 8  # the user's

    assert main(["train", "dcgan", "--data", "digits", "--preset", "quick-look", "--queue"]) == 0
    info = _created_run(capsys).info()
    default_steps = get_entry("dcgan").train_defaults["steps"]
    assert info["preset"] == "quick look" and info["total_steps"] == default_steps // 10


def test_berts_long_preset_is_its_measured_longer_cpu_recipe(runs_dir, capsys):
    """bert's `long` is the recipe docs/language.md measured (60.2% against TF-IDF's 60.2%),
    not three times its default steps: more steps of the default recipe overfit."""
    assert main(["train", "bert", "--data", "shakespeare-lines", "--preset", "long",
                 "--queue", "--quiet"]) == 0
    info = _created_run(capsys).info()
    assert info["preset"] == "long" and info["total_steps"] == 4000
    assert {k: info["config"][k] for k in ("vocab_size", "pretrain_steps", "finetune_steps",
                                             "mask_prob", "bag_of_tokens", "ema_decay")} == {
        "vocab_size": 16384, "pretrain_steps": 3000, "finetune_steps": 1000,
        "mask_prob": 0.3, "bag_of_tokens": 1.0, "ema_decay": 0.999}


@pytest.mark.parametrize("argv, words", [
    (["train", "dcgan", "--data", "digits", "--preset", "turbo"],
     "unknown preset 'turbo' for dcgan; valid presets are: quick look, default, long, gpu"),
    (["train", CLASSIC[0], "--data", "digits", "--preset", "gpu"], "has no presets"),
])
def test_a_wrong_preset_is_one_line_and_exit_2(runs_dir, capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("studio: error:") and words in err, err
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_every_registry_name_is_its_implementations_name():
    # Each name is written twice, in the registry and as `name =` on the class; the page and
    # the CLI list the first, run folders and weights files record the second.
    from pipelines.registry import list_pipelines, load_pipeline_class
    mismatched = [(e.name, getattr(load_pipeline_class(e.name), "name", None))
                  for e in list_pipelines()
                  if getattr(load_pipeline_class(e.name), "name", None) != e.name]
    assert mismatched == []


def test_a_pipeline_may_train_longer_on_one_data_set_and_its_presets_follow(runs_dir, capsys):
    """stylegan declares its own steps for digits (8 px steps are cheap) and shapes: the run,
    the presets, the form's description and `studio list` all read the data set's."""
    from pipelines.core.spec import describe
    cls = load_pipeline_class("stylegan")
    by_data = cls.train_defaults_by_data
    digits, shapes = by_data["digits"]["steps"], by_data["shapes"]["steps"]
    assert digits != shapes
    for data, steps in (("digits", digits), ("Shapes", shapes),
                        ("folder:/somewhere", cls.train_defaults["steps"])):
        assert make_configs(cls, {}, {}, data)[1].steps == steps
        assert family_presets(cls, data)["long"]["trainer"] == {"steps": 3 * steps}
    assert make_configs(cls, {}, {"steps": 7}, "shapes")[1].steps == 7   # the user wins
    assert preset_overrides(cls, "quick look", "shapes")[1] == {
        "steps": preset_steps(shapes, "quick look")}
    steps_field = next(f for f in describe(get_entry("stylegan"))["trainer"]
                       if f["name"] == "steps")
    assert steps_field["default_by_data"] == {"digits": digits, "shapes": shapes}
    assert f"on shapes: {shapes:,}" in steps_field["help"]

    assert main(["train", "stylegan", "--data", "shapes", "--preset", "long", "--queue"]) == 0
    assert _created_run(capsys).info()["total_steps"] == 3 * shapes
    assert main(["train", "stylegan", "--data", "digits", "--queue"]) == 0
    assert _created_run(capsys).info()["total_steps"] == digits
    assert main(["list", "stylegan"]) == 0
    assert f"on shapes: --steps {shapes}" in capsys.readouterr().out


def test_a_family_may_size_its_batch_by_data_set_too(runs_dir, capsys):
    """biggan trains digits in batches of 32 (its 10-minute budget), other data in 64."""
    cls = load_pipeline_class("biggan")
    assert make_configs(cls, {}, {}, "digits")[1].batch_size == 32
    assert make_configs(cls, {}, {}, "shapes")[1].batch_size == 64
    assert main(["train", "biggan", "--data", "digits", "--queue"]) == 0
    assert _created_run(capsys).info()["trainer"]["batch_size"] == 32
    assert main(["train", "biggan", "--data", "digits", "--batch-size", "16", "--queue"]) == 0
    assert _created_run(capsys).info()["trainer"]["batch_size"] == 16          # the user's
