"""CycleGAN (pipelines/translation/cyclegan.py): a tiny run on a small unpaired folder (red
squares on white in trainA/, blue circles on black in trainB/, read at 16 px) trains to finite
numbers with the learning rate held then decayed, resumes exactly (its image pools included),
samples repeat per seed, evaluation reports each direction, and the translate tool works from
the CLI both ways, with bad inputs refused in one line."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from helpers import TINY, records, stop_at

# pool_size 3 < the batch: the pools are full after the first step and swap pictures (by
# torch's coin) from then on, so resuming exactly needs them restored.
TINY_NET = {"width": 4, "blocks": 1, "d_width": 4, "pool_size": 3, "constant_steps": 4,
            "decay_steps": 4}


def make_domains(root, count=40):
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB"):
        (root / folder).mkdir(parents=True)
    for k in range(count):
        x, y = rng.integers(4, 14, 2)
        square = Image.new("RGB", (24, 24), (255, 255, 255))
        ImageDraw.Draw(square).rectangle((x, y, x + 8, y + 8), fill=(220, 40, 40))
        square.save(root / "trainA" / f"{k}.png")
        circle = Image.new("RGB", (24, 24), (0, 0, 0))
        ImageDraw.Draw(circle).ellipse((y, x, y + 8, x + 8), fill=(40, 80, 220))
        circle.save(root / "trainB" / f"c{k}.png")
    return f"unpaired:{root}?size=16"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("cyclegan-runs")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_domains(tmp_path_factory.mktemp("cyclegan-data") / "squares2circles")


def run_of(runs_dir, name, spec, callbacks=(), **trainer):
    run = start_run("cyclegan", spec, config_overrides=TINY_NET,
                    trainer_overrides={**TINY, **trainer}, runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


@pytest.fixture(scope="module")
def straight(runs, spec):
    run, status = run_of(runs, "straight", spec)
    assert status == "done"
    return run


def test_a_tiny_run_trains_with_a_held_then_decayed_learning_rate(straight):
    rows = [r for r in straight.metrics() if "loss_d_a" in r]
    assert [r["step"] for r in rows] == list(range(1, 9))
    keys = ("loss_g", "loss_d_a", "loss_d_b", "cycle_l1", "identity_l1",
            "val/cycle_l1_a_to_b", "val/cycle_l1_b_to_a")
    for r in rows:
        assert all(math.isfinite(r[k]) for k in keys)
    assert [r["lr_g"] / 2e-4 for r in rows] == pytest.approx(
        [1, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    assert [r["lr_d"] for r in rows] == [r["lr_g"] for r in rows]
    info = straight.info()["data_info"]
    assert (info["kind"], info["channels"], info["target_channels"]) == ("unpaired", 3, 3)
    # sample_count 10: 10 rows of 6 pictures (16 px cells scaled to 32, + 2 px padding)
    assert Image.open(straight.sample_path(8)).size == (6 * 34 + 2, 10 * 34 + 2)


def test_resume_is_exact(runs, spec, straight):
    part, status = run_of(runs, "part", spec, callbacks=(stop_at(runs, 4),))
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == records(straight)


def test_samples_are_round_trips_that_repeat_per_seed(straight, spec):
    pipe = load_for_sampling(straight.path, device="cpu")
    data = load_data(spec)                 # 4 validation pictures a domain: seeds wrap around
    samples = pipe.sample(4, seed=10)
    assert samples.images.shape == (24, 3, 16, 16) and samples.columns == 6
    rows = samples.images.reshape(4, 6, 3, 16, 16)
    index = (10 + np.arange(4)) % 4
    np.testing.assert_array_equal(rows[:, 0], data.val_a[index])
    np.testing.assert_array_equal(rows[:, 3], data.val_b[index])
    np.testing.assert_allclose(rows[:, 1], pipe.translate(data.val_a[index]), atol=1e-6)
    np.testing.assert_allclose(rows[:, 2], pipe.translate(rows[:, 1], "b_to_a"), atol=1e-6)
    np.testing.assert_allclose(pipe.sample(1, seed=13).images, rows[3:4].reshape(6, 3, 16, 16),
                               atol=1e-6)
    with pytest.raises(StudioError, match="takes no class"):
        pipe.sample(2, 0, labels=1)


def test_evaluation_reports_each_direction(straight, tmp_path, monkeypatch):
    from pipelines.metrics import judge
    monkeypatch.setattr(judge, "MIN_STEPS", 5)       # 5-step judges: the plumbing of the
    monkeypatch.setattr(judge, "MAX_STEPS", 5)       # numbers is tested here, not their values
    pipe = load_for_sampling(straight.path, device="cpu")
    scores = pipe.evaluate(load_data("shapes-seasons", image_size=16), tmp_path / "judges")
    for direction in ("a_to_b", "b_to_a"):
        for key in ("cycle_l1", "domain_accuracy", "class_kept", "fd", "fd_floor"):
            assert math.isfinite(scores[f"{direction}/{key}"]), (direction, key)
        assert 0 <= scores[f"{direction}/class_kept"] <= 1
        # both together can be no more than either; the untranslated source picture is
        # (almost) never in the target domain, so it is no answer by that measure
        both = scores[f"{direction}/translated_and_kept"]
        assert both <= min(scores[f"{direction}/class_kept"],
                           scores[f"{direction}/domain_accuracy"])
        assert scores[f"{direction}/baseline_domain_accuracy"] < 0.05
        assert scores[f"{direction}/baseline_translated_and_kept"] < 0.05
        assert 0 <= scores[f"{direction}/baseline_class_kept"] <= 1
    assert scores["domain_classifier_accuracy"] > 0.95       # the seasons are told apart
    assert len(list((tmp_path / "judges").glob("*.safetensors"))) == 2   # a judge per domain


def test_translate_tool_from_the_cli_both_ways(straight, tmp_path, capsys):
    runs_dir, run_id = str(straight.path.parent), straight.id
    picture = tmp_path / "in.png"
    Image.fromarray(np.full((20, 24, 3), 200, np.uint8)).save(picture)
    out = tmp_path / "out.png"
    for direction in ("a_to_b", "b_to_a"):
        assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--input",
                     str(picture), str(picture), "--set", f"direction={direction}",
                     "--out", str(out)]) == 0
        assert Image.open(out).size == (3 * 34 + 2, 2 * 34 + 2)   # input | output | back
        assert "cycle_l1:" in capsys.readouterr().out
    assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--set", "count=3",
                 "--set", "direction=b_to_a", "--out", str(out)]) == 0
    assert "cycle_l1:" in capsys.readouterr().out
    assert Image.open(out).size == (3 * 34 + 2, 3 * 34 + 2)

    broken, small, grey = tmp_path / "broken.png", tmp_path / "small.png", tmp_path / "g.png"
    broken.write_bytes(b"not a picture")
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(small)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(grey)
    for bad, message in ((broken, "cannot read image"),
                         (small, "is 12x8 pixels; cyclegan translates pictures of at least "
                                 "16x16"),
                         (grey, "is a grey picture; cyclegan translates colour pictures")):
        assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--input",
                     str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--set",
                 "direction=sideways"]) == 2
    assert "direction" in capsys.readouterr().err


def test_wrong_data_is_refused_before_a_run_exists(tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), "train", "cyclegan", "--data", "shapes-edges"]) == 2
    assert "needs unpaired data" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
