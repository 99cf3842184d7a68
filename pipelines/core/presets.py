"""Training presets: named sets of option changes that the CLI (`studio train --preset gpu`)
and the page's Preset radio both read, so that a preset means the same everywhere.

    quick look, default, long   a tenth (at least 50), one and three times the family's default
                                steps: for a CPU, where the default sizes are measured
    gpu                         a bigger model, batch and step count for one modern GPU (H100 /
                                H200 class) and about 5 minutes of training, declared by each
                                family as `Pipeline.presets["gpu"]`

A preset is plain data, {"config": {model options}, "trainer": {trainer options}}, read from the
pipeline class without running any of it; its values are checked like the user's own (by
`apply_overrides`, when the run starts), and the user's --set and flags come after it (the user
wins). Models fit in one go (the classic scikit-learn ones) have no trainer and no presets.

This module never imports torch: the sampling worker hands the presets to the page with the
rest of a pipeline's description.
"""

from __future__ import annotations

import copy
from typing import Any

from .config import TrainerConfig
from .errors import StudioError

# How many times the family's default steps each CPU preset trains for.
STEP_MULTIPLIERS = {"quick look": 0.1, "default": 1.0, "long": 3.0}
PRESET_NAMES = (*STEP_MULTIPLIERS, "gpu")
MIN_STEPS = 50   # a quick look still shows a curve and a grid


def extend(preset: dict[str, dict[str, Any]], *, config: dict[str, Any] | None = None,
           trainer: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """A copy of a parent family's preset with some options changed: how a variant (wgan,
    contractive-ae, ...) adjusts its family's gpu preset."""
    return {"config": {**preset["config"], **(config or {})},
            "trainer": {**preset["trainer"], **(trainer or {})}}


def data_name(data: str | None) -> str:
    """The bundled data set a data spec names ("Shapes" -> "shapes"); "" for a user's own
    (folder:..., text:..., ...) and for none."""
    return "" if not data or ":" in data else data.strip().lower()


def train_defaults_for(pipeline_cls: type, data: str | None) -> dict[str, Any]:
    """The pipeline's trainer defaults on this data: its train_defaults, with its changes for
    that bundled data set (train_defaults_by_data) over them."""
    by_data = getattr(pipeline_cls, "train_defaults_by_data", {}) or {}
    return {**pipeline_cls.train_defaults, **by_data.get(data_name(data), {})}


def preset_steps(default_steps: int, preset: str) -> int:
    """The step count of a CPU preset: max(50, default x its multiplier)."""
    return max(MIN_STEPS, int(round(default_steps * STEP_MULTIPLIERS[preset])))


def has_presets(pipeline_cls: type) -> bool:
    """False for models without a trainer (fit in one go): nothing for a preset to set."""
    return getattr(pipeline_cls, "presets", None) is not None


def family_presets(pipeline_cls: type, data: str | None = None
                   ) -> dict[str, dict[str, dict[str, Any]]]:
    """Every preset of a pipeline class, in PRESET_NAMES order, as JSON-ready dicts: the step
    multipliers of its default steps on `data`, then what the family declares (its gpu
    preset)."""
    if not has_presets(pipeline_cls):
        return {}
    default_steps = train_defaults_for(pipeline_cls, data).get("steps", TrainerConfig().steps)
    out = {name: {"config": {}, "trainer": {"steps": preset_steps(default_steps, name)}}
           for name in STEP_MULTIPLIERS}
    out.update(copy.deepcopy(pipeline_cls.presets))
    return {name: out[name] for name in (*PRESET_NAMES, *out) if name in out}


def normalise_name(name: str) -> str:
    """'quick-look' and 'quick_look' are 'quick look' (a space is awkward on a command line)."""
    return " ".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def preset_overrides(pipeline_cls: type, preset: str, data: str | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config overrides, trainer overrides) of a preset on `data`, unchecked: they go through
    the same validation as the user's own options when the run starts. An unknown preset, or
    any preset for a model without a trainer, is refused in one line that lists the valid
    ones."""
    presets = family_presets(pipeline_cls, data)
    name = getattr(pipeline_cls, "name", "this pipeline")
    if not presets:
        raise StudioError(f"{name} is fit in one go, not trained by steps: it has no presets")
    chosen = presets.get(normalise_name(preset))
    if chosen is None:
        raise StudioError(f"unknown preset {preset!r} for {name}; valid presets are: "
                          f"{', '.join(presets)}")
    return dict(chosen["config"]), dict(chosen["trainer"])
