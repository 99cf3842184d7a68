"""What a GPU run relies on, proved where CI can: on the CPU.

- resume puts every optimizer state tensor and EMA shadow on its parameter's device, dtype
  and memory layout (a channels-last conv weight on a GPU made fused Adam refuse the first
  resumed step);
- fp16's gradient scaler: the steps it skips are counted, not called a divergence; its scale
  is checkpointed, so an fp16 run resumes exactly; a NaN loss still stops the run;
- `--mixed-precision auto` resolves as docs/scaling.md says;
- best-checkpoint keeping and early stopping.

The scaler and channels-last paths are GPU-only in Accelerate and the trainer; here they are
switched on for the CPU by hand (torch's GradScaler and channels-last tensors work there),
so the trainer's own code runs them.
"""

import json
import shutil

import pytest
import torch
from accelerate import Accelerator

from pipelines.core import checkpoints as ckpt
from pipelines.core import hardware as hw
from pipelines.core import trainer as trainer_module
from pipelines.core.best import BestTracker
from pipelines.classifiers.common import ClassifierPipeline
from pipelines.services.export import export_run
from pipelines.gan import DCGAN
from pipelines.services.loading import load_for_sampling, weights_file
from pipelines.core.trainer import Trainer, TrainingFailed
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

from helpers import losses, stop_at, tiny_run


# --- resume lands on the parameters' device, dtype and layout ---------------------------------
@pytest.fixture
def channels_last_on_cpu(monkeypatch):
    """The trainer's channels-last path (CUDA only) switched on for the CPU."""
    real = hw.to_channels_last

    def everywhere(modules, device, enabled):
        return real(modules, torch.device("cuda"), enabled) if enabled else False
    monkeypatch.setattr(hw, "to_channels_last", everywhere)


def state_mismatches(trainer):
    """(what, name) of every optimizer state tensor or EMA shadow whose device, dtype or
    strides differ from its parameter's."""
    bad = []
    for name, opt in trainer.optimizers.items():
        for group in opt.optimizer.param_groups:
            for p in group["params"]:
                for key, v in opt.optimizer.state.get(p, {}).items():
                    if torch.is_tensor(v) and v.shape == p.shape and (
                            v.device, v.dtype, v.stride()) != (p.device, p.dtype, p.stride()):
                        bad.append((name, key, v.stride(), p.stride()))
    for name, ema in trainer.ema.items():
        for s, p in zip(ema.shadow_params, trainer._unwrapped(name).parameters()):
            if (s.device, s.stride()) != (p.device, p.stride()):
                bad.append(("ema", name, s.stride(), p.stride()))
    return bad


def test_resume_gives_optimizer_state_and_ema_their_parameters_layout(runs_dir, channels_last_on_cpu):
    whole, _ = tiny_run(runs_dir, name="whole")
    part, status = tiny_run(runs_dir, name="part", callbacks=(stop_at(runs_dir, 3),))
    assert status == "stopped"

    resumed = Trainer(part)
    assert resumed.channels_last   # the conv weights really are channels-last here
    conv = next(m for m in resumed._unwrapped("discriminator").modules()
                if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    resumed.load_checkpoint()
    assert state_mismatches(resumed) == []
    assert resumed.train(resume=False) == "done"   # continues from the loaded state
    assert losses(part) == losses(whole)


def test_load_optimizer_state_matches_strides_device_and_dtype():
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(conv.parameters(), fused=True)
    conv(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    tensors, meta = ckpt.optimizer_state("o", opt)
    saved = {k: v.contiguous() for k, v in tensors.items()}   # what a checkpoint holds
    fresh = torch.optim.Adam(conv.parameters(), fused=True)
    ckpt.load_optimizer_state("o", fresh, saved, json.loads(json.dumps(meta)))
    for p in conv.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            v = fresh.state[p][key]
            assert (v.device, v.dtype, v.stride()) == (p.device, p.dtype, p.stride())
            assert torch.equal(v, opt.state[p][key])
        assert fresh.state[p]["step"].dtype == torch.float32   # what fused Adam wants


# --- fp16: a gradient scaler on the CPU -------------------------------------------------------
class ScaledAccelerator(Accelerator):
    """Accelerate's fp16 set-up as on a GPU: a GradScaler (torch's, on the CPU) that the
    optimizers and `backward` use. The scale starts high enough that the first steps
    overflow, as on a GPU, where the scaler backs off by design."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.state.mixed_precision == "fp16":
            self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)
            self.native_amp = True


@pytest.fixture
def fp16_scaler(monkeypatch):
    monkeypatch.setattr(trainer_module, "Accelerator", ScaledAccelerator)


def test_scaler_skipped_steps_are_counted_not_called_divergence(runs_dir, fp16_scaler):
    run, status = tiny_run(runs_dir, name="fp16", mixed_precision="fp16")
    assert status == "done"
    skipped = [r["skipped_steps"] for r in run.metrics() if "skipped_steps" in r]
    assert skipped and skipped[-1] >= 1            # the scaler did skip, and the run went on
    assert skipped == sorted(skipped)              # a count over the run
    assert skipped[-1] < 8                         # ... and later steps trained
    assert all(torch.isfinite(torch.tensor(v)).all() for v in losses(run).values())


def test_an_fp16_run_resumes_exactly_with_its_scaler_state(runs_dir, fp16_scaler):
    whole, _ = tiny_run(runs_dir, name="whole", mixed_precision="fp16")
    part, status = tiny_run(runs_dir, name="part", mixed_precision="fp16", callbacks=(stop_at(runs_dir, 3),))
    assert status == "stopped"
    scaler = json.loads((part.checkpoint_dir(3) / "trainer.json").read_text())["scaler"]
    assert scaler["scale"] < 2.0 ** 24             # the backed-off scale is what was saved
    assert train_run(part, resume=True) == "done"
    assert losses(part) == losses(whole)
    skipped = lambda r: [m.get("skipped_steps") for m in r.metrics() if "loss_d" in m]
    assert skipped(part) == skipped(whole)


def test_a_nan_loss_still_stops_an_fp16_run(runs_dir, fp16_scaler, monkeypatch):
    real_step = DCGAN.train_step

    def nan_after_5(self, batch, ctx):
        logs = real_step(self, batch, ctx)
        if ctx.step >= 5:
            logs["loss_g"] = torch.tensor(float("nan"))
        return logs
    monkeypatch.setattr(DCGAN, "train_step", nan_after_5)
    with pytest.raises(TrainingFailed, match="loss_g became non-finite near step 6"):
        tiny_run(runs_dir, name="nan", mixed_precision="fp16")


# --- auto precision ---------------------------------------------------------------------------
def test_auto_precision_resolves_as_documented():
    line = hw.AUTO_BF16_MIN_WORK
    assert hw.resolve_precision("auto", False, False, 10 ** 9, 64) == ("no", "auto: fp32 on the CPU")
    assert hw.resolve_precision("auto", True, True, line // 64, 64)[0] == "bf16"
    assert hw.resolve_precision("auto", True, True, line // 64 - 1, 64)[0] == "no"
    assert hw.resolve_precision("auto", True, False, line, 64)[0] == "no"   # no bf16 on this GPU
    for asked in ("no", "bf16", "fp16"):
        assert hw.resolve_precision(asked, True, True, 1, 1) == (asked, "as asked")
    # what was measured on an H200 (fp32 -> bf16 steps/s): the vae's gpu preset gained 1.62x,
    # lenet5's lost (0.87x), the default transformer lost (0.84x)
    assert hw.resolve_precision("auto", True, True, 2_035_905, 256) == (
        "bf16", "auto: bf16 for 2.0M parameters x batch 256 on a GPU")
    assert hw.resolve_precision("auto", True, True, 505_226, 256)[0] == "no"
    assert hw.resolve_precision("auto", True, True, 860_000, 16)[1] == (
        "auto: fp32 (TF32) for 0.9M parameters x batch 16, below the 300M where bf16 paid on "
        "a GPU")


def test_auto_is_the_default_and_the_run_says_what_it_chose(runs_dir):
    run, status = tiny_run(runs_dir, name="auto")
    info = run.info()
    assert info["trainer"]["mixed_precision"] == "auto"
    if info["device"] == "cpu":
        assert (info["precision"], info["precision_reason"]) == ("no", "auto: fp32 on the CPU")
    from studio.live import progress_text
    assert "fp32 precision (auto: fp32 on the CPU)" in progress_text(run)


# --- best checkpoint and early stopping ---------------------------------------------------------
def test_best_tracker_counts_validations_without_improvement():
    t = BestTracker("val/loss", "min", patience=2)
    assert t.update({"val/loss": 3.0}, 10) and t.update({"val/loss": 2.0}, 20)
    assert not t.update({"loss": 1.0}, 25)                 # not measured: changes nothing
    assert not t.update({"val/loss": 2.5}, 30) and not t.should_stop
    assert not t.update({"val/loss": float("nan")}, 35)
    assert not t.update({"val/loss": 2.0}, 40) and t.should_stop   # a tie is no improvement
    assert t.summary() == {"metric": "val/loss", "mode": "min", "value": 2.0, "step": 20}
    up = BestTracker("val/accuracy", "max", state=t.to_json() | {"value": 0.5})
    assert up.update({"val/accuracy": 0.6}, 50) and up.state.step == 50


SCRIPTED_ACCURACY = [0.5, 0.8, 0.7, 0.6, 0.9, 0.9]


def scripted_run(runs_dir, monkeypatch, name, **trainer):
    """An mlp whose validation accuracy follows SCRIPTED_ACCURACY, one value a log step."""
    real = ClassifierPipeline.validate

    def scripted(self, data):
        out = real(self, data)
        self._calls = getattr(self, "_calls", 0) + 1
        # (the final evaluation asks once more)
        return {**out, "accuracy": SCRIPTED_ACCURACY[min(self._calls, 6) - 1]}
    monkeypatch.setattr(ClassifierPipeline, "validate", scripted)
    run = start_run("mlp", "digits", config_overrides={"width": 16, "ema_decay": 0.0},
                    trainer_overrides={"steps": 12, "batch_size": 16, "log_every": 2,
                                       "checkpoint_every": 0, "seed": 1, **trainer},
                    runs_dir=runs_dir, name=name)
    return run, train_run(run)


def test_the_best_validated_weights_are_what_sampling_export_and_eval_use(runs_dir, monkeypatch):
    run, status = scripted_run(runs_dir, monkeypatch, "best")
    assert status == "done"
    info = run.info()
    assert info["best"] == {"metric": "val/accuracy", "mode": "max", "value": 0.9, "step": 10}
    assert ckpt.load_weights(run.best_weights_path)[1]["studio_step"] == "10"
    assert ckpt.load_weights(run.weights_path)[1]["studio_step"] == "12"   # latest, kept
    assert weights_file(run.path) == run.best_weights_path
    assert load_for_sampling(run.path).step == 10
    assert info["eval"]["weights_step"] == 10
    dest = export_run(run)
    assert json.loads((dest / "config.json").read_text())["step"] == 10
    assert ckpt.load_weights(dest / "model.safetensors")[1]["studio_step"] == "10"
    assert "at step 10" in (run.path / "README.md").read_text()


def test_early_stopping_ends_the_run_at_the_patience(runs_dir, monkeypatch):
    run, status = scripted_run(runs_dir, monkeypatch, "early", early_stop_patience=2)
    info = run.info()
    # best 0.8 at step 4; 0.7 at 6 and 0.6 at 8 use up a patience of 2
    assert status == "done" and info["status"] == "done" and info["step"] == 8
    assert info["best"]["step"] == 4 and "stopped early at step 8" in info["message"]
    assert ckpt.load_weights(run.best_weights_path)[1]["studio_step"] == "4"
    assert run.checkpoint_steps() == [8]          # the latest weights stay resumable


def test_keep_best_off_keeps_only_the_latest(runs_dir, monkeypatch):
    run, _ = scripted_run(runs_dir, monkeypatch, "latest", keep_best=False)
    assert not run.best_weights_path.exists() and "best" not in run.info()
    assert weights_file(run.path) == run.weights_path


@pytest.mark.parametrize("name", ["mlp", "ae", "vae", "vqvae", "ddpm", "ddpm-text", "lstm",
                                  "transformer"])
def test_each_validating_family_keeps_its_best_weights(runs_dir, name):
    from test_gpu import DATA, TRAINABLE, config_for
    entry = next(e for e in TRAINABLE if e.name == name)
    run = start_run(name, DATA.get(name, DATA.get(entry.family, "digits")),
                    config_overrides=config_for(entry),
                    trainer_overrides={"steps": 4, "batch_size": 8, "log_every": 2,
                                       "sample_every": 0, "checkpoint_every": 0,
                                       "final_eval": False}, runs_dir=runs_dir)
    assert train_run(run) == "done"
    best = run.info()["best"]
    assert best["value"] is not None and best["step"] in (2, 4)
    assert ckpt.load_weights(run.best_weights_path)[1]["studio_step"] == str(best["step"])


def test_the_gpu_bench_runs_every_path_quickly(tmp_path):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import gpu
    assert gpu.main(["--quick", "--families", "transformer", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_cpu_quick.json").read_text())
    assert {(r["preset"], r["precision"]) for r in result["speed"]} == {
        ("default", "no"), ("default", "bf16"), ("gpu", "no"), ("gpu", "bf16")}
    assert all(r["steps_per_sec"] > 0 and r["auto"] == "no" for r in result["speed"])
    (quality,) = result["quality"]
    assert quality["metric"] == "val/loss" and quality["best"] > 0
    assert "QUICK SMOKE RUN" in (tmp_path / "gpu_cpu_quick.md").read_text()


def eager_compile(monkeypatch):
    """Dynamo's "eager" backend in place of inductor: the same tracing and guards, no code
    generation, so graph counts are exact and take seconds on the CPU."""
    class EagerAccelerator(Accelerator):
        def __init__(self, *args, **kwargs):
            if kwargs.get("dynamo_backend") == "inductor":
                kwargs["dynamo_backend"] = "eager"
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(trainer_module, "Accelerator", EagerAccelerator)


needs_cpp = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
    reason="`compile` is refused without a C++ compiler (hardware.check_compile)")


@needs_cpp
def test_every_compiled_run_in_a_process_is_compiled(runs_dir, monkeypatch):
    """One process trains many runs (the UI's worker, tests). Dynamo's caches are per process
    and bounded: on an H200 the third compiled DCGAN of a test process found its recompile
    limit reached and ran eager without a word. Each compiled run starts from empty caches,
    so each compiles the same graphs (G, and D with and without grad-requiring input)."""
    import torch._dynamo
    import torch._dynamo.utils as dynamo_utils

    eager_compile(monkeypatch)
    graphs = []
    with torch._dynamo.config.patch(recompile_limit=4):   # one run needs fewer
        for i in range(3):
            dynamo_utils.counters.clear()
            run = start_run("dcgan", "digits", runs_dir=runs_dir, name=f"c{i}",
                            config_overrides={"width": 8, "z_dim": 8},
                            trainer_overrides={"steps": 4, "batch_size": 8, "log_every": 2,
                                               "sample_every": 0, "checkpoint_every": 4,
                                               "compile": True})
            assert train_run(run) == "done"
            graphs.append(dynamo_utils.counters["stats"]["unique_graphs"])
    assert graphs[0] >= 2 and graphs == [graphs[0]] * 3, graphs
    torch._dynamo.reset()


@needs_cpp
def test_compile_traces_the_training_forward_once_not_validation_or_sampling(runs_dir,
                                                                             monkeypatch):
    """`--compile` wraps the training modules only: validation, sample grids and the final
    evaluation run on the unwrapped ones, and training batches keep one shape, so nothing is
    compiled again mid-run. Dynamo's "eager" backend stands in for inductor (same tracing and
    guards, no code generation), so the count is exact and takes seconds on the CPU."""
    import torch._dynamo
    import torch._dynamo.utils as dynamo_utils

    eager_compile(monkeypatch)
    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    graphs = []

    def count(kind, event):
        if kind in ("log", "sample"):
            graphs.append(dynamo_utils.counters["stats"]["unique_graphs"])
    run = start_run("transformer", "shakespeare", runs_dir=runs_dir,
                    config_overrides={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 16,
                                      "val_tokens": 256},
                    trainer_overrides={"steps": 8, "batch_size": 8, "log_every": 2,
                                       "sample_every": 4, "checkpoint_every": 4,
                                       "final_eval": True, "compile": True,
                                       "sample_count": 1})
    assert train_run(run, callbacks=(count,)) == "done"
    assert graphs and set(graphs) == {1}           # one graph, traced at the first step
    assert dynamo_utils.counters["stats"]["unique_graphs"] == 1   # evaluation added none
    names = ckpt.load_weights(run.weights_path)[0]
    assert not any("_orig_mod" in k for k in names)   # plain parameter names
    torch._dynamo.reset()
