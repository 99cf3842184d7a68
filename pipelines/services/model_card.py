"""The model card: README.md in a run folder (and its export/), written from run.json."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic_files import atomic_write_text
from ..core.runs import RunFolder


def _table(values: dict) -> str:
    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in sorted(values.items()))
    return "| option | value |\n| --- | --- |\n" + rows


def model_card_text(run: RunFolder, ecosystem: str = "") -> str:
    """The card; `ecosystem` is the family's own section about its exported library folder."""
    info = run.info()
    last = {}
    for record in run.metrics():
        if not any(k.startswith("eval/") for k in record):
            last = record
    losses = {k: round(v, 4) for k, v in last.items() if k not in ("step", "time")
              and isinstance(v, (int, float))}
    evals = info.get("eval") or {}
    data_info = info.get("data_info", {})
    lines = [
        f"# {info['pipeline']} on {info['data']}",
        "",
        f"Trained with Generative Media Studio. Run `{run.id}`, status **{info.get('status')}** "
        f"at step {info.get('step')} of {info.get('total_steps')} "
        f"({info.get('elapsed_seconds', 0)} s on {info.get('device', '?')}, "
        f"{info.get('processes', 1)} process(es), precision {info.get('precision', 'no')}, "
        f"peak memory {info.get('peak_memory_mb', '?')} MB, seed {info.get('seed')}).",
        "",
        "## Data",
        f"`{info['data']}`: " + ", ".join(f"{k} {v}" for k, v in data_info.items()
                                         if k in ("kind", "channels", "image_size", "num_classes")),
        "",
        "## Metrics",
        "Last logged losses: " + (", ".join(f"{k} {v}" for k, v in losses.items()) or "none yet"),
    ]
    best = info.get("best") or {}
    if best.get("value") is not None:
        lines += ["", f"Best validation: {best['metric']} {best['value']:.4g} at step "
                      f"{best['step']}; `best.safetensors` holds those weights and sampling, "
                      f"export and the evaluation use them (`model.safetensors` holds the "
                      f"latest)."]
    if evals:
        lines.append("")
        lines.append("Evaluation: " + ", ".join(
            f"{k} {round(v, 4) if isinstance(v, float) else v}" for k, v in evals.items()))
    lines += [
        "",
        "## Configuration",
        _table(info.get("config", {})),
        "",
        "Trainer:",
        "",
        _table(info.get("trainer", {})),
        "",
        "## How to load",
        "`model.safetensors` holds the weights for sampling (EMA weights where the run kept an "
        "EMA); its metadata names the pipeline, step, config and config hash, so the file alone "
        "says what it is.",
        "",
        "```bash",
        f"studio sample {run.id} --n 64 --seed 0 --out grid.png",
        "```",
        "",
        "```python",
        "from pipelines.services.loading import load_for_sampling",
        f"pipe = load_for_sampling({str(run.path)!r})",
        "samples = pipe.sample(16, seed=0)   # samples.images: (16, C, H, W) floats in [0, 1]",
        "```",
        "",
        *([ecosystem.strip(), ""] if ecosystem.strip() else []),
        f"Versions: {', '.join(f'{k} {v}' for k, v in info.get('versions', {}).items())}.",
    ]
    return "\n".join(lines) + "\n"


def write_model_card(run: RunFolder, dest: Path | None = None, ecosystem: str = "") -> Path:
    path = dest or run.path / "README.md"
    atomic_write_text(path, model_card_text(run, ecosystem))
    return path
