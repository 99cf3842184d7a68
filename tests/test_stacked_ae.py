"""stacked-ae (pipelines/classifiers/stacked_ae.py): one trainer phase per hidden layer's
denoising autoencoder, then fine-tuning; the pre-trained stack kept for the evaluation's
comparison with a random start at 1%, 10% and 100% of the labels; exact resume across the
phases; a classifier like the others (Classify tab, tools)."""

import numpy as np
import pytest
import torch

from helpers import TINY, records, stop_at
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.classifiers.stacked_ae import labelled_subset
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling

NET = {"width": 16, "depth": 2, "pretrain_steps": 3, "compare_steps": 4}
TRAINER = {**TINY, "steps": 9, "checkpoint_every": 2, "sample_every": 0, "final_eval": True}


def run_of(runs_dir, name, callbacks=()):
    run = start_run("stacked-ae", "digits", config_overrides=NET, trainer_overrides=TRAINER,
                    runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run, status = run_of(tmp_path_factory.mktemp("sae"), "straight")
    assert status == "done"
    return run


def test_phases_layer_by_layer_then_fine_tuning(straight):
    rows = [r for r in straight.metrics() if "step" in r]
    by_step = {r["step"]: r for r in rows if any(k.startswith(("rebuild", "loss")) for k in r)}
    assert "rebuild/layer1" in by_step[1] and "rebuild/layer1" in by_step[3]
    assert "rebuild/layer2" in by_step[4] and "rebuild/layer2" in by_step[6]
    assert "loss" in by_step[7] and "accuracy" in by_step[9]
    assert "val/accuracy" not in by_step[3] and "val/accuracy" in by_step[9]
    pipe = load_for_sampling(straight.path, device="cpu")
    kept, body = pipe.modules["pretrained"], pipe.modules["net"].body
    assert bool(kept.filled)
    # fine-tuning moved the body on from the stack pre-training left
    assert any(not torch.equal(a, b) for a, b in zip(kept.parameters(), body.parameters()))


def test_resume_is_exact_across_the_phases(straight, tmp_path):
    part, status = run_of(tmp_path, "part", callbacks=(stop_at(tmp_path, 4),))
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == records(straight)


def test_the_comparison_at_each_share_of_the_labels(straight):
    data = load_data("digits")
    scores = straight.info()["eval"]
    for share, examples in (("1%", 20), ("10%", 160), ("100%", len(data.train_labels))):
        assert scores[f"labels_{share}/examples"] == examples
        for start in ("pretrained", "random"):
            assert 0 <= scores[f"labels_{share}/{start}"] <= 1
        assert scores[f"labels_{share}/gain"] == pytest.approx(
            scores[f"labels_{share}/pretrained"] - scores[f"labels_{share}/random"])
    pipe = load_for_sampling(straight.path, device="cpu")
    # repeatable: the comparison has its own seed
    assert pipe.compare(data) == {k: v for k, v in scores.items() if k.startswith("labels_")}


def test_labelled_subsets_are_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 160)
    idx = labelled_subset(labels, 0.01, seed=3)
    assert np.bincount(labels[idx]).tolist() == [2] * 10
    assert np.array_equal(idx, labelled_subset(labels, 0.01, seed=3))
    assert not np.array_equal(idx, labelled_subset(labels, 0.01, seed=4))
    assert len(labelled_subset(labels[::80], 0.01, seed=0)) == 10    # at least one a class
