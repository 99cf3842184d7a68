"""Load a trained model for sampling: from a run folder, a checkpoint step, or a lone
.safetensors file whose metadata says what it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .base import Pipeline
from .checkpoints import FORMAT, load_module_tensors, load_weights
from .config import from_dict
from .errors import StudioError
from .registry import load_pipeline_class
from .runs import RunFolder


def weights_file(ref: str | os.PathLike, runs_dir=None, step: int | None = None) -> Path:
    """The weights file meant by `ref`: a .safetensors path, or a run (its best validated
    weights where it keeps them, else its latest; or those of checkpoint `step`)."""
    path = Path(ref)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise StudioError(f"{path} does not exist")
        return path
    run = RunFolder.resolve(ref, runs_dir)
    if step is not None:
        folder = run.checkpoint_dir(step)
        if not folder.is_dir():
            raise StudioError(f"run {run.id} has no checkpoint at step {step}; it has "
                              f"{run.checkpoint_steps() or 'none'}")
        return folder / "model.safetensors"
    if not run.weights_path.is_file():
        raise StudioError(f"run {run.id} has no weights yet (it has not reached its first "
                          f"checkpoint)")
    return run.sampling_weights_path   # the best validated weights where the run keeps them


def load_for_sampling(ref: str | os.PathLike, runs_dir=None, step: int | None = None,
                      device: str | None = None) -> Pipeline:
    path = weights_file(ref, runs_dir, step)
    tensors, meta = load_weights(path)
    if meta.get("studio_format") != FORMAT or "studio_pipeline" not in meta:
        raise StudioError(f"{path} was not written by this studio (its metadata names no "
                          f"pipeline); pass a run or a model.safetensors from one")
    try:
        config_values = json.loads(meta["studio_config"])
        info = json.loads(meta["studio_data_info"])
    except (KeyError, json.JSONDecodeError):
        raise StudioError(f"{path} has damaged studio metadata; use the run's folder instead") from None
    cls = load_pipeline_class(meta["studio_pipeline"])
    pipe = cls(from_dict(cls.Config, config_values, where="config."), info)
    load_module_tensors(pipe.modules, tensors, path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    for name, module in pipe.modules.items():
        pipe.modules[name] = module.to(device).eval()
    pipe.step = int(meta.get("studio_step", 0))
    return pipe
