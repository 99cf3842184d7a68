"""The trainer's promises: bit-exact checkpoints, exact resume, crash safety, the NaN guard."""

import hashlib
import os

import pytest
import torch

from pipelines.core import checkpoints as ckpt
from pipelines.gan import DCGAN
from pipelines.services.loading import load_for_sampling
from pipelines.core.trainer import TrainingFailed
from pipelines.core.training_run import train_run
from pipelines.core.runs import RunFolder

from helpers import losses, tiny_run


def folder_digest(path):
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


def test_a_run_fills_its_folder(runs_dir):
    run, status = tiny_run(runs_dir)
    info = run.info()
    assert status == "done" and info["status"] == "done" and info["step"] == 8
    assert [r["step"] for r in run.metrics() if "loss_d" in r] == list(range(1, 9))
    assert [p.name for p in run.sample_files()] == ["step_000004.png", "step_000008.png"]
    assert run.checkpoint_steps() == [4, 8]
    assert run.weights_path.is_file() and (run.path / "README.md").is_file()
    meta = ckpt.load_weights(run.weights_path)[1]
    assert meta["studio_pipeline"] == "dcgan" and meta["studio_step"] == "8"
    assert meta["studio_config_hash"] == info["config_hash"]


def test_the_first_grid_comes_at_five_percent_of_the_run(runs_dir):
    # sample_every 30 of 40 steps: a grid at step 2 (5%) too, so a short run shows a picture
    # early; and none early where sample_every is 0 (only at the end).
    run, status = tiny_run(runs_dir, name="early", steps=40, sample_every=30,
                           checkpoint_every=40, log_every=10)
    assert status == "done"
    assert [p.name for p in run.sample_files()] == [
        "step_000002.png", "step_000030.png", "step_000040.png"]
    run, _ = tiny_run(runs_dir, name="late", steps=40, sample_every=0, checkpoint_every=40,
                      log_every=10)
    assert [p.name for p in run.sample_files()] == ["step_000040.png"]


def test_weights_and_optimizer_state_round_trip_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2).bfloat16()}
    ckpt.save_weights(tmp_path / "w.safetensors", tensors, {"studio_step": "7"})
    loaded, meta = ckpt.load_weights(tmp_path / "w.safetensors")
    assert meta["studio_step"] == "7"
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)

    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    t, meta = ckpt.optimizer_state("g", opt)
    fresh = torch.optim.Adam(model.parameters(), lr=1.0)
    ckpt.load_optimizer_state("g", fresh, ckpt.load_weights(
        _save(tmp_path / "o.safetensors", t))[0], meta)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for key in a["state"][idx]:
            assert torch.equal(a["state"][idx][key], b["state"][idx][key])


def _save(path, tensors):
    ckpt.save_weights(path, tensors)
    return path


def test_saved_model_reloads_bit_for_bit(runs_dir):
    run, _ = tiny_run(runs_dir)
    pipe = load_for_sampling(run.path)
    saved = ckpt.load_weights(run.weights_path)[0]
    assert saved.keys() == ckpt.module_tensors(pipe.modules).keys()
    for k, v in ckpt.module_tensors(pipe.modules).items():
        assert torch.equal(v, saved[k]), k
    # Sampling is a pure function of the weights and the seed.
    again = load_for_sampling(run.path)
    assert (pipe.sample(6, seed=5).images == again.sample(6, seed=5).images).all()


def test_stop_then_resume_repeats_the_uninterrupted_run_exactly(runs_dir):
    whole, _ = tiny_run(runs_dir, name="whole")

    def stop_at_3(kind, event):
        if kind == "log" and event["step"] == 3:
            RunFolder(runs_dir / event["run"]).request_stop()

    part, status = tiny_run(runs_dir, name="part", callbacks=(stop_at_3,))
    assert status == "stopped" and part.info()["status"] == "stopped"
    assert part.checkpoint_steps()[-1] == 3 and not part.stop_path.exists()
    assert train_run(part, resume=True) == "done"

    assert losses(part) == losses(whole)          # every step, before and after the stop
    a, b = ckpt.load_weights(whole.weights_path)[0], ckpt.load_weights(part.weights_path)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)  # EMA weights included


class SimulatedKill(BaseException):
    """Stands for the process dying: nothing in the trainer may catch and tidy up after it."""


def test_a_run_killed_mid_checkpoint_resumes_from_the_previous_one(runs_dir, monkeypatch):
    whole, _ = tiny_run(runs_dir, name="whole", steps=6, checkpoint_every=3)
    real_rename = os.rename

    def die_renaming_step_6(src, dst, *a, **k):
        if str(dst).endswith("step_000006"):
            raise SimulatedKill()  # the files are written, the folder never renamed into place
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(ckpt.os, "rename", die_renaming_step_6)
    with pytest.raises(SimulatedKill):
        tiny_run(runs_dir, name="killed", steps=6, checkpoint_every=3)
    monkeypatch.setattr(ckpt.os, "rename", real_rename)

    killed = RunFolder(next(p for p in runs_dir.iterdir() if p.name.endswith("killed")))
    assert killed.checkpoint_steps() == [3]
    assert ckpt.load_weights(killed.weights_path)[1]["studio_step"] == "3"
    assert train_run(killed, resume=True) == "done"
    assert losses(killed) == losses(whole)
    assert not list(killed.state_dir.glob(".tmp-*"))


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(runs_dir, monkeypatch):
    real_step = DCGAN.train_step

    def blows_up_after_5(self, batch, ctx):
        logs = real_step(self, batch, ctx)
        if ctx.step >= 5:
            logs["loss_g"] = torch.tensor(float("nan"))
        return logs

    monkeypatch.setattr(DCGAN, "train_step", blows_up_after_5)
    with pytest.raises(TrainingFailed, match="loss_g became non-finite near step 6.*step 4"):
        tiny_run(runs_dir, name="nan")
    run = RunFolder(next(runs_dir.iterdir()))
    assert run.info()["status"] == "failed" and "non-finite" in run.info()["message"]
    assert run.checkpoint_steps() == [4]
    before = folder_digest(run.state_dir)
    assert ckpt.load_weights(run.weights_path)[1]["studio_step"] == "4"
    assert folder_digest(run.state_dir) == before


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_with_finite_losses(runs_dir, precision):
    run, status = tiny_run(runs_dir, name=precision, steps=2, sample_every=0,
                           checkpoint_every=0, mixed_precision=precision)
    assert status == "done" and run.info()["precision"] == precision
    assert all(torch.isfinite(torch.tensor(v)) for v in losses(run)[2])


@pytest.mark.gpu
def test_gpu_bf16_run_resumes_exactly(runs_dir):
    whole, _ = tiny_run(runs_dir, name="gpu-whole", mixed_precision="bf16")
    assert whole.info()["device"].startswith("cuda")

    def stop_at_3(kind, event):
        if kind == "log" and event["step"] == 3:
            RunFolder(runs_dir / event["run"]).request_stop()

    part, _ = tiny_run(runs_dir, name="gpu-part", mixed_precision="bf16", callbacks=(stop_at_3,))
    assert train_run(part, resume=True) == "done"
    assert losses(part) == losses(whole)


def test_a_step_computes_gradients_only_for_the_stepped_optimizer():
    """A generator's loss flows through the discriminator; StepContext's backward reaches
    only the generator's optimiser's parameters (autograd skips the discriminator's weight
    gradients), and the generator's gradients are exactly a full backward's."""
    from accelerate import Accelerator
    from pipelines.core.step import StepContext
    torch.manual_seed(0)
    G, D = torch.nn.Linear(4, 6), torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(),
                                                      torch.nn.Linear(5, 1))
    z = torch.randn(8, 4)
    D(G(z)).mean().backward()                              # every leaf, as before
    expected = [p.grad.clone() for p in G.parameters()]
    for p in [*G.parameters(), *D.parameters()]:
        p.grad = None
    ctx = StepContext(Accelerator(cpu=True), {"generator": G, "discriminator": D},
                      {"g": torch.optim.SGD(G.parameters(), lr=0.0)}, grad_clip=0.0)
    ctx.backward_step(D(G(z)).mean(), "g", "generator")
    assert all(p.grad is None for p in D.parameters())
    assert all(torch.equal(p.grad, e) for p, e in zip(G.parameters(), expected))
