"""Super-resolution (srresnet, srgan) and the photos data set: photos trains on one photograph
and validates on the other; both pipelines train with finite numbers and resume exactly (srgan
across its MSE-to-adversarial boundary); samples are input | bicubic | output | original, and
repeat per seed; evaluation reports the model next to bicubic with FD against its floor;
the upscale tool runs from the CLI and refuses a wrong input in one line."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import records
from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data import load_data, photos
from pipelines.services.loading import load_for_sampling
from pipelines.superres import quality as Q

TINY = {"width": 4, "blocks": 1, "disc_width": 4}
TRAINER = {"steps": 6, "batch_size": 8, "log_every": 1, "sample_every": 3,
           "checkpoint_every": 3, "sample_count": 2, "seed": 3, "final_eval": False}
# srgan at 8 px (2x2 inputs): its content network, the photos judge, trains in seconds there
SRGAN = {**TINY, "image_size": 8, "pretrain_steps": 3}


def run_of(pipeline, runs_dir, name, config, **trainer):
    return start_run(pipeline, "photos", config_overrides=config,
                     trainer_overrides={**TRAINER, **trainer}, runs_dir=runs_dir, name=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("superres-runs")


class StubJudge:
    """Pixels as features: enough to check which images FD compares."""
    def features(self, images):
        return np.asarray(images, np.float64).reshape(len(images), -1)[:, :12]


@pytest.fixture(scope="module")
def trained(runs):
    # The content network is the photos judge; training it (pipelines/metrics, tested there)
    # takes longer than this whole file may, so a fixed random conv stands in for it here.
    def stub_feature_net(data):
        net = torch.nn.Conv2d(data.channels, 4, 3)
        with torch.no_grad():
            net.weight.copy_(torch.randn(net.weight.shape, generator=torch.Generator()
                                         .manual_seed(0)))
        return net.requires_grad_(False)
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Q, "feature_net", stub_feature_net)
        for pipeline, config in (("srresnet", TINY), ("srgan", SRGAN)):
            run = run_of(pipeline, runs, pipeline, config)
            assert train_run(run) == "done"
            out[pipeline] = run
        yield out


def test_photos_train_on_one_photograph_and_validate_on_the_other():
    data = load_data("photos")
    assert data.train_images.shape == (2000, 3, 32, 32)
    assert data.val_images.shape == (500, 3, 32, 32) and data.class_names == ["photo"]
    pictures = photos._photographs()
    np.testing.assert_array_equal(data.train_images, photos._crops(
        pictures["china.jpg"], 32, 2000, photos.TRAIN_SEED))
    np.testing.assert_array_equal(data.val_images, photos._crops(
        pictures["flower.jpg"], 32, 500, photos.VAL_SEED))
    np.testing.assert_array_equal(load_data("photos").val_images, data.val_images)  # seeded
    assert load_data("photos", image_size=64).train_images.shape[1:] == (3, 64, 64)
    with pytest.raises(StudioError, match="at most 213 px"):
        load_data("photos", image_size=256)


@pytest.mark.parametrize("pipeline", ["srresnet", "srgan"])
def test_trains_and_resumes_exactly(pipeline, trained, runs):
    straight = trained[pipeline]
    logged = [r for r in straight.metrics() if "val/psnr" in r]
    assert len(logged) == 6 and all(math.isfinite(r["val/psnr"]) for r in logged)
    if pipeline == "srgan":   # 3 steps of MSE, then the adversarial phase
        assert "loss_d" not in logged[2] and {"loss_d", "feature_loss"} <= set(logged[3])
    config = TINY if pipeline == "srresnet" else SRGAN
    split = run_of(pipeline, runs, f"{pipeline}-split", config, steps=3)
    assert train_run(split) == "done"
    assert train_run(split, resume=True, total_steps=6) == "done"
    after = [r for r in records(split) if r["step"] > 3]
    assert after and after == [r for r in records(straight) if r["step"] > 3]


def test_samples_are_four_rows_that_repeat_per_seed(trained):
    pipe = load_for_sampling(trained["srresnet"].path, device="cpu")
    samples = pipe.sample(3, 10)
    assert samples.images.shape == (12, 3, 32, 32) and samples.columns == 4
    low, bic, out, original = samples.images.reshape(3, 4, 3, 32, 32).swapaxes(0, 1)
    val = load_data("photos").val_images
    assert all(any(np.array_equal(o, v) for v in val) for o in original)
    np.testing.assert_array_equal(low[:, :, ::4, ::4].repeat(4, 2).repeat(4, 3), low)  # blocks
    np.testing.assert_allclose(bic, Q.bicubic(Q.reduce(torch.from_numpy(original))).numpy())
    alone = pipe.sample(1, 12).images                       # image 2 of the batch, alone
    np.testing.assert_allclose(alone, samples.images[8:], atol=1e-6)
    with pytest.raises(StudioError, match="draws no class"):
        pipe.sample(2, 0, labels=1)
    # `studio sample RUN --upscale-with SR_RUN`: any size; grey repeated to the model's colour
    grey = np.random.default_rng(0).random((2, 1, 5, 5), dtype=np.float32)
    np.testing.assert_allclose(pipe.upscale_images(grey),
                               pipe.upscale_images(grey.repeat(3, axis=1)))
    assert pipe.upscale_images(grey).shape == (2, 3, 20, 20)


def test_evaluation_is_next_to_bicubic_with_fd_against_its_floor(trained):
    pipe = load_for_sampling(trained["srgan"].path, device="cpu")
    data = load_data("photos", image_size=8)
    scores = pipe.evaluate(data)     # no cache folder: no judge, so no FD
    hr = torch.from_numpy(data.val_images)
    bic = Q.bicubic(Q.reduce(hr))
    assert scores["psnr_bicubic"] == pytest.approx(Q.set_psnr(bic, hr))
    for key in ("psnr", "psnr_per_image", "ssim", "ssim_bicubic"):
        assert math.isfinite(scores[key]), key
    # FD: outputs of half A against originals of half B, next to originals of A against B
    originals = hr.numpy()
    fd = Q.paired_fd(StubJudge(), originals, bic.numpy(), originals)
    assert fd["fd"] == fd["fd_floor"] < fd["fd_bicubic"] and fd["fd_n"] == len(hr) // 2
    x = torch.rand(2, 3, 16, 16)
    np.testing.assert_allclose(Q.ssim(x, x).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(Q.psnr(x, x - 0.1).numpy(), 20, atol=1e-3)


def test_upscale_tool_from_the_cli_and_bad_inputs_in_one_line(trained, runs, tmp_path,
                                                             capsys):
    run = trained["srresnet"]
    picture = (load_data("photos").val_images[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    small = tmp_path / "small.png"
    Image.fromarray(picture).resize((8, 8), Image.Resampling.BICUBIC).save(small)
    out = tmp_path / "up.png"
    args = ["--runs-dir", str(runs), "tool", run.id, "upscale"]
    assert main(args + ["--input", str(small), "--out", str(out)]) == 0
    assert out.is_file() and "8x8 -> 32x32" in capsys.readouterr().out
    assert main(args + ["--out", str(tmp_path / "val.png"), "--set", "count=2"]) == 0
    assert "psnr_bicubic" in capsys.readouterr().out
    grey, big = tmp_path / "grey.png", tmp_path / "big.png"
    Image.fromarray(picture[:8, :8, 0]).save(grey)
    Image.fromarray(picture[:16, :16]).save(big)
    for path, message in ((grey, "is greyscale; this model upscales colour"),
                          (big, "is 16x16 pixels; this model upscales 8x8")):
        assert main(args + ["--input", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_bad_sizes_are_refused_and_digits_work(tmp_path):
    with pytest.raises(StudioError, match="multiple of 4"):
        start_run("srresnet", "digits", config_overrides={"image_size": 10}, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())
    run = start_run("srresnet", "digits", config_overrides=TINY,
                    trainer_overrides={**TRAINER, "steps": 2}, runs_dir=tmp_path)
    assert train_run(run) == "done"
    assert load_for_sampling(run.path, device="cpu").sample(2, 0).images.shape == (8, 1, 8, 8)
