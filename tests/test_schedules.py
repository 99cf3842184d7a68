"""Learning-rate schedules the trainer owns (pipelines/schedules.py)."""

import math

import pytest

from pipelines.schedules import Schedule
from pipelines.trainer import start_run, train_run


def test_warm_up_then_each_decay_down_to_its_floor():
    cosine = Schedule(warmup_steps=10, decay="cosine", decay_steps=110, floor=0.1)
    assert cosine.factor(0) == pytest.approx(0.1) and cosine.factor(9) == 1.0
    assert cosine.factor(60) == pytest.approx(0.55)          # half way down the cosine
    assert cosine.factor(110) == cosine.factor(10_000) == pytest.approx(0.1)
    linear = Schedule(warmup_steps=0, decay="linear", decay_steps=100, floor=0.0)
    assert [linear.factor(s) for s in (0, 50, 100, 200)] == [1.0, 0.5, 0.0, 0.0]
    assert Schedule().factor(0) == Schedule().factor(10 ** 6) == 1.0
    later = Schedule(warmup_steps=4, start=100)              # a phase that begins at step 100
    assert later.factor(99) == 0.0 and later.factor(100) == 0.25 and later.factor(103) == 1.0
    with pytest.raises(ValueError, match="decay must be one of"):
        Schedule(decay="exponential")


def test_the_hand_written_classifier_schedule_is_reproduced_exactly():
    # The formula lenet5 & co. used before the trainer owned schedules, after the warm-up.
    lr, warmup, end = 2e-3, 100, 2000
    schedule = Schedule(warmup_steps=warmup, decay="cosine", decay_steps=end, floor=0.02)
    for step in range(warmup, 2500, 37):
        progress = min(1.0, (step - warmup) / max(1, end - warmup))
        assert lr * schedule.factor(step) == lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(
            math.pi * progress)))


def test_the_trainer_sets_logs_and_checkpoints_the_scheduled_rate(runs_dir):
    run = start_run("lenet5", "digits", runs_dir=runs_dir,
                    config_overrides={"warmup_steps": 4, "schedule_steps": 8, "ema_decay": 0.0},
                    trainer_overrides={"steps": 10, "batch_size": 16, "log_every": 1,
                                       "sample_every": 0, "checkpoint_every": 5,
                                       "final_eval": False})
    assert train_run(run) == "done"
    lrs = [r["lr"] for r in run.metrics() if "lr" in r]
    peak = run.info()["config"]["lr"]
    assert lrs[:4] == pytest.approx([peak / 4, peak / 2, 3 * peak / 4, peak])
    assert lrs[-2:] == pytest.approx([0.02 * peak] * 2)
    import json
    groups = json.loads((run.checkpoint_dir(5) / "optimizers.json").read_text())["opt"][
        "param_groups"]
    assert all(g["initial_lr"] == peak for g in groups)     # the peak travels with a resume
