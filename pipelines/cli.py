"""`studio`: train, resume, sample, export and list runs from the command line.

    studio train dcgan --data digits --steps 3000 --set lr_g=1e-4
    studio train transformer --data shakespeare --preset gpu     (quick-look, default, long, gpu)
    studio resume <run> [--steps N]
    studio sample <run | model.safetensors> --n 64 --seed 0 --out grid.png   (or .npz)
    studio sample <run> --interpolate 3 17 --frames 12 --out walk.gif         (or .png)
    studio tool <run> [NAME] [--input a.png ...] [--set k=v] [--out result.png]
    studio eval <run> [--step N]     Fréchet distance, KID, ... each against its floor
    studio eval <run> --data text:FILE   a text model's loss and bits per character on a file
    studio classify --input digit.png [--data digits|all]   every classifier's answer
    studio runs
    studio export <run>
    studio inspect <pipeline | run> [--set k=v]   every layer: shapes, parameters, multiply-adds
    studio layers "conv 16 k=3 p=1; dense 10" --input 3x32x32   the layer calculator
    studio list                      pipelines, their options, controls and tools; data sets

The parser is cli_parser.py; the model-facing commands (sample, chat, tool, classify, inspect,
layers, list) are cli_models.py.

The trainer flags (--steps, --batch-size, --mixed-precision, ...) are generated from
TrainerConfig, and `--set key=value` takes any pipeline (or trainer) option, so a new option
needs no CLI code. Errors the user can fix print one line and exit with code 2.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any

from .core.config import TrainerConfig, apply_overrides, describe
from .core.errors import StudioError
from .core.liveness import TrainerLock
from .core.presets import normalise_name
from .registry import get_entry
from .cli_models import (cmd_chat, cmd_classify, cmd_inspect, cmd_layers, cmd_list,
                         cmd_sample, cmd_tool)
from .cli_parser import build_parser, split_overrides, with_preset
from .core.runs import RunFolder, list_runs, runs_dir_from_env


class _Progress:
    """A tqdm bar fed by the trainer's events: steps per second, ETA, the latest losses."""

    def __init__(self, quiet: bool):
        # Under accelerate launch only the main process draws the bar.
        self.quiet = quiet or os.environ.get("RANK", "0") != "0"
        self.bar, self.last = None, 0

    def __call__(self, kind: str, event: dict[str, Any]) -> None:
        if self.quiet:
            if kind == "end" and event.get("message"):
                print(event["message"], file=sys.stderr)
            return
        from tqdm import tqdm
        if kind == "start":
            self.bar = tqdm(total=event["total"], initial=event["step"], unit="step",
                            dynamic_ncols=True, file=sys.stderr)
            self.last = event["step"]
        elif kind == "log" and self.bar is not None:
            self.bar.update(event["step"] - self.last)
            self.last = event["step"]
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in event["metrics"].items()
                                  if k.startswith("loss")}, refresh=False)
        elif kind == "end" and self.bar is not None:
            self.bar.close()
            if event.get("message"):
                print(event["message"], file=sys.stderr)


def cmd_train(args) -> int:
    from .core.run_setup import start_run
    entry = get_entry(args.pipeline)
    config, trainer = with_preset(args.pipeline, args.preset,
                                   *split_overrides(args.pipeline, args), data=args.data)
    if entry.trains == "fit":  # scikit-learn models are fit in one go, not trained by steps
        return _fit_classic(args, config, trainer)
    if args.dry_run:
        from .services.dryrun import dry_run
        _print_main(dry_run(args.pipeline, args.data, config, trainer, steps=args.dry_run_steps,
                            create_on_main=lambda create: _on_main_process(create, trainer)))
        return 0
    run = _on_main_process(lambda: start_run(
        args.pipeline, args.data, config_overrides=config, trainer_overrides=trainer,
        runs_dir=args.runs_dir, name=args.name,
        preset=normalise_name(args.preset) if args.preset else None), trainer)
    _print_main(f"run folder: {run.path}")
    if args.queue:
        return 0
    return _train(run, resume=False, steps=None, quiet=args.quiet)


def _fit_classic(args, config: dict, trainer: dict) -> int:
    from .classic import fit_run
    if trainer:
        print(f"(trainer options {', '.join(sorted(trainer))} do not apply to {args.pipeline}: "
              f"it is fit in one go)", file=sys.stderr)
    run = fit_run(args.pipeline, args.data, config_overrides=config, runs_dir=args.runs_dir,
                  name=args.name)
    info = run.info()
    print(f"run folder: {run.path}")
    print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in info["eval"].items()))
    print(f"done: summary in {run.path / 'summary.md'}, plots in {run.path / 'plots'}")
    return 0


def _on_main_process(create_run, trainer: dict[str, Any]) -> RunFolder:
    """Under `accelerate launch` every process runs this CLI: the main one creates the run
    folder and the others are told its path (or the error, so that no process hangs)."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from .core.hardware import use_cpu
    cpu = apply_overrides(TrainerConfig(), {"cpu": trainer.get("cpu", False)}).cpu
    state = PartialState(cpu=use_cpu(cpu))  # the same backend the trainer's Accelerator takes
    if state.num_processes == 1:
        return create_run()
    message = [None, None]
    if state.is_main_process:
        try:
            message = [str(create_run().path), None]
        except StudioError as e:
            message = [None, str(e)]
    broadcast_object_list(message)
    if message[1] is not None:
        raise StudioError(message[1])
    return RunFolder(message[0])


def _print_main(text: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(text, flush=True)


def cmd_resume(args) -> int:
    run = RunFolder.resolve(args.run, args.runs_dir)
    info = run.info()
    # The run's trainer lock, taken before torch is even imported, so a second trainer of
    # the run is refused in a moment; train_run keeps holding it (pipelines/core/liveness.py).
    lock = TrainerLock(run.path)
    if os.environ.get("RANK", "0") == "0" and not lock.acquire():
        raise StudioError(run.busy_message())
    try:
        step = info.get("step", 0)
        if info.get("status") == "done" and (args.steps is None or args.steps <= step):
            raise StudioError(f"run {run.id} is already done at step {step}; pass --steps "
                              f"with a larger total to train it further")
        overrides = {s.name: getattr(args, s.name) for s in describe(TrainerConfig)
                     if s.name != "steps" and getattr(args, s.name, None) is not None}
        _print_main(f"run folder: {run.path}")
        return _train(run, resume=True, steps=args.steps, quiet=args.quiet,
                      overrides=overrides, lock=lock)
    finally:
        lock.release()


def _train(run: RunFolder, resume: bool, steps: int | None, quiet: bool,
           overrides: dict[str, Any] | None = None, lock: Any = None) -> int:
    from .core.trainer import TrainingFailed
    from .core.training_run import train_run
    try:
        status = train_run(run, resume=resume, total_steps=steps, trainer_overrides=overrides,
                           callbacks=(_Progress(quiet),), lock=lock)
    except TrainingFailed as e:
        print(f"studio: training failed: {e}", file=sys.stderr)
        return 1
    except OSError:   # (a full disk: fixable, so 2 like every error you can fix) the run
        # says why, what is kept and how to go on (training_run.py)
        print(f"studio: error: {run.info().get('message')}", file=sys.stderr)
        return 2
    _print_main(f"{status}: {run.path} at step {run.info().get('step')}")
    return 0


def cmd_eval(args) -> int:
    from .services.evaluation import evaluate_run
    results = evaluate_run(args.run, args.runs_dir, step=args.step, data=args.data)
    for key, value in results.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_runs(args) -> int:
    rows = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {runs_dir_from_env(args.runs_dir)}")
        return 0
    table = [("id", "pipeline", "data", "status", "step", "device", "precision", "procs",
              "peak mem", "last loss")]
    for r in rows:
        loss = " ".join(f"{k}={v:.3g}" for k, v in r["last_loss"].items())
        step = f"{r['step']}/{r['total_steps']}" if r.get("total_steps") else str(r["step"])
        peak = f"{r['peak_memory_mb']:.0f} MB" if r.get("peak_memory_mb") is not None else "-"
        table.append((r["id"], r["pipeline"], r["data"], r["status"], step,
                      r.get("device") or "-", r.get("precision") or "-",
                      r.get("processes") or "-", peak, loss))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    for r in rows:   # what is wrong with a damaged run, which the table cannot say
        if r["status"] == "damaged":
            print(f"{r['id']}: {r['message']}")
    return 0


def cmd_export(args) -> int:
    from .services.export import export_run
    dest = export_run(RunFolder.resolve(args.run, args.runs_dir))
    print(f"exported to {dest}")
    return 0


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "sample": cmd_sample, "chat": cmd_chat,
            "tool": cmd_tool,
            "eval": cmd_eval, "runs": cmd_runs, "export": cmd_export, "list": cmd_list,
            "classify": cmd_classify, "inspect": cmd_inspect, "layers": cmd_layers}


def run() -> int:
    """The `studio` command: main, with library warnings sent to the runs folder's debug log
    (core/debug_log.py; tests call main and keep seeing them)."""
    from .core.debug_log import route_library_warnings
    args, runs_dir = sys.argv[1:], None
    for i, arg in enumerate(args):          # the global --runs-dir, before argparse runs
        if arg == "--runs-dir" and i + 1 < len(args):
            runs_dir = args[i + 1]
        elif arg.startswith("--runs-dir="):
            runs_dir = arg.partition("=")[2]
    route_library_warnings(runs_dir_from_env(runs_dir))
    try:
        return main()
    finally:
        close_process_group()


def close_process_group() -> None:
    """Under `accelerate launch` every process joins one process group. torch asks for it to be
    destroyed before the program exits; left to the interpreter's exit, a process that had
    finished its work was once seen to abort there ("terminate called without an active
    exception", SIGABRT), failing the whole launch. torch is only looked up, never imported."""
    torch = sys.modules.get("torch")
    distributed = getattr(torch, "distributed", None)
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed its one line (or --help)
        return int(e.code or 0)
    try:
        return COMMANDS[args.command](args)
    except StudioError as e:
        print(f"studio: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # a full disk, a file size limit, a folder that cannot be written
        full = e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        print(f"studio: error: {e}" + (" (is the disk full, or a file size limit reached?)"
                                        if full else ""), file=sys.stderr)
        return 2
