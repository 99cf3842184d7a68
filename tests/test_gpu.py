"""GPU promises (issue: GPU as a first-class target). Skipped without CUDA; run them with

    python -m pytest -m gpu -q

- every family resumes exactly (the same logged numbers as an uninterrupted run) in fp32 and
  bf16, with channels-last, TF32 and fused Adam on as a GPU run has them;
- fp16 (with Accelerate's gradient scaler) trains a DCGAN and a transformer to finite losses,
  counting the steps the scaler skips;
- a compiled run saves plain parameter names and resumes;
- `--mixed-precision auto` picks what hardware.resolve_precision says for the model's size.

Deterministic kernels are asked for (cuBLAS workspace config in conftest.py,
`torch.use_deterministic_algorithms`), so an exact comparison is fair: two uninterrupted runs
agree bit for bit too.
"""

import math

import pytest
import torch

from pipelines.core import hardware as hw
from pipelines.core import checkpoints as ckpt
from pipelines.registry import list_pipelines
from pipelines.core.trainer import Trainer
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

from helpers import records, stop_at

pytestmark = pytest.mark.gpu

TRAINER = {"steps": 6, "batch_size": 16, "log_every": 1, "sample_every": 3, "sample_count": 4,
           "checkpoint_every": 3, "seed": 11, "final_eval": False}
# Tiny shapes per family (the same as each family's CPU tests use): seconds each on a GPU.
FAMILY_CONFIG = {
    "gan": {"width": 8, "z_dim": 8, "hidden": 32},
    "autoencoder": {"hidden": 32, "depth": 1, "latent_dim": 4, "width": 8},
    "diffusion": {"width": 8, "num_train_timesteps": 50, "image_size": 8, "lr_warmup_steps": 2},
    "classifier": {"ema_decay": 0.0},
}
CONFIG = {
    "vqvae": {**FAMILY_CONFIG["autoencoder"], "codebook_size": 8, "dead_code_steps": 2},
    "ddpm-text": {"text_width": 16, "text_layers": 1, "autoencoder_width": 4,
                  "autoencoder_steps": 2},
    "transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 16},
    "rnn": {"embed_dim": 8, "hidden_size": 16, "layers": 2, "context": 16},
    "lstm": {"embed_dim": 8, "hidden_size": 16, "layers": 2, "context": 16},
    "gru": {"embed_dim": 8, "hidden_size": 16, "layers": 1, "context": 16},
    "mlp": {"width": 16}, "alexnet": {"width": 4}, "vgg": {"width": 4}, "resnet": {"width": 4},
    "densenet": {"width": 8}, "rnn-rows": {"hidden": 8}, "lstm-rows": {"hidden": 8},
    "gru-rows": {"hidden": 8}, "bilstm-rows": {"hidden": 8},
}
DATA = {"text": "shakespeare", "ddpm-text": "shapes", "translation": "shapes-edges",
        "cyclegan": "shapes-seasons", "superres": "photos", "bert": "shakespeare-lines",
        "seq2seq-gru": "dates", "seq2seq-transformer": "dates", "word2vec": "shakespeare"}
TRAINABLE = [e for e in list_pipelines() if e.family != "classic"]


def config_for(entry):
    return {**FAMILY_CONFIG.get(entry.family, {}), **CONFIG.get(entry.name, {})}


@pytest.fixture(autouse=True)
def deterministic():
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(False)


def run_of(entry, runs_dir, name, callbacks=(), **trainer):
    config = config_for(entry)
    run = start_run(entry.name, DATA.get(entry.name, DATA.get(entry.family, "digits")),
                    config_overrides=config, trainer_overrides={**TRAINER, **trainer},
                    runs_dir=runs_dir, name=name)
    return run, train_run(run, callbacks=callbacks)


@pytest.mark.parametrize("precision", ["no", "bf16"])
@pytest.mark.parametrize("entry", TRAINABLE, ids=[e.name for e in TRAINABLE])
def test_every_family_resumes_exactly_on_a_gpu(runs_dir, entry, precision):
    whole, status = run_of(entry, runs_dir, "whole", mixed_precision=precision)
    assert status == "done" and whole.info()["device"].startswith("cuda")
    assert whole.info()["precision"] == precision
    part, status = run_of(entry, runs_dir, "part", callbacks=(stop_at(runs_dir, 2),),
                          mixed_precision=precision)
    assert status == "stopped"
    assert train_run(part, resume=True) == "done"
    assert records(part) == records(whole)


@pytest.mark.parametrize("name", ["dcgan", "transformer"])
def test_fp16_trains_with_a_grad_scaler_to_finite_losses(runs_dir, name):
    entry = next(e for e in TRAINABLE if e.name == name)
    run, status = run_of(entry, runs_dir, "fp16", mixed_precision="fp16", steps=30)
    assert status == "done"
    logged = [r for r in run.metrics() if "skipped_steps" in r]
    assert logged and logged[-1]["skipped_steps"] < 30       # it trained, whatever it skipped
    for r in logged:
        assert all(math.isfinite(v) for k, v in r.items() if "loss" in k)


def test_a_compiled_run_saves_plain_names_and_resumes(runs_dir):
    entry = next(e for e in TRAINABLE if e.name == "dcgan")
    whole, _ = run_of(entry, runs_dir, "whole", compile=True, mixed_precision="bf16")
    part, status = run_of(entry, runs_dir, "part", callbacks=(stop_at(runs_dir, 2),),
                          compile=True, mixed_precision="bf16")
    assert status == "stopped"
    for folder in (part.checkpoint_dir(2),):
        names = ckpt.load_weights(folder / "training.safetensors")[0]
        assert names and not any("_orig_mod" in k for k in names)
    assert train_run(part, resume=True) == "done"
    a, b = records(whole), records(part)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):   # inductor may fuse differently after a restart: near, not equal
        for k in ra:
            if isinstance(ra[k], float):
                assert rb[k] == pytest.approx(ra[k], rel=1e-3, abs=1e-5), (ra["step"], k)


def test_auto_precision_follows_the_model_size_on_a_gpu(runs_dir):
    entry = next(e for e in TRAINABLE if e.name == "transformer")
    small, _ = run_of(entry, runs_dir, "small", steps=1)
    trainer = Trainer(small)
    params = hw.trainable_parameters(trainer.pipeline.modules)
    expected = hw.resolve_precision("auto", True, torch.cuda.is_bf16_supported(), params,
                                    trainer.tc.batch_size)[0]
    assert small.info()["precision"] == expected == "no"
