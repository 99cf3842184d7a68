"""Weights and training state as safetensors + JSON; nothing is ever unpickled.

A checkpoint is a folder `state/step_000500/` that is written under a temporary name and
renamed into place only when every file in it is on disk, so a run killed mid-write keeps its
previous checkpoint intact:

    model.safetensors       weights for sampling at this step (EMA swapped in where there is one)
    training.safetensors    the raw module weights and buffers the optimizers act on
    optimizers.safetensors  optimizer tensors (Adam moments, step counts) ...
    optimizers.json         ... and their param groups and plain values
    ema.safetensors/.json   EMA shadow weights and counters, if the pipeline keeps an EMA
    rng.safetensors         torch CPU (and CUDA) generator states
    trainer.json            step, data position, python and numpy RNG states, elapsed time
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .atomic_files import atomic_write_bytes, fsync_dir
from .errors import StudioError
from .runs import RunFolder

FORMAT = "generative-media-studio/1"


# --- single safetensors files ------------------------------------------------------------
def _cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that share no storage
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def weights_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    return st_save(_cpu_tensors(tensors), metadata={"format": "pt", **(metadata or {})})


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Atomically write a safetensors file with string metadata."""
    atomic_write_bytes(path, weights_bytes(tensors, metadata))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a clear error for a missing or corrupt one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StudioError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise StudioError(f"{path} is a folder, not a .safetensors file") from None
    try:
        tensors = st_load(data)
        metadata = _header_metadata(data)
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StudioError(f"{path} is not a readable safetensors file ({e}); it may be "
                          f"truncated or corrupt") from None
    return tensors, metadata


def _header_metadata(data: bytes) -> dict[str, str]:
    # The safetensors header: 8 bytes little-endian length, then a JSON object.
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    return dict(header.get("__metadata__") or {})


def module_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """{"generator.net.0.weight": ...} for every parameter and buffer of every module."""
    return {f"{name}.{key}": value for name, module in modules.items()
            for key, value in module.state_dict().items()}


def load_module_tensors(modules: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor],
                        source: str | os.PathLike, only: tuple[str, ...] | None = None) -> None:
    """Copy `tensors` into `modules`; a file that does not fit the model is refused whole.
    A module may name buffers that files written before it had them lack
    (`optional_state`, key prefixes): those keep their freshly built values."""
    for name, module in modules.items():
        if only is not None and name not in only:
            continue
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        expected = module.state_dict()
        optional = tuple(getattr(module, "optional_state", ()))
        for key in set(expected) - set(state):
            if optional and key.startswith(optional):
                state[key] = expected[key]
        missing = sorted(set(expected) - set(state))
        wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
        if missing or wrong:
            detail = (f"missing {missing[:3]}" if missing else
                      f"shape mismatch for {wrong[:3]}")
            raise StudioError(f"{source} does not fit this model ({detail}); it was written for "
                              f"another pipeline or config")
        module.load_state_dict(state)


# --- optimizers ----------------------------------------------------------------------------
def optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer's state_dict into tensors (safetensors) and everything else (JSON)."""
    sd = optimizer.state_dict()
    tensors, plain = {}, {}
    for idx, values in sd["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{name}/state/{idx}/{key}"] = value
            else:
                plain[f"{idx}/{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "plain_state": plain}


def load_optimizer_state(name: str, optimizer: torch.optim.Optimizer,
                         tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"{name}/state/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split("/", 1)
            state.setdefault(int(idx), {})[field] = value
    for key, value in meta["plain_state"].items():
        idx, field = key.split("/", 1)
        state.setdefault(int(idx), {})[field] = value
    groups = meta["param_groups"]
    for group in groups:  # JSON turned tuples into lists; Adam's betas is a tuple
        for k, v in group.items():
            if k != "params" and isinstance(v, list):
                group[k] = tuple(v)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    match_parameter_layout(optimizer)


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments, ...) its parameter's device,
    dtype and memory layout.

    `load_state_dict` casts device and dtype but keeps the loaded tensor's strides, and a
    checkpoint stores contiguous (NCHW) tensors: for a channels-last conv weight on a GPU the
    moments then differ in layout from the parameter and fused Adam refuses the first step
    ("params, grads, exp_avgs, and exp_avg_sqs must have same dtype, device, and layout").
    A fresh run creates them with `zeros_like(param)`, which keeps the parameter's layout, so
    this makes a resumed run's state the same as an uninterrupted one's."""
    inner = getattr(optimizer, "optimizer", optimizer)   # Accelerate's wrapper, or a plain one
    for group in inner.param_groups:
        for param in group["params"]:
            state = inner.state.get(param, {})
            for key, value in state.items():
                if not torch.is_tensor(value) or value.shape != param.shape:
                    continue   # scalars such as `step`: load_state_dict places them already
                dtype = param.dtype if value.is_floating_point() else value.dtype
                if (value.device, value.dtype, value.stride()) != (param.device, dtype,
                                                                   param.stride()):
                    state[key] = torch.empty_like(param, dtype=dtype).copy_(value)


def place_like(values: list[torch.Tensor], params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Loaded copies (e.g. EMA shadow weights) on their parameters' devices and in their
    memory layouts, each keeping its own dtype."""
    return [torch.empty_like(p, dtype=v.dtype).copy_(v) if v.shape == p.shape
            else v.to(p.device) for v, p in zip(values, params)]


# --- random number generators --------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return tensors, {"numpy": [kind, keys.tolist(), pos, has_gauss, cached],
                     "python": [version, list(py_state), gauss]}


def merge_rng_states(states: Any) -> tuple[dict[str, torch.Tensor], dict]:
    """One process's `rng_state()`, or a list of every process's (rank order) under
    `accelerate launch`: rank r > 0 goes under "rank<r>/" keys and meta["ranks"][r - 1]."""
    if isinstance(states, tuple):
        return states
    tensors, meta = dict(states[0][0]), dict(states[0][1])
    for rank, (t, _) in enumerate(states[1:], start=1):
        tensors.update({f"rank{rank}/{k}": v for k, v in t.items()})
    meta["ranks"] = [m for _, m in states[1:]]
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict, rank: int = 0,
                  seed: int = 0) -> None:
    """Restore process `rank`'s generators. A rank the checkpoint has none for (it was written
    by fewer processes) is seeded afresh from `seed` and its rank instead."""
    if rank > 0:
        if len(meta.get("ranks", [])) < rank:
            s = seed + 1_000_003 * rank
            torch.manual_seed(s)
            np.random.seed(s % 2**32)
            random.seed(s)
            return
        prefix = f"rank{rank}/"
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        meta = meta["ranks"][rank - 1]
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, py_state, gauss = meta["python"]
    random.setstate((version, tuple(py_state), gauss))


# --- checkpoint folders --------------------------------------------------------------------
def write_checkpoint_dir(run: RunFolder, step: int, files: dict[str, bytes]) -> Path:
    """Write `files` into state/step_<step>/ all-or-nothing: a temp folder, fsynced, renamed."""
    run.state_dir.mkdir(exist_ok=True)
    final = run.checkpoint_dir(step)
    tmp = run.state_dir / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, data in files.items():
        with open(tmp / name, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    fsync_dir(tmp)
    if final.exists():  # the same step saved again (a stop right after a checkpoint)
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(run.state_dir)
    return final


def prune_checkpoints(run: RunFolder, keep: int, protect: tuple[int, ...] = ()) -> None:
    """Delete all but the newest `keep` checkpoints (and any in `protect`), and leftovers of
    interrupted writes."""
    steps = run.checkpoint_steps()
    protect = (*protect, *run.kept_steps())  # checkpoints the user chose to keep
    for step in steps[:-keep] if keep > 0 else []:
        if step not in protect:
            shutil.rmtree(run.checkpoint_dir(step), ignore_errors=True)
    if run.state_dir.is_dir():
        for p in run.state_dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def read_checkpoint_file(folder: Path, name: str) -> dict[str, torch.Tensor]:
    return load_weights(folder / name)[0]


def read_checkpoint_json(folder: Path, name: str) -> Any:
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise StudioError(f"checkpoint {folder} is incomplete or damaged ({e})") from None
