"""What the live view shows about a run, read from its folder (plain data, tested without a
browser): curves for the plots, the progress line, the sample grids for the scrubber, the log.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder

from .common import as_markdown_text, format_step

NOT_CURVES = ("step", "time", "warning")
# The live view's charts, each on its own y axis, so that gradient norms (~20) do not flatten
# losses (~1) into a line at 0. A name's shape decides its chart (chart_of).
CHARTS = ("losses", "diagnostics", "learning rate", "validation")
# Counts and sizes are numbers to read, not curves: 120,000 tokens beside a loss of 1.5 made
# the validation chart's axis useless.
COUNTS = ("n", "draws", "characters", "tokens", "weights_step", "skipped_steps")


def _series(run: RunFolder) -> dict[str, list[tuple[int, float]]]:
    """Every plottable number of the run's metrics: {name: [(step, value), ...]}."""
    out: dict[str, list[tuple[int, float]]] = {}
    for record in run.metrics():
        for key in record:
            point = None if key in NOT_CURVES else curve_point(record, key)
            if point is not None:
                out.setdefault(key, []).append(point)
    return out


def curve_frames(run: RunFolder, smoothing: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training curves, validation/evaluation curves) as long tables (step, value, series) for
    gr.LinePlot. `smoothing` in [0, 1) is an exponential moving average of each series (as in
    TensorBoard), so noisy losses read as trends; validation numbers are never smoothed."""
    series = _series(run)
    checks = {k: v for k, v in series.items() if k.startswith(("val/", "eval/"))}
    train = {k: v for k, v in series.items() if k not in checks}
    return _long(train, smoothing), _long(checks, 0.0)


def chart_of(name: str) -> str | None:
    """Which live chart draws metric `name`, or None: counts and sizes, and the end-of-run
    evaluation (one number each, in the Runs tab), are not curves."""
    if name.startswith("eval/") or name.rsplit("/", 1)[-1] in COUNTS:
        return None
    if name.startswith("val/"):
        return "validation"
    if name == "lr" or name.startswith("lr_"):
        return "learning rate"
    return "losses" if "loss" in name or "nll" in name else "diagnostics"


# What an empty chart means, said under the charts instead of leaving a blank box unexplained.
EMPTY_CHARTS = {
    "losses": "no losses logged yet (the first log step has not come)",
    "diagnostics": "no diagnostics logged yet",
    "learning rate": "no learning-rate schedule: each optimiser keeps the rate it was made with",
    "validation": "no validation numbers: this family does not validate (or the first log "
                  "step has not come)",
}


def empty_charts_note(frames: dict[str, pd.DataFrame]) -> str:
    """One line naming the empty charts and why they are empty ('' when none is)."""
    empty = [f"*{chart}*: {EMPTY_CHARTS[chart]}" for chart, frame in frames.items()
             if len(frame) == 0]
    return "Empty charts — " + "; ".join(empty) + "." if empty else ""


def chart_frames(run: RunFolder, smoothing: float = 0.0) -> dict[str, pd.DataFrame]:
    """{chart: long table} for each of CHARTS; losses and diagnostics smoothed as in
    curve_frames, learning rates and validation numbers never."""
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {chart: {} for chart in CHARTS}
    for name, points in _series(run).items():
        chart = chart_of(name)
        if chart is not None:
            groups[chart][name] = points
    return {chart: _long(series, smoothing if chart in ("losses", "diagnostics") else 0.0)
            for chart, series in groups.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curve_point(record: dict, key: str) -> tuple[int, float] | None:
    """(step, value) of `key` in one metrics record, or None where it cannot be plotted: the x
    axis is numeric, so a record without an integer step has no place on it, and a value must
    be a finite number."""
    step, value = record.get("step"), record.get(key)
    if isinstance(step, int) and _is_number(step) and _is_number(value) and math.isfinite(value):
        return step, float(value)
    return None


def _long(series: dict[str, list[tuple[int, float]]], smoothing: float) -> pd.DataFrame:
    rows = []
    for name, points in sorted(series.items()):
        average = None
        for step, value in points:
            average = value if average is None else smoothing * average + (1 - smoothing) * value
            rows.append((step, average, name))
    return curve_table(rows, "series")


def curve_table(rows: list[tuple[int, float, str]], color: str) -> pd.DataFrame:
    """A long (step, value, `color`) table with fixed dtypes, empty or not: gr.LinePlot tells
    the browser each column's kind from its dtype (int/float: a numeric axis; an empty
    DataFrame's object columns: categories, one tick label per value)."""
    return pd.DataFrame(rows, columns=["step", "value", color]).astype(
        {"step": "int64", "value": "float64", color: "str"})


def plot_value(frame: pd.DataFrame) -> pd.DataFrame | None:
    """What a gr.LinePlot is given: None (its empty box) for a table with no rows."""
    return frame if len(frame) else None


def plotted_series(frame: pd.DataFrame, color: str = "series") -> tuple[str, ...]:
    """The lines a curve table draws (sorted names; () for none)."""
    return tuple(sorted(map(str, frame[color].unique()))) if len(frame) else ()


def needs_redraw(drawn: tuple[str, ...] | list[str] | None, series: tuple[str, ...]) -> bool:
    """Whether a gr.LinePlot now showing the lines `drawn` must be blanked (given None) before
    it gets a table with the lines `series`. Gradio 6's LinePlot builds its chart (axis kinds,
    the colour of each line) from the first table it shows, then only swaps the data in: a line
    whose name was not in that first table is never drawn. Blanking it makes the next table
    build a new chart."""
    return bool(drawn) and bool(series) and tuple(drawn) != tuple(series)


def format_seconds(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def progress_text(run: RunFolder, exit_code: int | None = None, ahead: int | None = None) -> str:
    """One markdown line: status, step/total, elapsed and ETA, speed, device and precision,
    processes and peak memory. `ahead`: how many queued runs start before this queued one."""
    try:
        info = run.info()
    except StudioError as e:  # a damaged run.json: say so on every refresh, without a toast
        return f"**damaged** · {as_markdown_text(str(e))}"
    status = run.display_status(info)   # `interrupted`: says running, nobody trains it
    if status == "interrupted":
        kept = run.checkpoint_steps()
        info = {**info, "message": (f"its training process is gone; Resume continues from "
                                    f"{f'step {kept[-1]}' if kept else 'the start'}"),
                "eta_seconds": None}
    if exit_code is not None and status in ("queued", "running"):
        status = f"{status}? (process exited with code {exit_code})"
    parts = [f"**{status}**", f"step {format_step(info.get('step', 0), info.get('total_steps'))}",
             f"{info.get('pipeline', '?')} on {info.get('data', '?')}"]
    if status == "queued":
        parts.append("starting" if ahead is None else f"waiting for a free slot: {ahead} ahead")
    if info.get("elapsed_seconds") is not None:
        parts.append(f"elapsed {format_seconds(info['elapsed_seconds'])}")
    phase = info.get("phase") if isinstance(info.get("phase"), dict) else {}
    several = phase.get("of", 1) > 1
    if several:   # a run in phases (pipelines/core/phases.py): which one, and what comes after
        parts.append(f"phase {phase.get('number')}/{phase.get('of')}: {phase.get('name')}")
    if status == "running" and info.get("eta_seconds") is not None:
        if several:
            later = ", ".join(f"{p.get('steps')} {p.get('name')} steps"
                              for p in phase.get("after", []))
            parts.append(f"ETA of this phase {format_seconds(info['eta_seconds'])}"
                         + (f", then {later} (their speed shows once they start)"
                            if later else ""))
        else:
            parts.append(f"ETA {format_seconds(info['eta_seconds'])}")
    if info.get("steps_per_sec"):
        parts.append(f"{info['steps_per_sec']:.3g} steps/s")
    if info.get("device"):
        precision = info.get("precision", "no")
        precision = "fp32" if precision == "no" else precision
        why = info.get("precision_reason", "")
        auto = f" ({why})" if why.startswith("auto") else ""
        parts.append(f"{info['device']}, {precision} precision{as_markdown_text(auto)}, "
                     f"{info.get('processes', 1)} process(es)")
    best = info.get("best") or {}
    if best.get("value") is not None:
        parts.append(f"best {best['metric']} {best['value']:.4g} at step {best['step']}")
    if info.get("peak_memory_mb") is not None:
        parts.append(f"peak memory {format_megabytes(info['peak_memory_mb'])}")
    for key in ("warning", "message"):
        if info.get(key):
            parts.append(as_markdown_text(str(info[key])))
    return " · ".join(parts)


def format_megabytes(mb: Any) -> str:
    """'812 MB' or '3.2 GB'; '' when unknown."""
    if not isinstance(mb, (int, float)) or isinstance(mb, bool) or not math.isfinite(mb):
        return ""
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def sample_grids(run: RunFolder) -> list[tuple[int, Path]]:
    """(step, PNG) of every periodic sample grid, oldest first."""
    grids = []
    for path in run.sample_files():
        match = re.fullmatch(r"step_(\d+)", path.stem)
        if path.suffix == ".png" and match:
            grids.append((int(match.group(1)), path))
    return grids


def latest_text_sample(run: RunFolder) -> str:
    texts = [p for p in run.sample_files() if p.suffix == ".txt"]
    return texts[-1].read_text(encoding="utf-8", errors="replace") if texts else ""


def log_tail(run: RunFolder, log_path: Path | None, lines: int = 12) -> str:
    """The end of the job's log when this studio started it, else the last metrics lines."""
    if log_path is not None and log_path.is_file():
        text = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])
    records = run.metrics()[-lines:]
    return "\n".join(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in r.items()) for r in records)
