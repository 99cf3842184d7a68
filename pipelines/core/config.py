"""Typed configs: a dataclass per pipeline (and one for the trainer) with defaults and help text.

A field is declared with `option(default, "help", choices=..., low=..., high=...)` (with
`high_exclusive=True` where the upper end is not allowed itself, e.g. Adam's betas in [0, 1),
and `lines=4` where a text option is free text of several lines, e.g. a passage to classify).
The CLI's flags, the UI's forms and the validation of `--set key=value` overrides are all read
from these declarations, so adding an option to a family needs no CLI or UI code.

Every number is checked before a library sees it: floats must be finite (NaN passes every
comparison, so it would pass any range), and whole numbers without a declared range stay
within +-INT_LIMIT, so that no option can overflow a torch or numpy integer. Seeds are
0..SEED_MAX, the range numpy's and torch's generators all take (`check_seed`).

This module never imports torch: the UI reads configs too.
"""

from __future__ import annotations

import dataclasses
import fractions
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from .errors import StudioError


SEED_MAX = 2**32 - 1          # numpy's legacy seeding takes 0..2**32-1; torch takes it too
INT_LIMIT = 2**31 - 1         # whole-number options without a declared range stay within +-this


# The trainer's EMA warm-up (pipelines/core/ema.py: diffusers' EMAModel with use_ema_warmup): an
# update's decay is min(ema_decay, 1 - (1 + updates)^-power). Without it a 0.999 EMA still
# holds ~80% of the random initial weights at step 250. Every ema_decay option's help says
# what it implies.
EMA_WARM_UP_POWER = 2 / 3      # a float: the EMA's state (ema.json) keeps it
EMA_WARM_UP = (f"Warmed up: an update's decay is min(this, 1 - (1 + updates)^-"
               f"{fractions.Fraction(EMA_WARM_UP_POWER).limit_denominator(10)}), 0.999 only "
               f"after ~{round(1000 ** (1 / EMA_WARM_UP_POWER), -2):,.0f} updates, so in a "
               f"shorter run a higher value changes nothing.")


def option(default: Any, help: str, *, choices: tuple | None = None,
           low: float | None = None, high: float | None = None,
           high_exclusive: bool = False, lines: int = 1) -> Any:
    """A config field: its default, one line of help, and optional allowed values or range
    (`high_exclusive`: values must stay below `high`, as a library's half-open domain wants).
    `lines`: for a text option that is free text (a passage), the lines of the page's text box;
    only a form reads it (the CLI's `--set passage=...` is the same option)."""
    if not isinstance(lines, int) or lines < 1:
        raise TypeError(f"lines must be a whole number of at least 1, not {lines!r}")
    if lines > 1 and not isinstance(default, str):
        raise TypeError(f"lines={lines} is for text options; the default {default!r} is not text")
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices) if choices else None, "low": low, "high": high,
        "high_exclusive": bool(high_exclusive), "lines": lines})


def seed_option(default: int, help: str) -> Any:
    """A seed field: a whole number 0..SEED_MAX."""
    return option(default, help, low=0, high=SEED_MAX)


def check_seed(value: Any, name: str = "seed") -> int:
    """`value` as a seed (a whole number 0..SEED_MAX), or a StudioError naming `name`: how the
    CLI, the sampling worker and the API check the seeds they are given."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                as_float = float(value)            # "7.0", as a form may send it
                number = int(as_float) if as_float.is_integer() else None
            except (ValueError, OverflowError):
                pass
    if number is None or not 0 <= number <= SEED_MAX:
        raise StudioError(f"{name} must be a whole number from 0 to {SEED_MAX}, not {value!r}")
    return number


@dataclass(frozen=True)
class FieldSpec:
    """What a form or a flag needs to know about one config field."""
    name: str
    type: type            # bool, int, float or str
    optional: bool        # None is allowed
    default: Any
    help: str
    choices: tuple | None
    low: float | None
    high: float | None
    high_exclusive: bool = False  # high itself is not allowed
    lines: int = 1                # a text option's box: 1 line, or more for free text


def describe(config_cls: type) -> list[FieldSpec]:
    """The fields of a config dataclass, in declaration order."""
    hints = typing.get_type_hints(config_cls)
    specs = []
    for f in dataclasses.fields(config_cls):
        base, optional = _unwrap_optional(hints[f.name])
        specs.append(FieldSpec(f.name, base, optional, f.default, f.metadata.get("help", ""),
                               f.metadata.get("choices"), f.metadata.get("low"),
                               f.metadata.get("high"),
                               bool(f.metadata.get("high_exclusive", False)),
                               int(f.metadata.get("lines", 1))))
    return specs


def _unwrap_optional(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _coerce(spec: FieldSpec, value: Any, where: str) -> Any:
    """Turn a CLI string or a JSON value into the field's type, or say why it can't."""
    if value is None or (spec.optional and isinstance(value, str) and value.lower() == "none"):
        if spec.optional:
            return None
        raise StudioError(f"{where}{spec.name} cannot be empty; give a {spec.type.__name__}")
    if spec.type is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            out = True
        elif isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            out = False
        else:
            raise StudioError(f"{where}{spec.name} must be true or false, not {value!r}")
    elif spec.type is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise StudioError(f"{where}{spec.name} must be a whole number, not {value!r}")
        try:
            out = int(value) if not isinstance(value, str) else int(value.strip())
        except (TypeError, ValueError, OverflowError):
            raise StudioError(f"{where}{spec.name} must be a whole number, not {value!r}") from None
    elif spec.type is float:
        if isinstance(value, bool):
            raise StudioError(f"{where}{spec.name} must be a number, not {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError, OverflowError):
            raise StudioError(f"{where}{spec.name} must be a number, not {value!r}") from None
        if not math.isfinite(out):
            raise StudioError(f"{where}{spec.name} must be a finite number, not {value!r}; "
                              f"give {_range_text(spec) or 'a number'} (default {spec.default})")
    elif spec.type is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise StudioError(f"{where}{spec.name} must be text, not {value!r}")
        out = str(value)
    else:  # pragma: no cover - configs only use the four types above
        raise TypeError(f"unsupported config field type {spec.type}")
    if spec.choices and out not in spec.choices:
        raise StudioError(f"{where}{spec.name} must be one of {', '.join(map(str, spec.choices))}, "
                          f"not {out!r}")
    low, high = spec.low, spec.high
    if spec.type is int:  # no whole number may overflow a library's integer
        low = -INT_LIMIT if low is None else low
        high = INT_LIMIT if high is None else high
    if low is not None and out < low:
        raise StudioError(f"{where}{spec.name} must be at least {low}, not {out}")
    if high is not None and spec.high_exclusive and out >= high:
        raise StudioError(f"{where}{spec.name} must be below {high}, not {out}; give "
                          f"{_range_text(spec)}")
    if high is not None and out > high:
        raise StudioError(f"{where}{spec.name} must be at most {high}, not {out}")
    return out


def _range_text(spec: FieldSpec) -> str:
    """'a number from 0.0 to 1.0 (not included)', '' without a range."""
    if spec.low is None and spec.high is None:
        return ""
    kind = "a whole number" if spec.type is int else "a number"
    if spec.high is None:
        return f"{kind} of at least {spec.low}"
    top = f"{spec.high} (not included)" if spec.high_exclusive else f"{spec.high}"
    if spec.low is None:
        return f"{kind} up to {top}"
    return f"{kind} from {spec.low} to {top}"


def apply_overrides(config: Any, overrides: dict[str, Any], where: str = "") -> Any:
    """A copy of `config` with `overrides` applied; unknown keys and wrong types are refused."""
    specs = {s.name: s for s in describe(type(config))}
    changes = {}
    for key, value in overrides.items():
        if key not in specs:
            raise StudioError(f"unknown option {where}{key!r}; valid options are: "
                              f"{', '.join(specs)}")
        changes[key] = _coerce(specs[key], value, where)
    return dataclasses.replace(config, **changes)


def parse_set_args(pairs: list[str] | None) -> dict[str, str]:
    """`["lr=0.001", "conditional=false"]` -> {"lr": "0.001", "conditional": "false"}."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StudioError(f"an option must be key=value (for example lr=0.001), got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(config_cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Rebuild a config from JSON (run.json, a weights file's metadata), with the same checks
    as overrides. Options a config has retired since older runs saved them (its `retired`
    class attribute: option -> the only value it may have held, None for any) are dropped;
    one that held another value meant a model this config no longer describes, said so.
    Options added since (its `introduced`: option -> the value that behaves as runs did before
    it existed) take that value where the saved config lacks them, so an older run resumes as
    it trained, whatever the new default."""
    introduced = getattr(config_cls, "introduced", {})
    values = {**{k: v for k, v in introduced.items() if k not in values}, **values}
    retired = getattr(config_cls, "retired", {})
    for key in sorted(set(values) & set(retired)):
        if retired[key] is not None and values[key] != retired[key]:
            raise StudioError(f"{where}{key}={values[key]!r} was saved by an older version "
                              f"whose models this one no longer builds (it needs "
                              f"{key}={retired[key]!r}); train a new run")
    return apply_overrides(config_cls(), {k: v for k, v in values.items() if k not in retired},
                           where)


def variant_config(name: str, base: type, **defaults: Any) -> type:
    """A subclass of config dataclass `base` whose listed fields default differently, help
    text and ranges kept: how one family's variants (wgan, wgan-gp, ...) share one config."""
    hints = typing.get_type_hints(base)
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(defaults) - set(fields))
    if unknown:
        raise TypeError(f"{base.__name__} has no fields {unknown}")
    changed = [(key, hints[key], dataclasses.field(default=value, metadata=fields[key].metadata))
               for key, value in defaults.items()]
    cls = dataclasses.make_dataclass(name, changed, bases=(base,))
    cls.__module__ = base.__module__
    return cls


def config_hash(*configs: Any) -> str:
    """A short, stable fingerprint of one or more configs (dicts or dataclasses)."""
    payload = [c if isinstance(c, dict) else to_dict(c) for c in configs]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class TrainerConfig:
    """What every family shares: how long, how often to log, sample and save, and precision.

    A pipeline class may change these defaults (`Pipeline.train_defaults`), e.g. its own step
    count; the user's overrides come last."""
    steps: int = option(2000, "Total optimisation steps to train for.", low=1)
    batch_size: int = option(64, "Examples per step (per process under accelerate launch).", low=1)
    seed: int = seed_option(0, "Seed for weights, noise and data order; the same seed repeats "
                            f"a run (0 to {SEED_MAX}).")
    mixed_precision: str = option("auto", "Autocast precision: auto (per device and model "
                                  "size: fp32 on a CPU and for small models, bf16 for large "
                                  "ones on a GPU with bf16; docs/scaling.md), no (fp32), bf16, "
                                  "or fp16 (with a gradient scaler on GPUs; the steps it skips "
                                  "are counted as skipped_steps).",
                                  choices=("auto", "no", "bf16", "fp16"))
    grad_clip: float = option(0.0, "Clip each model's gradient norm to this value; 0 disables.",
                              low=0.0)
    log_every: int = option(25, "Write losses to metrics.jsonl every N steps.", low=1)
    sample_every: int = option(500, "Save a sample grid to samples/ every N steps, at the end, "
                               "and once early (at 5% of a run of 20 steps or more); 0 only at "
                               "the end.", low=0)
    checkpoint_every: int = option(500, "Save a resumable checkpoint every N steps (and at the "
                                   "end); 0 only at the end.", low=0)
    keep_checkpoints: int = option(3, "How many recent checkpoints to keep in state/.", low=1)
    sample_count: int = option(100, "Images in each periodic sample grid.", low=1, high=1024)
    sample_seed: int = seed_option(1234, "Seed of the periodic sample grids, fixed so that "
                                   "grids at different steps compare.")
    final_eval: bool = option(True, "Judge the model at the end of training (e.g. Fréchet "
                              "distance against its floor); `studio eval` can do "
                              "it later.")
    keep_best: bool = option(True, "Keep the weights of the best validation score (the "
                             "family's number, e.g. a language model's val/loss) in "
                             "best.safetensors; sampling, export and the final evaluation use "
                             "them, and the latest weights stay resumable. Families that do not "
                             "validate (GANs) keep only the latest.")
    early_stop_patience: int = option(0, "Stop once the validation score has not improved for "
                                      "this many log steps in a row; 0 never stops early.",
                                      low=0)
    report_to: str = option("none", "Also send every logged number and sample grid to an "
                            "experiment tracker, through Accelerate: tensorboard writes event "
                            "files into the run folder's tensorboard/ (view every run with "
                            "`tensorboard --logdir checkpoints`); none keeps the studio's own "
                            "metrics.jsonl only.", choices=("none", "tensorboard"))
    cpu: bool = option(False, "Train on the CPU even when a GPU is available.")
    compile: bool = option(False, "torch.compile the pipeline's networks (inductor): slower "
                           "first steps while it compiles, then often faster steps; needs a "
                           "C++ compiler on the CPU. Measure it: `studio train ... --dry-run`.")
    tf32: bool = option(True, "On CUDA GPUs (Ampere and newer), run fp32 matmuls and "
                        "convolutions in TF32 on the tensor cores; no effect on the CPU.")
    channels_last: bool = option(True, "On CUDA GPUs, keep convolution weights and image "
                                 "batches in channels-last (NHWC) memory order, which cuDNN's "
                                 "fastest kernels want; no effect on the CPU.")
