"""Every family's benchmark in one run: training speed, transformer MFU, time to quality.

    python bench/run_all.py [--quick] [--families gan vae ddpm transformer lenet5]
                            [--seconds 20] [--quality-seconds 120] [--set ddpm:width=32 ...]
                            [--no-speed | --no-quality] [--tag NAME] [--out bench/results]

One representative pipeline per family (dcgan, vae, ddpm, transformer, lenet5), each through
the real trainer with its own defaults:

- speed: steps/s and training samples/s (examples per second: steps/s x batch x processes),
  read from metrics.jsonl after the first, warm-up, log window (bench/train_speed.py's way).
  CPU: fp32. CUDA: fp32 (TF32 matmuls), bf16, and bf16 + torch.compile.
- MFU of the transformer: model FLOPs per step (nanoGPT's 6N + 12 L T d per token, N the
  parameter count) x steps/s, over a matmul ceiling measured in this run on this device: a
  large square matmul in the row's dtype (fp32 or bf16), timed.
- time to quality: train until the family's quality threshold is reached (Fréchet distance on
  the studio's judge features for the image generators, validation loss in nats per token for
  the transformer, validation accuracy for LeNet-5), checking every `--check-every` steps; the
  seconds are training seconds (the checks are not counted), or "not reached" with the best.

Writes bench/results/run_all_<device>.json and .md. `--quick` is a smoke test (tiny models,
a few steps, seconds in all); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/run_all.py`

from bench.train_speed import steps_per_second  # noqa: E402
from pipelines.core import trainer_state  # noqa: E402
from pipelines.core.config import parse_set_args  # noqa: E402
from pipelines.core.run_setup import start_run  # noqa: E402
from pipelines.core.trainer import Trainer  # noqa: E402

# family -> (pipeline, data, quality key, threshold, lower is better)
FAMILIES = {
    "gan": ("dcgan", "digits", "fd", 10.0, True),
    "vae": ("vae", "digits", "fd", 15.0, True),
    "ddpm": ("ddpm", "digits", "fd", 15.0, True),
    "transformer": ("transformer", "shakespeare", "val/loss", 2.2, True),
    "lenet5": ("lenet5", "digits", "val/accuracy", 0.95, False),
}
# --quick: the smallest models that still run every code path
QUICK = {"dcgan": {"width": 8, "z_dim": 8}, "vae": {"hidden": 32, "depth": 1, "latent_dim": 4},
         "ddpm": {"width": 8, "image_size": 8, "num_train_timesteps": 50}, "transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16,
                                                 "context": 16, "val_tokens": 256},
         "lenet5": {}}


def matmul_ceiling(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    """FLOP/s of an n x n x n matmul in `dtype` on `device`, best of `repeats` timed runs."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * n**3 / best


def transformer_flops_per_step(info: dict, n_params: int) -> float:
    """nanoGPT's estimate: 6N per token (forward and backward through the weights) plus the
    attention scores, 12 L T d per token; tokens per step = batch x context x processes."""
    c, t = info["config"], info["trainer"]
    per_token = 6 * n_params + 12 * c["n_layer"] * c["context"] * c["n_embd"]
    return per_token * t["batch_size"] * c["context"] * info.get("processes", 1)


def train(pipeline: str, data: str, config: dict, trainer: dict, runs_dir: Path,
          on_log=None, validate: bool = True) -> tuple[Trainer, object]:
    """A fresh run of `pipeline` through the real trainer; `on_log(trainer, kind, event)` sees
    every event. `validate=False` leaves out the validation that each log line does, for
    rows that time the training steps alone (it runs outside autocast, so it would blur an
    fp32-vs-bf16 comparison, and at a short log interval it would dominate)."""
    run = start_run(pipeline, data, config_overrides=config, runs_dir=runs_dir,
                    trainer_overrides={"steps": 1_000_000, "sample_every": 0,
                                       "checkpoint_every": 0, "final_eval": False, **trainer})
    holder: list[Trainer] = []
    t = Trainer(run, callbacks=(lambda kind, event: on_log(holder[0], kind, event),)
                if on_log else ())
    holder.append(t)
    if not validate:
        t.validate = dict   # an empty dict of validation numbers
    t.train(resume=False)
    return t, run


def measure_speed(family: str, precision: str, compile_: bool, args, runs_dir: Path) -> dict:
    pipeline, data = FAMILIES[family][:2]
    t0 = time.perf_counter()

    def stop_after_budget(trainer, kind, event):
        # the warm-up window (compile happens there) and at least two measured ones
        if kind == "log" and event["step"] >= 3 * args.log_every and \
                time.perf_counter() - t0 > args.seconds:
            trainer.run.request_stop()

    trainer, run = train(pipeline, data, args.config[pipeline],
                         {"log_every": args.log_every, "mixed_precision": precision,
                          "compile": compile_, "cpu": not args.gpu, **args.trainer},
                         runs_dir, stop_after_budget)
    info = run.info()
    speed = steps_per_second(run)
    batch = info["trainer"]["batch_size"] * info["processes"]
    row = {"family": family, "pipeline": pipeline, "data": data, "device": info["device"],
           "precision": precision, "compile": compile_, "batch": batch,
           "steps_per_sec": round(speed, 3), "samples_per_sec": round(speed * batch, 1),
           "peak_memory_mb": info.get("peak_memory_mb")}
    if pipeline == "transformer":
        n_params = sum(p.numel() for m in trainer.pipeline.modules.values()
                       for p in m.parameters())
        flops = transformer_flops_per_step(info, n_params) * speed
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        ceiling = args.ceilings.setdefault(str(dtype), matmul_ceiling(
            trainer.accelerator.device, dtype, args.matmul_n, args.matmul_repeats))
        row.update(parameters=n_params, model_tflops=round(flops / 1e12, 4),
                   ceiling_tflops=round(ceiling / 1e12, 3), mfu=round(flops / ceiling, 4))
    return row


def measure_quality(family: str, precision: str, args, runs_dir: Path) -> dict:
    pipeline, data, key, threshold, lower = FAMILIES[family]
    state = {"best": None, "reached": None, "checking": 0.0}
    t0 = time.perf_counter()

    def check(trainer, kind, event):
        if kind != "log" or event["step"] % args.check_every:
            return
        c0 = time.perf_counter()
        value = event["metrics"].get(key) if key.startswith("val/") else fd(trainer, args)
        state["checking"] += time.perf_counter() - c0
        seconds = time.perf_counter() - t0 - state["checking"]
        if value is not None and (state["best"] is None or
                                  (value < state["best"] if lower else value > state["best"])):
            state["best"] = value
        done = value is not None and (value <= threshold if lower else value >= threshold)
        if done and state["reached"] is None:
            state["reached"] = {"step": event["step"], "seconds": round(seconds, 1)}
        if done or seconds > args.quality_seconds:
            trainer.run.request_stop()

    train(pipeline, data, args.config[pipeline],
          {"log_every": args.check_every, "mixed_precision": precision, "cpu": not args.gpu,
           **args.trainer}, runs_dir, check)
    reached = state["reached"]
    return {"family": family, "pipeline": pipeline, "precision": precision, "metric": key,
            "threshold": threshold, "best": None if state["best"] is None else
            round(state["best"], 4), "reached_step": reached and reached["step"],
            "reached_seconds": reached and reached["seconds"]}


@torch.no_grad()
def judged(trainer, args) -> dict:
    """The judge's numbers (fd, fd_floor, ...) for `args.fd_samples` samples (sampling
    weights, fixed seed); the judge is trained once per data set and cached."""
    from pipelines.metrics import judge_samples
    with trainer_state.sampling_weights(trainer):
        samples = trainer.pipeline.sample(args.fd_samples, seed=0)
    return judge_samples(trainer.data, samples.images, cache_dir=args.judges)


def fd(trainer, args) -> float:
    """Fréchet distance of `args.fd_samples` samples on the judge's features."""
    return judged(trainer, args)["fd"]


def table(rows: list[dict], quality: list[dict], machine: dict) -> str:
    lines = [f"Benchmarks on {machine['device_name']} ({machine['platform']}, torch "
             f"{machine['torch']}, {machine['threads']} CPU threads){' - QUICK SMOKE RUN, numbers mean nothing' if machine['quick'] else ''}",
             "", "| family | pipeline | precision | compile | batch | steps/s | samples/s | "
             "peak MB | MFU (ceiling TFLOP/s) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}% ({r['ceiling_tflops']})" if "mfu" in r else ""
        lines.append(f"| {r['family']} | {r['pipeline']} | {r['precision']} | "
                     f"{'yes' if r['compile'] else 'no'} | {r['batch']} | {r['steps_per_sec']} | "
                     f"{r['samples_per_sec']} | {r['peak_memory_mb']} | {mfu} |")
    lines += ["", "| family | precision | quality | threshold | reached at step | training "
              "seconds | best |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for q in quality:
        lines.append(f"| {q['family']} | {q['precision']} | {q['metric']} | {q['threshold']} | "
                     f"{q['reached_step'] or 'not reached'} | {q['reached_seconds'] or ''} | "
                     f"{q['best']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seconds", type=float, default=20.0, help="Time per speed row.")
    parser.add_argument("--quality-seconds", type=float, default=120.0,
                        help="Training seconds per family before time to quality gives up.")
    parser.add_argument("--check-every", type=int, default=250, help="Steps between checks.")
    parser.add_argument("--fd-samples", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], metavar="PIPELINE:KEY=VALUE",
                        help="A config option of one pipeline, e.g. transformer:n_embd=768.")
    parser.add_argument("--batch-size", type=int, default=None, help="For every pipeline.")
    parser.add_argument("--no-quality", action="store_true", help="Speed rows only.")
    parser.add_argument("--no-speed", action="store_true", help="Time to quality only.")
    parser.add_argument("--tag", default="", help="Added to the results file names, so that "
                        "runs split over several calls keep each other's files.")
    parser.add_argument("--quick", action="store_true", help="A smoke run: tiny models.")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    args.gpu = torch.cuda.is_available()
    args.config = {FAMILIES[f][0]: dict(QUICK[FAMILIES[f][0]]) if args.quick else {}
                   for f in FAMILIES}
    for item in args.set:
        pipeline, _, pair = item.partition(":")
        args.config.setdefault(pipeline, {}).update(parse_set_args([pair]))
    args.trainer = {"batch_size": args.batch_size} if args.batch_size else {}
    args.log_every, args.matmul_n, args.matmul_repeats = 5, 4096 if args.gpu else 1024, 3
    if args.quick:
        args.seconds, args.quality_seconds, args.check_every, args.fd_samples = 0, 0, 4, 64
        args.log_every, args.matmul_n, args.matmul_repeats = 2, 256, 1
        args.trainer = {"batch_size": 8, **args.trainer}
    args.ceilings = {}
    variants = [("bf16", False), ("bf16", True), ("no", False)] if args.gpu else [("no", False)]
    variants.sort(key=lambda v: (v[0] != "no", v[1]))  # fp32 first: the reference row
    rows, quality = [], []
    with tempfile.TemporaryDirectory() as tmp:
        args.judges = Path(tmp) / ".judges"
        for family in args.families:
            for precision, compile_ in [] if args.no_speed else variants:
                rows.append(measure_speed(family, precision, compile_, args, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
            if not args.no_quality:
                for precision in ("no", "bf16") if args.gpu else ("no",):
                    quality.append(measure_quality(family, precision, args, Path(tmp)))
                    print(json.dumps(quality[-1]), flush=True)
    machine = {"platform": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "quick": args.quick,
               "device_name": torch.cuda.get_device_name(0) if args.gpu else "CPU"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = (f"run_all_{'gpu' if args.gpu else 'cpu'}{'_quick' if args.quick else ''}"
            f"{'_' + args.tag if args.tag else ''}")
    (out / f"{stem}.json").write_text(json.dumps(
        {"machine": machine, "speed": rows, "quality": quality,
         "matmul_ceiling_tflops": {k: round(v / 1e12, 3) for k, v in args.ceilings.items()}},
        indent=2) + "\n")
    (out / f"{stem}.md").write_text(table(rows, quality, machine))
    print(table(rows, quality, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
