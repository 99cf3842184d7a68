"""What a run's metadata must hold before anyone reads it: run.json, and the studio metadata
of a weights file (`model.safetensors` / `best.safetensors` / a checkpoint's).

Readers index these fields directly (`info["channels"]`, `int(meta["studio_step"])`, sorting
by `created`), so one edited or foreign file would otherwise end in a KeyError or TypeError
deep inside a reader, or in every reader that lists runs. Here each field is checked once, on
reading, and every problem becomes one StudioError:

    run 20250101-dcgan's metadata is damaged: created must be text (a date and time), not 7
    x.safetensors has damaged studio metadata: studio_data_info has no channels; ...

Only the fields readers use are checked, and only when present (a run that has not trained
yet has no device, a queued one no pid); other fields pass untouched, so a new field needs
no change here. This module never imports torch: the UI lists runs with it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Callable

from .errors import StudioError

# A field's check: None when the value is fine, else what it must be ("a whole number ...").
Check = Callable[[Any], "str | None"]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text(value: Any) -> str | None:
    return None if isinstance(value, str) else "text"


def timestamp(value: Any) -> str | None:
    return None if isinstance(value, str) else "a date and time, as text"


def nonempty_text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "a non-empty text"


def whole(low: int | None = None, high: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if _is_int(value) and (low is None or value >= low) and (high is None or value <= high):
            return None
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return "a whole number" + (f" of at least {low}" if low is not None else "")
    return check


def number(value: Any) -> str | None:
    return None if _is_number(value) else "a number"


def mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "a JSON object"


def text_list(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "a list of texts"


def optional(check: Check) -> Check:
    def either(value: Any) -> str | None:
        problem = None if value is None else check(value)
        return None if problem is None else f"{problem} (or null)"
    return either


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"
    return check


def _problems(values: dict[str, Any], fields: dict[str, Check], prefix: str = "") -> list[str]:
    out = []
    for name, check in fields.items():
        if name in values:
            want = check(values[name])
            if want is not None:
                out.append(f"{prefix}{name} must be {want}, not {_show(values[name])}")
    return out


# --- run.json ---------------------------------------------------------------------------------
STATUSES = ("queued", "running", "stopped", "done", "failed")   # as written in run.json


@functools.cache
def _run_fields() -> dict[str, Check]:
    return {
        "id": text, "pipeline": nonempty_text, "data": text, "status": one_of(STATUSES),
        "step": whole(0), "total_steps": optional(whole(1)),
        "created": timestamp, "updated": timestamp, "heartbeat": optional(timestamp),
        "config": mapping, "trainer": mapping, "data_info": mapping,
        "eval": optional(mapping), "eval_other": optional(mapping), "best": optional(mapping),
        "versions": optional(mapping),
        "message": optional(text), "warning": optional(text), "preset": optional(text),
        "device": optional(text), "precision": optional(text), "host": optional(text),
        "processes": optional(whole(1)), "threads": optional(whole(1)), "pid": optional(whole(0)),
        "peak_memory_mb": optional(number), "elapsed_seconds": optional(number),
        "eta_seconds": optional(number), "steps_per_sec": optional(number),
        "checkpoint_step": optional(whole(0)), "seed": optional(whole()),
    }


def run_info_problems(info: Any) -> list[str]:
    """What is wrong with a run.json's contents, in words; [] when readers can use it."""
    if not isinstance(info, dict):
        return [f"run.json must hold a JSON object, not {type(info).__name__}"]
    problems = _problems(info, _run_fields())
    pipeline, data_info = info.get("pipeline"), info.get("data_info")
    if isinstance(pipeline, str) and isinstance(data_info, dict):
        config = info.get("config") if isinstance(info.get("config"), dict) else {}
        problems += data_info_problems(pipeline, data_info, config, "data_info.")
    return problems


def check_run_info(info: Any, run_id: str) -> dict[str, Any]:
    """`info` (a parsed run.json) if readers can use it, else a StudioError saying what is
    damaged: `run X's metadata is damaged: ...`."""
    problems = run_info_problems(info)
    if problems:
        raise StudioError(f"run {run_id}'s metadata is damaged: {'; '.join(problems)}")
    return info


# --- the data facts a model is built from (Pipeline.describe_data) ---------------------------
IMAGE_INFO: dict[str, Check] = {
    "name": text, "channels": whole(1, 4), "image_size": whole(1, 4096),
    "num_classes": whole(0, 1_000_000), "class_names": text_list,
}
TEXT_INFO: dict[str, Check] = {"name": text, "tokenizer": nonempty_text,
                               "vocab_size": whole(1, 10_000_000)}
CAPTION_INFO: dict[str, Check] = {"tokenizer": nonempty_text, "max_length": whole(1, 100_000),
                                  "vocab_size": whole(1, 10_000_000)}
CAPTION_EXTRAS: dict[str, Check] = {"caption_grammar": optional(one_of(("shapes",))),
                                    "sample_prompts": text_list}
# Keys a family's networks are built from: every one must be there.
REQUIRED = {"image": ("channels", "image_size", "num_classes"),
            "text": ("tokenizer", "vocab_size")}


def data_info_problems(pipeline: str, info: dict[str, Any], config: dict[str, Any],
                       prefix: str = "") -> list[str]:
    """What is missing or malformed in the data facts of a `pipeline` model. An unknown
    pipeline has nothing to check here (loading it says it is unknown)."""
    from ..registry import PIPELINES
    entry = next((e for e in PIPELINES if e.name == pipeline), None)
    if entry is None or entry.trains == "fit":   # classic runs store a table's facts
        return []
    # Language models on pairs or labelled passages are built from a tokenizer too.
    kind = "text" if entry.data_kind in ("text", "text-pairs", "labelled-text") else "image"
    fields = dict(TEXT_INFO if kind == "text" else IMAGE_INFO)
    required = list(REQUIRED[kind])
    if entry.family == "diffusion" and config.get("conditioning") == "text":
        fields.update(CAPTION_INFO)
        required += [k for k in CAPTION_INFO if k not in required]
        fields.update(CAPTION_EXTRAS)   # checked where present (older models lack them)
    if entry.name == "transformer":
        fields["model_config"] = mapping
        required.append("model_config")
    missing = [k for k in required if k not in info]
    problems = []
    if missing:
        problems.append(f"{prefix.rstrip('.') or 'the data info'} has no "
                        f"{', '.join(missing)} (a {pipeline} model is built from "
                        f"{', '.join(required)})")
    return problems + _problems(info, fields, prefix)


# --- a weights file's studio metadata ----------------------------------------------------------
@dataclass(frozen=True)
class WeightsMetadata:
    """What a studio weights file says about itself, checked."""
    pipeline: str
    step: int
    config: dict[str, Any]
    data_info: dict[str, Any]


def weights_metadata_problems(meta: dict[str, Any]) -> tuple[list[str], WeightsMetadata | None]:
    problems: list[str] = []
    pipeline = meta.get("studio_pipeline")
    from ..registry import PIPELINES
    entry = next((e for e in PIPELINES if e.name == pipeline), None)
    if not isinstance(pipeline, str) or entry is None:
        problems.append(f"studio_pipeline must name a pipeline of this studio (`studio list`), "
                        f"not {_show(pipeline)}")
    elif entry.trains == "fit":
        problems.append(f"studio_pipeline {pipeline!r} is fit in one go and has no weights file")
    raw_step = meta.get("studio_step", "0")
    step = None
    if isinstance(raw_step, str) and raw_step.strip().isdecimal() and raw_step.isascii():
        step = int(raw_step)
    else:
        problems.append(f"studio_step must be a whole number of at least 0, not {_show(raw_step)}")
    parsed: dict[str, Any] = {}
    for key in ("studio_config", "studio_data_info"):
        raw = meta.get(key)
        if raw is None:
            problems.append(f"{key} is missing")
            continue
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except (json.JSONDecodeError, RecursionError):
            value = None
        if not isinstance(value, dict):
            problems.append(f"{key} must be a JSON object, not {_show(raw)}")
            continue
        parsed[key] = value
    config, info = parsed.get("studio_config"), parsed.get("studio_data_info")
    if entry is not None and info is not None:
        problems += data_info_problems(pipeline, info, config or {}, "studio_data_info.")
    if problems:
        return problems, None
    return [], WeightsMetadata(pipeline, step, config, info)


def check_weights_metadata(meta: dict[str, Any], path: Any) -> WeightsMetadata:
    """The checked studio metadata of the weights file at `path`, or a StudioError:
    `PATH has damaged studio metadata: ...`."""
    problems, checked = weights_metadata_problems(meta)
    if checked is None:
        raise StudioError(f"{path} has damaged studio metadata: {'; '.join(problems)}")
    return checked
