"""pix2pix (pipelines/translation/): a tiny run on a small paired folder (grey outlines of
rectangles -> the rectangles filled in colour, 16 px) trains to finite numbers and draws
input | output | target grids, resumes exactly, samples repeat per seed, evaluation
sets the outputs beside the trivial baseline and the judge, and the translate tool works from
the CLI, with bad requests refused in one line."""

import math

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.core.base import ToolContext
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from helpers import TINY, records, stop_at

TINY_NET = {"width": 4, "d_width": 4}


def make_rectangles(root, count=80):
    """Pair k: a rectangle's dark outline on white (A/k.png, grey) and the rectangle filled
    in a colour (B/k.png), at 24 px."""
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    for k in range(count):
        top, left = rng.integers(2, 10, 2)
        bottom, right = top + rng.integers(5, 12), left + rng.integers(5, 12)
        drawing = np.full((24, 24), 255, np.uint8)
        drawing[top:bottom + 1, left:right + 1] = 0
        drawing[top + 1:bottom, left + 1:right] = 255
        filled = np.full((24, 24, 3), 255, np.uint8)
        filled[top:bottom + 1, left:right + 1] = rng.integers(0, 255, 3)
        Image.fromarray(drawing).save(root / "A" / f"{k}.png")
        Image.fromarray(filled).save(root / "B" / f"{k}.png")
    return f"paired:{root}?size=16"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("pix2pix-runs")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_rectangles(tmp_path_factory.mktemp("pix2pix-data") / "rectangles")


def run_of(runs_dir, name, spec, callbacks=(), **trainer):
    run = start_run("pix2pix", spec, config_overrides=TINY_NET,
                    trainer_overrides={**TINY, **trainer}, runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


@pytest.fixture(scope="module")
def straight(runs, spec):
    run, status = run_of(runs, "straight", spec)
    assert status == "done"
    return run


def test_a_tiny_run_trains_and_draws_triples(straight):
    rows = [r for r in straight.metrics() if "loss_d" in r]
    assert [r["step"] for r in rows] == list(range(1, 9))
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("loss_d", "loss_g", "l1", "val/l1", "val/psnr"))
    info = straight.info()["data_info"]
    assert (info["kind"], info["channels"], info["target_channels"]) == ("paired", 1, 3)
    # sample_count 10: 10 triples, 30 pictures, 6 columns of 32 px cells (16 px, scaled up;
    # + 2 px padding)
    grid = Image.open(straight.sample_path(8))
    assert grid.size == (6 * 34 + 2, 5 * 34 + 2)


def test_resume_is_exact(runs, spec, straight):
    part, status = run_of(runs, "part", spec, callbacks=(stop_at(runs, 4),))
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == records(straight)


def test_samples_are_validation_triples_that_repeat_per_seed(straight, spec):
    pipe = load_for_sampling(straight.path, device="cpu")
    data = load_data(spec)                 # 8 validation pairs: seeds wrap around them
    samples = pipe.sample(4, seed=10)
    assert samples.images.shape == (12, 3, 16, 16) and samples.columns == 3
    inputs, outputs, targets = samples.images[0::3], samples.images[1::3], samples.images[2::3]
    np.testing.assert_array_equal(inputs[:, :1], data.val_inputs[2:6])    # grey, repeated
    np.testing.assert_array_equal(inputs[:, 2:], data.val_inputs[2:6])
    np.testing.assert_array_equal(targets, data.val_targets[2:6])
    np.testing.assert_allclose(pipe.sample(1, seed=13).images[1], outputs[3], atol=1e-6)
    assert 0 <= outputs.min() and outputs.max() <= 1
    with pytest.raises(StudioError, match="takes no class"):
        pipe.sample(2, 0, labels=1)


def test_evaluation_sets_the_outputs_beside_the_baseline_and_the_judge(straight, spec,
                                                                        tmp_path, monkeypatch):
    from pipelines.metrics import judge
    monkeypatch.setattr(judge, "MIN_STEPS", 5)       # a 5-step judge: the plumbing of the
    monkeypatch.setattr(judge, "MAX_STEPS", 5)       # numbers is tested here, not their values
    pipe = load_for_sampling(straight.path, device="cpu")
    data = load_data(spec)
    scores = pipe.evaluate(data, tmp_path / "judges")     # on its 8 validation pairs
    for key in ("l1", "psnr", "baseline_l1", "baseline_psnr", "fd", "fd_floor", "baseline_fd"):
        assert math.isfinite(scores[key]), key
    assert scores["n"] == 8 and "class_accuracy" not in scores   # one class: none to check
    # The baseline answers with the input itself: the outline is right, the fill is not.
    outline_only = np.abs(np.repeat(data.val_inputs, 3, 1) - data.val_targets).mean()
    assert scores["baseline_l1"] == pytest.approx(outline_only)
    assert set(pipe.evaluate(data)) == {"l1", "psnr", "baseline_l1", "baseline_psnr"}
    # Data with classes (shapes-edges read at this model's 16 px): the judge's shape class of
    # each output, and of each drawing, against the pair's.
    shapes = pipe.evaluate(load_data("shapes-edges", image_size=16), tmp_path / "judges")
    assert 0 <= shapes["class_accuracy"] <= 1 and 0 <= shapes["baseline_class_accuracy"] <= 1
    assert shapes["n"] == 500


def test_translate_tool_from_the_cli(straight, tmp_path, capsys):
    runs_dir, run_id = str(straight.path.parent), straight.id
    drawing = tmp_path / "drawing.png"
    Image.fromarray(np.full((48, 40, 3), 255, np.uint8)).save(drawing)   # colour, 40x48 px
    out = tmp_path / "out.png"
    assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--input", str(drawing),
                 str(drawing), "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * 34 + 2, 2 * 34 + 2)     # input | output, a row each
    assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--set", "count=3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "l1:" in printed and "psnr:" in printed
    assert Image.open(out).size == (3 * 34 + 2, 3 * 34 + 2)     # input | output | target

    broken, small = tmp_path / "broken.png", tmp_path / "small.png"
    broken.write_bytes(b"not a picture")
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(small)
    for bad, message in ((broken, "cannot read image"),
                         (small, "is 12x8 pixels; pix2pix translates pictures of at least "
                                 "16x16")):
        assert main(["--runs-dir", runs_dir, "tool", run_id, "translate", "--input",
                     str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_translate_refuses_a_grey_picture_for_a_colour_model(straight, tmp_path):
    from pipelines.services.sampling import run_tool
    from pipelines.translation.pix2pix import Pix2Pix
    pipe = load_for_sampling(straight.path, device="cpu")
    colour = Pix2Pix(pipe.config, {**pipe.info, "channels": 3})     # colour in, colour out
    drawing = tmp_path / "grey.png"
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(drawing)
    with pytest.raises(StudioError, match="grey.png is a grey picture; pix2pix translates "
                                          "colour pictures"):
        run_tool(colour, "translate", {}, input_paths=[drawing], cache_dir=tmp_path)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 32, 32), (16, 16)])
def test_translate_refuses_pictures_of_the_wrong_shape(straight, tmp_path, shape):
    pipe = load_for_sampling(straight.path, device="cpu")
    ctx = ToolContext(images=np.zeros(shape, np.float32), load_data=None, cache_dir=tmp_path)
    with pytest.raises(StudioError, match=r"translates pictures of 1 channel\(s\) at 16x16"):
        pipe.tool_translate(ctx, count=1, seed=0)


def test_wrong_data_is_refused_before_a_run_exists(spec, tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), "train", "pix2pix", "--data", "digits"]) == 2
    assert "needs paired data" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "train", "gan", "--data", spec]) == 2
    assert "needs image data" in capsys.readouterr().err
    with pytest.raises(StudioError, match="d_layers=4 halves 32 px images below 4x4"):
        start_run("pix2pix", spec.replace("size=16", "size=32"),
                  config_overrides={"d_layers": 4}, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())
