"""Every pipeline's spec, in the order the page and `studio list` show them.

Each family declares its pipelines in a torch-free `spec.py` (pipelines/core/spec.py says what a
spec holds); listing them (the page does it at start-up, and builds every form from them)
imports no torch and no family code. Adding a family is one line here: its spec module.
"""

from __future__ import annotations

import importlib

from .core.errors import StudioError
from .core.spec import PipelineSpec

FAMILY_SPECS = (
    "pipelines.gan.spec",
    "pipelines.gan.stylegan_spec",
    "pipelines.gan.biggan_spec",
    "pipelines.gan.lapgan_spec",
    "pipelines.autoencoders.spec",
    "pipelines.linear.spec",
    "pipelines.classic.spec",
    "pipelines.classifiers.spec",
    "pipelines.diffusion.spec",
    "pipelines.text.spec",
    "pipelines.language.bert_spec",
    "pipelines.language.seq2seq_spec",
    "pipelines.language.word2vec_spec",
    "pipelines.translation.spec",
    "pipelines.superres.spec",
)

PIPELINES: tuple[PipelineSpec, ...] = tuple(
    spec for module in FAMILY_SPECS for spec in importlib.import_module(module).SPECS)


def list_pipelines() -> list[PipelineSpec]:
    return list(PIPELINES)


def get_entry(name: str) -> PipelineSpec:
    for entry in PIPELINES:
        if entry.name == name:
            return entry
    raise StudioError(f"unknown pipeline {name!r}; available: "
                      f"{', '.join(e.name for e in PIPELINES)}")


def load_pipeline_class(name: str) -> type:
    """Import and return the implementation class of pipeline `name` (this imports torch)."""
    module_name, _, class_name = get_entry(name).impl.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
