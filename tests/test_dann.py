"""dann (pipelines/classifiers/dann.py) on digits-m (pipelines/data/digits_m.py): the two
domains, gradient reversal, the evaluation's source-only and target-trained comparison in the
same run, exact resume, the domain map, and a clear message for data without two labelled
domains."""

import numpy as np
import pytest
import torch

from helpers import TINY, records, stop_at
from pipelines.classifiers.dann import ReverseGradient, lambda_ramp
from pipelines.core.errors import StudioError
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from pipelines.services.sampling import run_tool

NET = {"width": 4, "schedule_steps": 6, "baseline_steps": 3}
TRAINER = {**TINY, "steps": 6, "checkpoint_every": 2, "sample_every": 0, "final_eval": True}


def run_of(runs_dir, name, callbacks=()):
    run = start_run("dann", "digits-m", config_overrides=NET, trainer_overrides=TRAINER,
                    runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run, status = run_of(tmp_path_factory.mktemp("dann"), "straight")
    assert status == "done"
    return run


def test_digits_m_is_the_digits_over_photo_texture():
    data = load_data("digits-m")
    assert data.train_a.shape[1:] == data.train_b.shape[1:] == (3, 28, 28)
    assert np.array_equal(data.train_a_labels, data.train_labels)      # the same digits
    source, target = data.train_a[0], data.train_b[0]
    assert np.array_equal(source[0], source[1])                          # grey
    assert not np.array_equal(target[0], target[1])                      # coloured
    assert target.std() > 0 and abs(target.mean() - source.mean()) > 0.05


def test_gradient_reversal_and_the_ramp():
    x = torch.ones(3, requires_grad=True)
    ReverseGradient.apply(x, 0.5).sum().backward()
    assert x.grad.tolist() == [-0.5] * 3
    assert lambda_ramp(0, 100) == 0 and lambda_ramp(10 ** 6, 100) == pytest.approx(0.99991, 1e-4)
    assert 0 < lambda_ramp(10, 100) < lambda_ramp(50, 100) < 1


def test_training_logs_both_domains_and_the_evaluation_compares(straight):
    rows = [r for r in straight.metrics() if "step" in r]
    last = [r for r in rows if "domain_loss" in r][-1]
    assert {"loss", "domain_accuracy", "lambda", "lr"} <= last.keys()
    assert any("val/target_accuracy" in r and "val/source_accuracy" in r for r in rows)
    scores = straight.info()["eval"]
    for model in ("dann", "source_only", "target_trained"):
        for domain in ("source", "target"):
            assert 0 <= scores[f"{model}/{domain}_accuracy"] <= 1
    assert scores["gain"] == pytest.approx(scores["dann/target_accuracy"]
                                           - scores["source_only/target_accuracy"])
    data = load_data("digits-m")
    pipe = load_for_sampling(straight.path, device="cpu")
    assert pipe.evaluate(data, straight.path) == scores          # its own seed: repeatable


def test_it_classifies_a_picture_like_the_other_classifiers(straight):
    from pipelines.classifiers.classify import classify_image
    picture = (load_data("digits-m").val_b[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    [answer] = classify_image(picture, straight.path.parent, data="digits-m")
    assert answer["pipeline"] == "dann" and answer["prediction"] in [str(d) for d in range(10)]


def test_resume_is_exact(straight, tmp_path):
    part, status = run_of(tmp_path, "part", callbacks=(stop_at(tmp_path, 3),))
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == records(straight)


def test_the_domain_map_draws_before_and_after(straight, tmp_path):
    pipe = load_for_sampling(straight.path, device="cpu")
    result = run_tool(pipe, "domains", {"count": 20, "baseline_steps": 2}, cache_dir=tmp_path)
    assert result.figure_png.startswith(b"\x89PNG")
    assert set(result.values) == {"source only target accuracy",
                                  "DANN (this run) target accuracy"}


def test_data_without_two_labelled_domains_is_refused(tmp_path):
    from test_unpaired_data import make_domains
    make_domains(tmp_path / "pictures")                       # two domains, no classes
    with pytest.raises(StudioError, match="dann adapts a classifier .* not such data"):
        start_run("dann", f"unpaired:{tmp_path / 'pictures'}", runs_dir=tmp_path / "runs")
    with pytest.raises(StudioError, match="needs unpaired data, but 'digits' is image data"):
        start_run("dann", "digits", runs_dir=tmp_path / "runs")
