"""Sampling and tools on a trained model, the way the CLI and the UI both call them.

    controls = parse_controls(pipe, {"truncation": "0.7"})     # validated, typed
    pipe.sample(n, seed, labels, **controls)
    result = run_tool(pipe, "code-sweep", {"code": "1"}, input_paths=[], cache_dir=...)

Nothing here knows a family: the controls and the tools are read from the pipeline class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.base import Pipeline, Samples, ToolContext, ToolResult
from ..core.config import apply_overrides, to_dict
from ..core.errors import StudioError


def parse_controls(pipe: Pipeline, values: dict[str, Any]) -> dict[str, Any]:
    """The family's sampling controls with `values` applied (strings from the CLI are fine);
    unknown keys and wrong types are refused with the valid list."""
    cls = type(pipe)
    if cls.SampleControls is None:
        if values:
            raise StudioError(f"{cls.name} has no sampling controls; leave out --set")
        return {}
    return to_dict(apply_overrides(cls.SampleControls(), values))


def run_tool(pipe: Pipeline, name: str, options: dict[str, Any], *,
             input_paths: list[str | os.PathLike] | None = None,
             cache_dir: str | os.PathLike) -> ToolResult:
    """Run the family tool `name` on a loaded model (see `loading.load_for_sampling`). Input
    files may be pictures or zips of them (services/tool_inputs.py)."""
    import tempfile
    tool = pipe.get_tool(name)
    typed = to_dict(apply_overrides(tool.Options(), options))
    if tool.needs_images and not input_paths:
        raise StudioError(f"tool {name} needs input images: pass --input a.png [b.png ...]")
    if input_paths and not (tool.needs_images or tool.accepts_images):
        raise StudioError(f"tool {name} takes no input images; leave out --input")
    with tempfile.TemporaryDirectory(prefix="studio-tool-") as unpacked:
        try:
            return _run_tool(pipe, tool, typed, input_paths, Path(unpacked), cache_dir)
        except StudioError as e:
            # A zip's pictures are named by their path inside it, not the temporary folder.
            raise StudioError(str(e).replace(f"{Path(unpacked)}{os.sep}", "")) from None


def _run_tool(pipe: Pipeline, tool, typed: dict[str, Any], input_paths, unpacked: Path,
              cache_dir) -> ToolResult:
    from .imaging import read_images
    from .tool_inputs import unpack_inputs
    from ..core.run_setup import load_data_for
    paths = unpack_inputs(list(input_paths), unpacked) if input_paths else []
    images = (read_images(paths, pipe.info["channels"], pipe.info["image_size"])
              if paths else None)
    cached: dict[str, Any] = {}

    def load_data():
        # The run's own data set, loaded the way the trainer loaded it, on first use only.
        if "data" not in cached:
            cached["data"] = load_data_for(type(pipe), pipe.config, pipe.info["name"])
        return cached["data"]

    ctx = ToolContext(images=images, load_data=load_data, cache_dir=Path(cache_dir),
                      paths=tuple(str(p) for p in paths))
    return getattr(pipe, tool.method)(ctx, **typed)


def upscale_samples(samples: Samples, upscaler: Pipeline, name: str) -> Samples:
    """A batch of images made `upscaler.spec.upscales` times larger by a super-resolution run
    (`name` says which, in errors): the chain `studio sample RUN --upscale-with SR_RUN`."""
    if samples.images is None:
        raise StudioError("only images can be upscaled; this model writes text")
    if not upscaler.spec or not upscaler.spec.upscales:
        raise StudioError(f"{name} is a {upscaler.name} run, which does not upscale; pick a "
                          f"super-resolution run")
    return Samples(images=upscaler.upscale_images(samples.images), labels=samples.labels)
