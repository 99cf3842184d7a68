"""Starting a run: check the pipeline, data and options, then create its folder.

    start_run(...)        validate everything, then create checkpoints/<run-id>/ (status queued)
    make_configs(...)     the pipeline's config and the TrainerConfig, overrides applied
    load_data_for(...)    the data set, refused if it is the wrong kind for the pipeline
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from .config import TrainerConfig, apply_overrides, config_hash, to_dict
from ..data import ImageData, TextData, load_data
from .errors import StudioError
from .hardware import check_compile
from .presets import train_defaults_for
from ..registry import get_entry, load_pipeline_class
from .runs import RunFolder, runs_dir_from_env


# --- setting up --------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "accelerate", "diffusers", "transformers", "safetensors"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def make_configs(pipeline_cls: type, config_overrides: dict[str, Any],
                 trainer_overrides: dict[str, Any], data: str | None = None
                 ) -> tuple[Any, TrainerConfig]:
    """The config and trainer config a run on `data` gets: the pipeline's defaults (its
    trainer defaults for that data set, if it has its own), then the overrides."""
    config = apply_overrides(pipeline_cls.Config(), config_overrides)
    trainer = apply_overrides(TrainerConfig(), train_defaults_for(pipeline_cls, data))
    trainer = apply_overrides(trainer, trainer_overrides)
    return config, trainer


def load_data_for(pipeline_cls: type, config: Any, spec: str) -> ImageData | TextData:
    kind = pipeline_cls.data_kind
    if kind == "labelled-text":   # with the config's label, speakers, text, target (if any)
        from ..data.language import load_labelled_text
        data = load_labelled_text(
            spec, label=getattr(config, "label", "play"), speakers=getattr(config, "speakers", 8),
            text_column=getattr(config, "text", "text"),
            target_column=getattr(config, "target", ""))
    elif kind == "text-pairs":
        from ..data.language import load_text_pairs
        data = load_text_pairs(spec)
    elif kind == "image":
        data = load_data(spec, image_size=getattr(config, "image_size", 0) or None)
    else:
        data = load_data(spec)
    if data.kind != pipeline_cls.data_kind:
        raise StudioError(f"pipeline {pipeline_cls.name} needs {pipeline_cls.data_kind} data, "
                          f"but {spec!r} is {data.kind} data")
    return data


def start_run(pipeline: str, data: str, *, config_overrides: dict[str, Any] | None = None,
              trainer_overrides: dict[str, Any] | None = None, runs_dir: Any = None,
              name: str | None = None, preset: str | None = None) -> RunFolder:
    """Check the pipeline, data and options, then create the run folder. Nothing is written
    if any of them is wrong. `preset` only names the preset the overrides started from (it
    is recorded in run.json); its options are already in the overrides."""
    get_entry(pipeline)
    cls = load_pipeline_class(pipeline)
    config, trainer = make_configs(cls, config_overrides or {}, trainer_overrides or {}, data)
    check_compile(trainer.compile, trainer.cpu)
    dataset = load_data_for(cls, config, data)
    described = cls.describe_data(dataset, config)
    cls(config, described)  # builds the networks: a config that can't is refused here
    info = {
        "pipeline": pipeline, "data": data, "status": "queued", "step": 0,
        "total_steps": trainer.steps, "seed": trainer.seed,
        "config": to_dict(config), "trainer": to_dict(trainer),
        "data_info": described, "versions": _versions(),
        "config_hash": config_hash(config), "message": "",
    }
    if preset:
        info["preset"] = preset
    if getattr(dataset, "skipped_files", 0):   # said again by the trainer (its messages)
        info["skipped_files"] = dataset.skipped_files
        info["message"] = f"{dataset.skipped_files} unreadable files were skipped"
    return RunFolder.create(runs_dir_from_env(runs_dir), name or f"{pipeline}-{data}", info)
