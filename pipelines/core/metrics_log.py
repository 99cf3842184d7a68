"""metrics.jsonl, a run's log of numbers: one JSON object per logged step (losses, learning
rates, validation and evaluation results, warnings), in the order they were logged.

    append_metrics       add one line, fsynced (the trainer; `studio eval` adds its row)
    read_metrics         every whole line, as dicts (anyone reads: the UI, model cards, tests)
    drop_metrics_after   cut the lines after a step, for a resume that repeats those steps
    last_losses          the losses of the last line that has any, for the runs table

A crash mid-append leaves at most a partial last line, which readers skip and the next resume
cuts away. `RunFolder` (runs.py) calls these with its `metrics_path`. This module never imports
torch: the UI reads metrics too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from .atomic_files import atomic_write_text


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one line, flushed and fsynced so that a crash right after loses none
    of it (NaN and infinity are written as JSON's NaN/Infinity, as Python reads them back)."""
    line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_metrics(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole record of the log, oldest first; none when there is no log yet."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if isinstance(record, dict):
            yield record


def drop_metrics_after(path: Path, last_step: int) -> None:
    """Rewrite the log (atomically) without the records logged after `last_step`, and without a
    line cut by a crash."""
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def last_losses(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """The numeric `loss*` values of the last record that has any: the last line itself may be
    evaluation or validation only, with no losses."""
    losses: dict[str, float] = {}
    for record in records:
        losses = {k: v for k, v in record.items() if k.startswith("loss")
                  and isinstance(v, (int, float)) and not isinstance(v, bool)} or losses
    return losses
