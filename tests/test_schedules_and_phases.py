"""Learning-rate schedules and training phases, owned by the trainer (pipelines/core/schedules.py,
pipelines/core/phases.py)."""

import math

import pytest

from pipelines.core.schedules import Schedule
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run


def test_warm_up_then_each_decay_down_to_its_floor():
    cosine = Schedule(warmup_steps=10, decay="cosine", decay_steps=110, floor=0.1)
    assert cosine.factor(0) == pytest.approx(0.1) and cosine.factor(9) == 1.0
    assert cosine.factor(60) == pytest.approx(0.55)          # half way down the cosine
    assert cosine.factor(110) == cosine.factor(10_000) == pytest.approx(0.1)
    linear = Schedule(warmup_steps=0, decay="linear", decay_steps=100, floor=0.0)
    assert [linear.factor(s) for s in (0, 50, 100, 200)] == [1.0, 0.5, 0.0, 0.0]
    assert Schedule().factor(0) == Schedule().factor(10 ** 6) == 1.0
    inverse = Schedule(decay="inverse", decay_steps=100)     # DANN's (1 + 10 p)^-0.75
    assert inverse.factor(0) == 1.0 and inverse.factor(50) == pytest.approx(6 ** -0.75)
    assert inverse.factor(100) == inverse.factor(500) == pytest.approx(11 ** -0.75)
    later = Schedule(warmup_steps=4, start=100)              # a phase that begins at step 100
    assert later.factor(99) == 0.0 and later.factor(100) == 0.25 and later.factor(103) == 1.0
    first = Schedule(decay="linear", decay_steps=100, floor=0.1, end=100)   # a first phase
    assert first.factor(99) > 0.1 and first.factor(100) == first.factor(500) == 0.0  # idle
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


def test_phases_lie_end_to_end_and_each_step_has_one():
    from pipelines.core.phases import Phase, span_at, spans
    laid = spans([Phase("autoencoder", 1500, "autoencoder_step"), Phase("diffusion")], 7000)
    assert [(s.phase.name, s.start, s.end) for s in laid] == [("autoencoder", 0, 1500),
                                                              ("diffusion", 1500, 7000)]
    assert span_at(laid, 1499).phase.name == "autoencoder"
    assert span_at(laid, 1500).phase.name == "diffusion" and span_at(laid, 10**6).index == 1
    short = spans([Phase("autoencoder", 1500), Phase("diffusion")], 10)
    assert [(s.phase.name, s.steps) for s in short] == [("autoencoder", 10)]
    assert [(s.phase.name, s.start, s.end) for s in spans([Phase("training")], 5)] == [
        ("training", 0, 5)]
    with pytest.raises(ValueError, match="only the last phase"):
        spans([Phase("a"), Phase("b", 3)], 10)


def test_a_run_in_phases_says_which_one_and_its_own_eta(runs_dir):
    from studio.live import progress_text
    config = {"width": 8, "text_width": 16, "text_layers": 1, "num_train_timesteps": 50,
              "image_size": 8, "lr_warmup_steps": 2, "autoencoder_width": 4,
              "autoencoder_steps": 4}
    seen = []

    def look(kind, event):
        if kind == "log":
            seen.append(dict(run.info()["phase"]))
    run = start_run("ddpm-text", "shapes", config_overrides=config, runs_dir=runs_dir,
                    trainer_overrides={"steps": 6, "batch_size": 8, "log_every": 2,
                                       "sample_every": 0, "checkpoint_every": 0,
                                       "final_eval": False})
    assert train_run(run, callbacks=(look,)) == "done"
    assert [(p["name"], p["number"], p["of"]) for p in seen] == [
        ("autoencoder", 1, 2), ("autoencoder", 1, 2), ("diffusion", 2, 2)]
    assert seen[0]["after"] == [{"name": "diffusion", "steps": 2}] and seen[2]["after"] == []
    lrs = {k for r in run.metrics() for k in r if k.startswith("lr")}
    assert lrs == {"lr_opt", "lr_autoencoder"}     # two scheduled optimisers, each logged
    last = [r for r in run.metrics() if "lr_opt" in r][-1]      # the diffusion phase's
    assert last["lr_opt"] > 0 and last["lr_autoencoder"] == 0    # the autoencoder is idle
    from pipelines.core.liveness import TrainerLock
    run.update_info(status="running", phase=seen[0], eta_seconds=30)
    with TrainerLock(run.path):   # as while its trainer runs
        text = progress_text(run)
    assert "phase 1/2: autoencoder" in text and "ETA of this phase" in text
    assert "then 2 diffusion steps" in text


def test_what_every_ema_decay_help_says_about_the_warm_up_is_what_the_trainer_does():
    import torch
    from pipelines.core.config import EMA_WARM_UP, EMA_WARM_UP_POWER
    from pipelines.core.ema import EMA
    from pipelines.gan.spec import GANConfig
    from pipelines.core.config import describe
    ema = EMA([torch.nn.Parameter(torch.zeros(1))], decay=0.9999,
              power=EMA_WARM_UP_POWER)                       # as Trainer._make_ema builds it
    assert "0.999 only after ~31,600 updates" in EMA_WARM_UP
    assert ema.get_decay(31_600) == pytest.approx(0.999, abs=2e-6)
    assert ema.get_decay(12_000) < 0.9982                     # a 12,000-step GAN: never 0.999
    assert EMA_WARM_UP in next(f.help for f in describe(GANConfig) if f.name == "ema_decay")
