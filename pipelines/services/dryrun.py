"""`studio train ... --dry-run`: a few real steps in a temporary folder, then a plain report.

Everything is built exactly as the real run would build it (the same options, checks, data,
device, precision, processes, compile); only the step count and the periodic work change:
2 warm-up steps (torch.compile compiles, allocators settle), N timed steps, then one log line
(the family's validation), one sample grid and one checkpoint, each timed, and the checkpoint
measured on disk. The ETA of the configured run adds those per-event costs at the configured
log, sample and checkpoint intervals. The temporary folder is deleted; nothing is written
under the runs folder.

    device      cpu, 1 process, precision no (fp32)
    speed       12.3 steps/s (10 steps after 2 warm-up steps; warm-up took 1.2 s)
    memory      peak 512 MB (resident memory of the process)
    disk        1.4 MB per checkpoint; 4.6 MB for the 3 kept, the weights and 9 sample grids
    ETA         2000 steps in about 3 min 10 s (training 2 min 43 s, logging 12 s, ...)
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..core.config import TrainerConfig
from ..core.phases import spans as phase_spans
from ..registry import load_pipeline_class
from ..core.run_setup import make_configs, start_run
from ..core.runs import RunFolder

WARMUP_STEPS = 2


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MB" if n_bytes >= 2**20 / 10 else f"{n_bytes / 2**10:.0f} KB"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min" if h else f"{m} min {s} s" if m else f"{s} s"


class _Clock:
    """Trainer events -> times: the step events bracket the timed steps; the log, sample and
    checkpoint events that follow the last step time each of those."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self.first = warmup, {}, time.perf_counter()

    def __call__(self, kind: str, event: dict[str, Any]) -> None:
        now = time.perf_counter()
        if kind == "step":
            self.times.setdefault(f"step{event['step']}", now)
            self.times["last_step"] = now
        elif kind in ("log", "sample", "checkpoint"):
            self.times.setdefault(kind, now)


def dry_run(pipeline: str, data: str, config_overrides: dict[str, Any],
            trainer_overrides: dict[str, Any], steps: int = 10,
            create_on_main: Callable[[Callable[[], RunFolder]], RunFolder] | None = None) -> str:
    """Train `steps` timed steps of the run these options describe; returns the report.
    A family whose steps cost differently in phases (a latent diffusion model trains its
    autoencoder first) gets one such trial per phase. `create_on_main` creates the run on the
    main process only under `accelerate launch`."""
    if steps < 1:
        from ..core.errors import StudioError
        raise StudioError(f"--dry-run-steps must be at least 1, not {steps}")
    cls = load_pipeline_class(pipeline)
    config, tc = make_configs(cls, config_overrides, trainer_overrides, data)  # the run as configured
    trials = []
    for span in phase_spans(cls.phases(config), tc.steps):
        trial = _trial(pipeline, data, config_overrides, trainer_overrides, steps,
                       create_on_main, start=span.start)
        if trial is None:                       # not the main process
            return ""
        trials.append((span.phase.name, span.steps, trial))
    return report(tc, steps, trials)


def _trial(pipeline: str, data: str, config_overrides: dict[str, Any],
           trainer_overrides: dict[str, Any], steps: int, create_on_main,
           start: int = 0) -> dict | None:
    """WARMUP_STEPS + steps real steps in a temporary folder, from step `start` (the first
    step of the phase being timed: the trainer picks each step's phase by its number):
    their times and sizes."""
    from ..core.trainer import Trainer  # torch and accelerate: only when it runs

    total = start + WARMUP_STEPS + steps
    trial = {**trainer_overrides, "steps": total, "log_every": total, "sample_every": 0,
             "checkpoint_every": 0, "final_eval": False}
    tmp: list[Path] = []

    def create() -> RunFolder:
        tmp.append(Path(tempfile.mkdtemp(prefix="studio-dry-run-")))
        return start_run(pipeline, data, config_overrides=config_overrides,
                         trainer_overrides=trial, runs_dir=tmp[0], name="dry-run")

    run = create_on_main(create) if create_on_main else create()
    try:
        clock = _Clock(start + WARMUP_STEPS)
        trainer = Trainer(run, callbacks=(clock,))
        trainer.step = start
        main = trainer.accelerator.is_main_process
        trainer.train(resume=False)
        peak = trainer._peak_memory_mb()
        processes, device = trainer.accelerator.num_processes, trainer.accelerator.device
        trainer.accelerator.wait_for_everyone()
        if not main:
            return None
        grids = run.sample_files()
        measured = dict(ckpt_bytes=_folder_bytes(run.checkpoint_dir(total)),
                        weights_bytes=run.weights_path.stat().st_size,
                        grid_bytes=grids[0].stat().st_size if grids else 0,
                        info=run.info(), processes=processes, device=device, peak_mb=peak)
    finally:
        if tmp:  # the main process made it (and only it knows it: the others got the path)
            shutil.rmtree(tmp[0], ignore_errors=True)
    t = clock.times
    costs = {"log": t["log"] - t["last_step"], "sample": t.get("sample", t["log"]) - t["log"],
             "checkpoint": t["checkpoint"] - t.get("sample", t["log"])}
    return {**measured, "costs": costs,
            "step_time": (t["last_step"] - t[f"step{start + WARMUP_STEPS}"]) / steps,
            "warmup_s": t[f"step{start + WARMUP_STEPS}"] - clock.first}


def report(tc: TrainerConfig, steps: int, trials: list[tuple[str, int, dict]]) -> str:
    """The plain-text report (the Train tab shows it as it is). trials: (phase, its steps,
    what _trial measured) per phase; the sizes and per-event costs are the last phase's."""
    last = trials[-1][2]
    info, processes, device, costs = last["info"], last["processes"], last["device"], last["costs"]
    ckpt_bytes, weights_bytes, grid_bytes = last["ckpt_bytes"], last["weights_bytes"], last["grid_bytes"]
    peak_mb = max(trial["peak_mb"] for _, _, trial in trials)
    n_logs = tc.steps // tc.log_every
    n_samples = (tc.steps // tc.sample_every if tc.sample_every else 0) + 1
    n_ckpts = (tc.steps // tc.checkpoint_every if tc.checkpoint_every else 0) + 1
    parts = {"training": sum(n * trial["step_time"] for _, n, trial in trials),
             "logging": n_logs * costs["log"], "sample grids": n_samples * costs["sample"],
             "checkpoints": n_ckpts * costs["checkpoint"]}
    if len(trials) == 1:
        speed = f"{1 / last['step_time']:.2f} steps/s"
    else:
        speed = ", ".join(f"{1 / trial['step_time']:.2f} steps/s for the {n} {name} steps"
                          for name, n, trial in trials)
    warmup_s = sum(trial["warmup_s"] for _, _, trial in trials)
    kept = min(tc.keep_checkpoints, n_ckpts)
    disk = kept * ckpt_bytes + weights_bytes + n_samples * grid_bytes
    resolved = info.get("precision", tc.mixed_precision)   # what `auto` chose, if asked
    precision = {"no": "no (fp32)"}.get(resolved, resolved)
    if info.get("precision_reason") and info["precision_reason"] != "as asked":
        precision += f" ({info['precision_reason']})"
    memory = ("peak allocated by torch on the GPU" if getattr(device, "type", "") == "cuda"
              else "peak resident memory of the process")
    lines = [
        f"dry run of {info['pipeline']} on {info['data']} (nothing was kept)",
        f"device      {info.get('device', device)}, {processes} process"
        f"{'es' if processes > 1 else ''}, precision {precision}"
        f"{', compiled' if tc.compile else ''}, batch {tc.batch_size} per process",
        f"speed       {speed} ({steps} steps after {WARMUP_STEPS} warm-up steps"
        f"{' in each phase' if len(trials) > 1 else ''}; warm-up and start-up took "
        f"{warmup_s:.1f} s)",
        f"memory      peak {peak_mb:.0f} MB ({memory})",
        f"disk        {_mb(ckpt_bytes)} per checkpoint; {_mb(disk)} for the run's {kept} kept "
        f"checkpoint{'s' if kept > 1 else ''}, its weights and {n_samples} sample "
        f"{'grids' if n_samples > 1 else 'grid'}",
        f"ETA         {tc.steps} steps in about {_duration(sum(parts.values()))} ("
        + ", ".join(f"{k} {_duration(v)}" for k, v in parts.items() if v >= 0.5)
        + (", plus the final evaluation" if tc.final_eval else "") + ")",
    ]
    return "\n".join(lines)
