"""What a training checkpoint holds, how the trainer writes and reads it, and which weights
sampling uses (the EMA's, or the best validated) while the run goes on.

A checkpoint is one folder, `state/step_N/`, written atomically (pipelines/core/checkpoints.py):

    model.safetensors       the sampling weights (EMA where kept), with the metadata that says
                            what they are (`weights_metadata`); also copied to the run's top level
    training.safetensors    the raw weights the optimisers step
    optimizers.*            each optimiser's state (tensors + JSON)
    ema.*                   each EMA's shadow weights and counters
    rng.safetensors         every generator of every process (resume is exact)
    trainer.json            step, epoch, data position, elapsed time, fp16 scaler, best weights

`restore` puts each tensor back on its parameter's device, dtype and memory layout, as a fresh
run creates them (a GPU run's channels-last conv weights: fused Adam needs the same layout).
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import torch

from . import checkpoints as ckpt
from .best import BestState
from .atomic_files import atomic_write_bytes

if TYPE_CHECKING:
    from .trainer import Trainer


def sampling_tensors(tr: Trainer) -> dict[str, torch.Tensor]:
    """The weights sampling uses: each network's, its EMA shadow in place where kept, with
    the statistics the pipeline keeps for them (`sampling_weights`)."""
    with sampling_weights(tr):   # copied to the CPU: the context puts the training ones back
        return {k: v.detach().to("cpu", copy=True)
                for k, v in ckpt.module_tensors(tr.pipeline.modules).items()}


def weights_metadata(tr: Trainer) -> dict[str, str]:
    """What a weights file says about itself (pipelines/core/run_schema.py checks it on load)."""
    return {"studio_format": ckpt.FORMAT, "studio_pipeline": tr.info["pipeline"],
            "studio_step": str(tr.step), "studio_config_hash": tr.info["config_hash"],
            "studio_config": json.dumps(tr.info["config"], sort_keys=True),
            "studio_data_info": json.dumps(tr.info["data_info"], sort_keys=True),
            "studio_ema": str(bool(tr.ema)).lower()}


def save_best_weights(tr: Trainer) -> None:
    """This step's sampling weights as the run's best.safetensors (what sampling, export and
    the final evaluation use; pipelines/core/best.py decides when)."""
    sampling = ckpt.weights_bytes(sampling_tensors(tr),
                                  {**weights_metadata(tr), "studio_best": "true"})
    atomic_write_bytes(tr.run.best_weights_path, sampling)


def save(tr: Trainer) -> None:
    """Checkpoint the run at its current step (main process writes; all gather RNGs)."""
    tr.saved_step = tr.step
    rngs = ckpt.rng_state()
    if tr.accelerator.num_processes > 1:  # every process's generators, one file
        from accelerate.utils import gather_object
        rngs = gather_object([rngs])
    if not tr.accelerator.is_main_process:
        return
    modules = {n: tr._unwrapped(n) for n in tr.pipeline.modules}
    sampling = ckpt.weights_bytes(sampling_tensors(tr), weights_metadata(tr))
    files = {"model.safetensors": sampling,
             "training.safetensors": ckpt.weights_bytes(ckpt.module_tensors(modules))}
    opt_tensors, opt_meta = {}, {}
    for name, opt in tr.optimizers.items():
        t, m = ckpt.optimizer_state(name, opt)
        opt_tensors.update(t)
        opt_meta[name] = m
    files["optimizers.safetensors"] = ckpt.weights_bytes(opt_tensors)
    files["optimizers.json"] = json.dumps(opt_meta).encode()
    if tr.ema:
        ema_tensors, ema_meta = {}, {}
        for name, ema in tr.ema.items():
            sd = ema.state_dict()
            for i, p in enumerate(sd.pop("shadow_params")):
                ema_tensors[f"{name}/{i}"] = p
            ema_meta[name] = sd
        files["ema.safetensors"] = ckpt.weights_bytes(ema_tensors)
        files["ema.json"] = json.dumps(ema_meta).encode()
    rng_tensors, rng_meta = ckpt.merge_rng_states(rngs)
    files["rng.safetensors"] = ckpt.weights_bytes(rng_tensors)
    files["trainer.json"] = json.dumps({
        "step": tr.step, "epoch": tr.epoch, "position": tr.position,
        "elapsed": tr.elapsed, "rng": rng_meta, "skipped_steps": tr.skipped_steps,
        "scaler": tr.accelerator.scaler.state_dict() if tr.accelerator.scaler else None,
        "best": tr.best.to_json() if tr.best else None}).encode()
    ckpt.write_checkpoint_dir(tr.run, tr.step, files)
    # The top-level weights file is the newest sampling weights, replaced atomically.
    atomic_write_bytes(tr.run.weights_path, sampling)
    ckpt.prune_checkpoints(tr.run, tr.tc.keep_checkpoints)
    tr.run.update_info(checkpoint_step=tr.step)
    tr.emit("checkpoint")


def restore(tr: Trainer) -> None:
    """Continue from the last complete checkpoint, if any: weights, optimisers, EMA, RNGs,
    data position, scaler and best-weights record."""
    steps = tr.run.checkpoint_steps()
    if not steps:
        return  # never checkpointed: start from the beginning
    folder = tr.run.checkpoint_dir(steps[-1])
    modules = {n: tr._unwrapped(n) for n in tr.pipeline.modules}
    ckpt.load_module_tensors(modules, ckpt.read_checkpoint_file(folder, "training.safetensors"),
                             folder)
    opt_tensors = ckpt.read_checkpoint_file(folder, "optimizers.safetensors")
    opt_meta = ckpt.read_checkpoint_json(folder, "optimizers.json")
    for name, opt in tr.optimizers.items():
        ckpt.load_optimizer_state(name, opt, opt_tensors, opt_meta[name])
    if tr.ema:
        ema_tensors = ckpt.read_checkpoint_file(folder, "ema.safetensors")
        ema_meta = ckpt.read_checkpoint_json(folder, "ema.json")
        for name, ema in tr.ema.items():
            shadows = ckpt.place_like([ema_tensors[f"{name}/{i}"]
                                       for i in range(len(ema.shadow_params))],
                                      list(tr._unwrapped(name).parameters()))
            ema.load_state_dict({**ema_meta[name], "shadow_params": shadows})
    state = ckpt.read_checkpoint_json(folder, "trainer.json")
    tr.step, tr.epoch, tr.position = state["step"], state["epoch"], state["position"]
    tr.elapsed = state["elapsed"]
    tr.skipped_steps = state.get("skipped_steps", 0)
    if tr.accelerator.scaler is not None and state.get("scaler"):
        tr.accelerator.scaler.load_state_dict(state["scaler"])
    if tr.best is not None and state.get("best"):
        tr.best.state = BestState(**state["best"])
    ckpt.set_rng_state(ckpt.read_checkpoint_file(folder, "rng.safetensors"), state["rng"],
                       rank=tr.accelerator.process_index, seed=tr.tc.seed + tr.step)


@contextlib.contextmanager
def sampling_weights(tr: Trainer):
    """Unwrapped modules in eval mode with the EMA weights swapped in, inside the pipeline's
    `sampling_statistics`; weights and train/eval modes restored after. Unwrapped, so that
    sampling on the main process alone runs no collective."""
    wrapped = tr.pipeline.modules
    tr.pipeline.modules = {n: tr._unwrapped(n) for n in wrapped}
    for name, ema in tr.ema.items():
        ema.store(tr.pipeline.modules[name].parameters())
        ema.copy_to(tr.pipeline.modules[name].parameters())
    modes = {n: m.training for n, m in tr.pipeline.modules.items()}
    for m in tr.pipeline.modules.values():
        m.eval()
    try:
        with tr.pipeline.sampling_statistics():  # e.g. a GAN's batch norm, for the EMA weights
            yield
    finally:
        for n, m in tr.pipeline.modules.items():
            m.train(modes[n])
        for name, ema in tr.ema.items():
            ema.restore(tr.pipeline.modules[name].parameters())
        tr.pipeline.modules = wrapped

@contextlib.contextmanager
def best_weights(tr: Trainer):
    """Inside `sampling_weights`: the best validated weights in place of the current
    ones (what sampling and export of the finished run use), restored after."""
    path = tr.run.best_weights_path
    if tr.best is None or tr.best.state.step < 0 or not path.is_file():
        yield
        return
    current = {k: v.clone() for k, v in ckpt.module_tensors(tr.pipeline.modules).items()}
    ckpt.load_module_tensors(tr.pipeline.modules, ckpt.load_weights(path)[0], path)
    try:
        yield
    finally:
        ckpt.load_module_tensors(tr.pipeline.modules, current, "the current weights")
