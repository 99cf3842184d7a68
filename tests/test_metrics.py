"""Image-quality metrics: the judge CNN and its cache, Fréchet distance, KID, precision/recall,
the real-vs-real floor, and `evaluate_run` on a trained run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import tiny_run
from PIL import Image
from scipy.linalg import sqrtm
from scipy.ndimage import gaussian_filter

from pipelines.data import load_data
from pipelines.core.errors import StudioError
from pipelines.cli import main
from pipelines.services.evaluation import evaluate_run
from pipelines.core.base import Samples
from pipelines.metrics import (draw_judged_samples, fit_probe_classifier, frechet_distance,
                               get_judge, judge_samples, kernel_inception_distance,
                               precision_recall, probe_accuracy, real_halves, training_copy)
from pipelines.core.runs import RunFolder
from pipelines.metrics import image_quality

N = 400  # images per side in the digits comparisons


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("judges")


@pytest.fixture(scope="module")
def judge(digits, judge_dir):
    return get_judge(digits, judge_dir)


@pytest.fixture(scope="module")
def halves(digits):
    a, b = real_halves(digits, seed=0)
    return a[:N], b[:N]


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(images, sigma=(0, 0, sigma, sigma))


def noise_like(images: np.ndarray) -> np.ndarray:
    return np.random.default_rng(1).random(images.shape, dtype=np.float32)


# --- the statistics against independent reference computations ------------------------------

def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                - 2 * np.trace(sqrtm(cov_a @ cov_b).real))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # a mean shift alone adds its squared length
    shift = np.zeros(8)
    shift[0] = 2.0
    assert frechet_distance(a, a + shift) == pytest.approx(4.0, rel=1e-9)


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 0.5
    k = lambda u, v: (u @ v.T / 6 + 1) ** 3  # noqa: E731
    off_diagonal = lambda m: (m.sum() - np.trace(m)) / (40 * 39)  # noqa: E731
    expected = off_diagonal(k(x, x)) + off_diagonal(k(y, y)) - 2 * k(x, y).mean()
    mean, std = kernel_inception_distance(x, y, subsets=5, subset_size=40)
    assert mean == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
    # smaller subsets: seeded, so the same seed gives the same numbers and another seed others
    assert kernel_inception_distance(x, y, subset_size=20, seed=3) == \
        kernel_inception_distance(x, y, subset_size=20, seed=3)
    assert kernel_inception_distance(x, y, subset_size=20, seed=4)[1] > 0


def test_precision_recall_of_overlapping_and_disjoint_clouds():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 4))
    assert min(precision_recall(real, rng.normal(size=(300, 4)))) > 0.8
    # samples on a tenth of the real spread: all look real (precision), little variety (recall)
    precision, recall = precision_recall(real, 0.1 * rng.normal(size=(300, 4)))
    assert precision > 0.95 and recall < 0.2
    assert precision_recall(real, rng.normal(size=(300, 4)) + 10) == (0.0, 0.0)


# --- the judge --------------------------------------------------------------------------------

def test_judge_classifies_digits_and_gives_features(judge, digits):
    assert judge.trained_now and judge.task == "classes" and judge.class_names == digits.class_names
    assert judge.val_accuracy >= 0.97
    assert np.mean(judge.predict(digits.val_images) == digits.val_labels) == \
        pytest.approx(judge.val_accuracy)
    proba = judge.predict_proba(digits.val_images[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1.0)
    features = judge.features(digits.val_images)
    assert features.shape == (len(digits.val_images), 64) and np.isfinite(features).all()
    with pytest.raises(StudioError, match="shape"):
        judge.features(np.zeros((2, 3, 8, 8), np.float32))


def test_judge_is_cached_and_reused(judge, digits, judge_dir):
    files = sorted(judge_dir.iterdir())
    assert [p.suffix for p in files] == [".json", ".safetensors"]
    sidecar = json.loads(files[0].read_text())
    assert sidecar["fingerprint"] == judge.fingerprint
    assert sidecar["val_accuracy"] == judge.val_accuracy and sidecar["data"] == "digits"
    mtimes = [p.stat().st_mtime_ns for p in files]

    again = get_judge(load_data("digits"), judge_dir)
    assert not again.trained_now and again.fingerprint == judge.fingerprint
    assert [p.stat().st_mtime_ns for p in files] == mtimes        # nothing rewritten
    assert np.array_equal(again.features(digits.val_images[:50]),
                          judge.features(digits.val_images[:50]))


def make_two_class_folder(root, count: int = 12):
    """8x8 grey pictures: dark ones with a bright bar (class "bars"), light ones with a dark
    dot (class "dots")."""
    rng = np.random.default_rng(0)
    for name in ("bars", "dots"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        bar = (rng.random((8, 8)) * 60).astype(np.uint8)
        bar[:, i % 6:i % 6 + 2] = 250
        Image.fromarray(bar).save(root / "bars" / f"{i}.png")
        dot = (190 + rng.random((8, 8)) * 60).astype(np.uint8)
        dot[i % 7, i % 5] = 0
        Image.fromarray(dot).save(root / "dots" / f"{i}.png")


def test_a_changed_data_set_gets_a_new_judge_and_a_damaged_one_is_retrained(tmp_path):
    folder, cache = tmp_path / "pics", tmp_path / "judges"
    make_two_class_folder(folder)
    spec = f"folder:{folder}"
    first = get_judge(load_data(spec, image_size=8), cache)
    assert first.trained_now and first.val_accuracy == 1.0       # an easy task
    assert not get_judge(load_data(spec, image_size=8), cache).trained_now

    make_two_class_folder(folder, count=13)                       # one more picture per class
    changed = get_judge(load_data(spec, image_size=8), cache)
    assert changed.trained_now and changed.fingerprint != first.fingerprint
    assert len(list(cache.glob("judge-*.safetensors"))) == 2

    weights = cache / f"judge-{changed.fingerprint[:16]}.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])               # truncated
    repaired = get_judge(load_data(spec, image_size=8), cache)
    assert repaired.trained_now and repaired.fingerprint == changed.fingerprint
    assert not get_judge(load_data(spec, image_size=8), cache).trained_now


def test_single_class_data_gets_a_rotation_judge(tmp_path):
    root = tmp_path / "letters"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):  # an "L" at jittered positions: its rotations are easy to tell apart
        picture = (rng.random((8, 8)) * 40).astype(np.uint8)
        r, c = i % 3, (i // 3) % 3
        picture[r:r + 5, c] = 255
        picture[r + 4, c:c + 4] = 255
        Image.fromarray(picture).save(root / f"{i}.png")
    data = load_data(f"folder:{root}", image_size=8)
    judge = get_judge(data, tmp_path / "judges")
    assert judge.task == "rotations" and judge.val_accuracy >= 0.75
    assert np.array_equal(judge.predict(data.val_images), np.zeros(len(data.val_images)))
    results = judge_samples(data, data.train_images, np.zeros(len(data.train_images), int),
                            cache_dir=tmp_path / "judges")
    assert "conditional_accuracy" not in results and results["n"] == 12


# --- the numbers on digits --------------------------------------------------------------------

def test_fd_and_kid_rank_real_blur_noise(judge, halves):
    real_a, real_b = halves
    target = judge.features(real_b)
    # (A blur of sigma 2 leaves an 8x8 digit a blob that the judge finds as far from digits as
    # uniform noise, so the ladder stops at sigma 1.)
    ladder = [real_a, blur(real_a, 0.5), blur(real_a, 1.0), noise_like(real_a)]
    fds = [frechet_distance(judge.features(images), target) for images in ladder]
    kids = [kernel_inception_distance(judge.features(images), target, subset_size=N // 2)[0]
            for images in ladder]
    assert fds[1] > 3 * fds[0] and fds[2] > 3 * fds[1] and fds[3] > 1.3 * fds[2], fds
    assert kids[1] > 10 * abs(kids[0]) and kids[2] > 2 * kids[1] and kids[3] > 2 * kids[2], kids
    assert abs(kids[0]) < 0.01 * kids[-1]  # real vs real: KID near zero, either sign


def test_every_view_ranks_real_blur_noise_and_sees_blur_the_class_survives(digits, judge,
                                                                          judge_dir):
    # The real rung: another copy of the training split than the floor's (its own seed), as
    # a model that had learned the training set perfectly would draw.
    real_a = training_copy(digits, N, seed=99)
    ladder = [real_a, blur(real_a, 0.5), blur(real_a, 1.0), noise_like(real_a)]
    judged = [judge_samples(digits, images, cache_dir=judge_dir) for images in ladder]
    for view in ("fd", "fd_layers", "fd_pixels"):
        ratios = [j[view] / j[f"{view}_floor"] for j in judged]
        # It reads near the floor, within the spread of one draw of N images (copies with
        # other seeds read 0.7x-1.6x on the judge's features, 0.9x-1.2x in pixels).
        assert 0.6 < ratios[0] < 1.6, (view, ratios)
        assert ratios[0] < ratios[1] < ratios[2] < ratios[3] and ratios[1] > 1, (view, ratios)
    # Blurred by half a pixel, the judge still reads the class of nearly every digit, yet in
    # every view the set is far from real: class-correct is not real-looking.
    class_kept = np.mean(judge.predict(ladder[1]) == judge.predict(real_a))
    assert class_kept > 0.95
    for view in ("fd", "fd_layers", "fd_pixels"):
        assert judged[1][view] > 3 * judged[1][f"{view}_floor"], view


def test_precision_recall_real_and_noise(judge, halves):
    real_a, real_b = halves
    target = judge.features(real_b)
    precision, recall = precision_recall(target, judge.features(real_a))
    assert precision > 0.8 and recall > 0.8
    precision, recall = precision_recall(target, judge.features(noise_like(real_a)))
    assert precision < 0.3 and recall < 0.3


def test_judge_samples_reads_every_number_against_its_floor(judge, digits, judge_dir,
                                                           monkeypatch):
    real_a, _ = real_halves(digits, seed=0)
    # The floor's own copy of the training split as the "samples": with one split each number
    # equals its floor, by definition; with the default splits KID, precision and recall (the
    # first split's) do.
    same = judge_samples(digits, training_copy(digits, N, seed=0), cache_dir=judge_dir)
    assert same["n"] == N and "conditional_accuracy" not in same
    for key in ("kid", "precision", "recall"):
        assert same[key] == pytest.approx(same[f"{key}_floor"])
    views, splits = ("fd", "fd_layers", "fd_pixels"), 4
    with monkeypatch.context() as patch:
        patch.setattr(image_quality, "FLOOR_SPLITS", splits)
        four = judge_samples(digits, training_copy(digits, N, seed=0), cache_dir=judge_dir)
        patch.setattr(image_quality, "FLOOR_SPLITS", 1)
        one = [judge_samples(digits, training_copy(digits, N, seed=k), cache_dir=judge_dir,
                             seed=k) for k in range(splits)]
    for key in views:
        assert one[0][key] == pytest.approx(one[0][f"{key}_floor"])
        # The floor is the mean over the splits, and one split's is a draw from it.
        floors = [j[f"{key}_floor"] for j in one]
        assert four[f"{key}_floor"] == pytest.approx(np.mean(floors))
        assert np.std(floors) > 0.01 * np.mean(floors)
    assert same["judge_val_accuracy"] == judge.val_accuracy
    assert abs(same["kid_floor"]) < 3 * same["kid_floor_std"] + 1e-3

    noisy = judge_samples(digits, noise_like(real_a[:N]), cache_dir=judge_dir)
    assert noisy["fd_floor"] == same["fd_floor"] and noisy["fd"] > 50 * noisy["fd_floor"]
    assert noisy["kid"] > 100 * abs(noisy["kid_floor"]) and noisy["precision"] < 0.3

    # More samples than half the real pool: n stops at the half.
    many = judge_samples(digits, np.concatenate([real_a, real_a]), cache_dir=judge_dir)
    assert many["n"] == len(real_a) == 898


def test_ten_draws_of_samples_move_less_with_the_seeds_than_one(digits, judge_dir):
    # A "model" whose samples are copies of the training split: one draw of N reads anywhere
    # between about 0.7x and 1.3x its floor with the seed, so a model is judged on ten
    # draws, each Frechet distance split comparing its own draw.
    def copies(n, seed, **controls):
        return Samples(images=training_copy(digits, n, seed=seed))

    def ratios(draws):
        out = []
        for offset in range(5):
            images, labels = draw_judged_samples(
                lambda n, seed: copies(n, seed + 10_000 * offset), N, draws)
            assert images.shape == (draws * N, 1, 8, 8) and labels is None
            judged = judge_samples(digits, images, cache_dir=judge_dir, draws=draws)
            assert judged["n"] == N and judged["draws"] == draws
            out.append([judged[k] / judged[f"{k}_floor"] for k in ("fd", "fd_layers")])
        return np.array(out)                                           # (offsets, views)

    one, ten = ratios(1), ratios(10)
    assert (ten.std(0) < 0.6 * one.std(0)).all()
    assert np.abs(ten.mean(0) - 1).max() < 0.15          # the copy reads about its floor
    with pytest.raises(ValueError, match="equal draws"):
        judge_samples(digits, training_copy(digits, 2 * N + 1), cache_dir=judge_dir, draws=2)
    labels = np.concatenate([np.arange(N) % 10, (np.arange(N) + 1) % 10])
    with pytest.raises(ValueError, match="same classes"):
        judge_samples(digits, training_copy(digits, 2 * N), labels, cache_dir=judge_dir,
                      draws=2)


def test_conditional_accuracy_is_read_against_the_judges(judge, digits, judge_dir):
    images, labels = digits.val_images, digits.val_labels
    right = judge_samples(digits, images, labels, cache_dir=judge_dir)
    assert right["conditional_accuracy"] == pytest.approx(judge.val_accuracy)
    wrong = judge_samples(digits, images, (labels + 1) % 10, cache_dir=judge_dir)
    assert wrong["conditional_accuracy"] < 0.05
    with pytest.raises(StudioError, match="labels"):
        judge_samples(digits, images, labels[:5], cache_dir=judge_dir)


def test_a_conditional_models_floor_has_its_class_counts(digits, judge_dir):
    from pipelines.metrics.image_quality import class_matched_halves
    labels = np.arange(300) % 10                       # 30 of each digit, as a cGAN asks
    a, b = class_matched_halves(digits, labels)
    assert len(a) == len(b) == 300
    assert not set(map(bytes, a)) & set(map(bytes, b))                  # disjoint draws
    # Random halves differ in how many of each digit they hold; on the judge's class
    # features that alone inflates the floor, and a class-balanced set looked better than
    # real. With the samples' own counts the floor is several times lower.
    images = np.concatenate([digits.val_images] * 2)[:300]
    plain = judge_samples(digits, images, cache_dir=judge_dir)
    matched = judge_samples(digits, images, labels, cache_dir=judge_dir)
    assert matched["fd_floor"] < 0.5 * plain["fd_floor"]
    assert class_matched_halves(digits, np.zeros(300, int)) is None     # 178 zeros: too few


def test_linear_probe_still_importable_from_metrics(digits):
    probe = fit_probe_classifier(digits)
    assert probe_accuracy(probe, digits.val_images, digits.val_labels) > 0.9


# --- evaluate_run -----------------------------------------------------------------------------

def test_evaluate_run_writes_eval_into_the_run(runs_dir, judge_dir, judge, capsys):
    # The digits judge trained above, copied into this runs folder's cache: reused, not
    # retrained, by the run's own evaluation at the end of training and by evaluate_run.
    shutil.copytree(judge_dir, runs_dir / ".judges")
    run, status = tiny_run(runs_dir)
    assert status == "done"
    cached = sorted((runs_dir / ".judges").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in cached]

    assert main(["eval", run.id]) == 0            # the CLI command prints what it wrote
    assert "fd_floor:" in capsys.readouterr().out
    results = RunFolder(run.path).info()["eval"]
    assert [p.stat().st_mtime_ns for p in cached] == mtimes
    assert results["n"] == 898 and {"fd", "fd_floor", "kid", "kid_floor", "precision", "recall",
                                   "judge_val_accuracy"} <= set(results)
    assert results["fd"] > results["fd_floor"] > 0     # 8 training steps: far from real digits
    info = RunFolder(run.path).info()
    assert info["eval"] == pytest.approx(results) and info["eval_step"] == 8
    assert info["eval_judge"] == judge.fingerprint[:16]
    row = run.metrics()[-1]
    assert row["step"] == 8 and row["eval/fd"] == pytest.approx(results["fd"])

    # The same seed draws the same samples and halves: the same numbers.
    assert evaluate_run(run.path) == pytest.approx(results)
    with pytest.raises(StudioError, match="no run"):
        evaluate_run("no-such-run")
    with pytest.raises(StudioError, match="no checkpoint at step 5"):
        evaluate_run(run.id, step=5)

