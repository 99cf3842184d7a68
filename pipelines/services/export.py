"""`studio export`: a self-contained folder next to the run.

For every family: export/model.safetensors (sampling weights with metadata: the best validated
step's where the run keeps them, else the latest), export/config.json
and export/README.md (the model card). Families with an ecosystem format (diffusers,
transformers) write it through `Pipeline.export_ecosystem` (e.g. export/diffusers/), and their
section of the model card says how to load it with the library alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import StudioError
from .model_card import write_model_card
from ..core.atomic_files import atomic_write_json
from ..core.runs import RunFolder


def export_run(run: RunFolder) -> Path:
    if not run.weights_path.is_file():
        raise StudioError(f"run {run.id} has no weights yet; train it to a checkpoint first")
    info = run.info()
    dest = run.path / "export"
    dest.mkdir(exist_ok=True)
    tmp = dest / ".model.safetensors.tmp"
    source = run.sampling_weights_path   # the best validated weights where the run keeps them
    shutil.copyfile(source, tmp)
    tmp.replace(dest / "model.safetensors")
    best = info.get("best") or {}
    step = best["step"] if source == run.best_weights_path and "step" in best else info.get("step")
    atomic_write_json(dest / "config.json", {
        "pipeline": info["pipeline"], "data": info["data"], "step": step,
        "config": info["config"], "data_info": info.get("data_info", {}),
        "config_hash": info.get("config_hash")})
    from .loading import load_for_sampling
    pipe = load_for_sampling(run.path, device="cpu")
    ecosystem = pipe.export_ecosystem(dest)
    write_model_card(run, dest / "README.md", ecosystem)
    return dest
