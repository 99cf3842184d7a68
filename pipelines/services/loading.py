"""Load a trained model for sampling: from a run folder, a checkpoint step, or a lone
.safetensors file whose metadata says what it is."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.base import Pipeline
from ..core.checkpoints import FORMAT, load_module_tensors, load_weights
from ..core.config import from_dict
from ..core.errors import StudioError
from ..registry import load_pipeline_class
from ..core.run_schema import check_weights_metadata
from ..core.runs import RunFolder


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
    checked = check_weights_metadata(meta, path)   # every field, in one message
    cls = load_pipeline_class(checked.pipeline)
    try:
        config = from_dict(cls.Config, checked.config, where="studio_config.")
    except StudioError as e:
        raise StudioError(f"{path} has damaged studio metadata: {e}") from None
    pipe = _build(cls, config, checked.data_info, path)
    load_module_tensors(pipe.modules, tensors, path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    for name, module in pipe.modules.items():
        pipe.modules[name] = module.to(device).eval()
    pipe.step = checked.step
    return pipe


def _build(cls: type, config, info: dict, path: Path) -> Pipeline:
    """The pipeline `cls` built from a file's config and data facts. Facts of the right types
    that still build no model (a tokenizer that is not one, a size its networks cannot take)
    are the file's fault, and said in one line; the file's tensors are checked after."""
    try:
        return cls(config, info)
    except StudioError as e:
        raise StudioError(f"{path} has damaged studio metadata: {e}") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a foreign or edited file, said in one line
        detail = (str(e).strip().splitlines() or [""])[0][:200]
        raise StudioError(f"{path} has damaged studio metadata: its config and data info do "
                          f"not build a {cls.name} model ({type(e).__name__}: {detail})") from None
