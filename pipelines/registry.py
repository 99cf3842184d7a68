"""Pipeline name -> class. What the CLI and the UI list.

Entries name their class by import path so that listing pipelines (the UI does it at start-up)
imports no torch and no family code. Adding a family is one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import StudioError


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    family: str      # gan, vae, diffusion, text, ... (groups the UI's list)
    kind: str        # "image" or "text": what it samples
    summary: str     # one line for lists
    target: str      # "module:Class"


PIPELINES: tuple[PipelineEntry, ...] = (
    PipelineEntry("dcgan", "gan", "image",
                  "DCGAN: transposed-conv generator with batch norm, strided-conv "
                  "discriminator with a minibatch-std feature; class-conditional (projection "
                  "discriminator) when the data has labels",
                  "pipelines.gan:DCGAN"),
)


def list_pipelines() -> list[PipelineEntry]:
    return list(PIPELINES)


def get_entry(name: str) -> PipelineEntry:
    for entry in PIPELINES:
        if entry.name == name:
            return entry
    raise StudioError(f"unknown pipeline {name!r}; available: "
                      f"{', '.join(e.name for e in PIPELINES)}")


def load_pipeline_class(name: str) -> type:
    """Import and return the pipeline class registered under `name`."""
    module_name, _, class_name = get_entry(name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
