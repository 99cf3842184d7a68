"""Quality against sampling steps for every diffusion scheduler, from one trained run.

    python bench/diffusion_samplers.py [--run RUN | --pipeline ddpm-class --data digits]
        [--runs-dir bench/runs] [--n 50] [--steps 10 25 50 250] [--schedulers ddpm ddim ...]
        [--guidance 3] [--train-speed-steps 60] [--out bench/results]

Without --run it trains the pipeline's defaults into --runs-dir (named bench-<pipeline>-<data>)
and reuses that run when it is already finished, the way bench/gan_quality.py does. Then, for
each scheduler and step count it draws --n images (seeds 0..n-1; text models use validation
captions) and judges them as `studio eval` does: Fréchet distance on the judge's features next
to its floor at the same n, and conditional accuracy (text: shape and colour
accuracy). Seconds per image include the judge's feature pass (a few per cent).

It also reports training steps per second (the run's own metrics, and a fresh --train-speed-steps
run) and sampling images per second at the UI's defaults. On a machine with CUDA a second table
runs on the GPU in bf16 autocast, marked with the device's name. Writes
bench/results/diffusion_samplers_<cpu|gpu>.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from pipelines.diffusion import SCHEDULERS
from pipelines.services.loading import load_for_sampling
from pipelines.core.runs import RunFolder, list_runs
from pipelines.core.run_setup import load_data_for, start_run
from pipelines.core.training_run import train_run


def trained_run(args) -> RunFolder:
    if args.run:
        return RunFolder.resolve(args.run, args.runs_dir)
    name = f"bench-{args.pipeline}-{args.data}"
    done = [r for r in list_runs(args.runs_dir) if r["id"].endswith(name) and r["status"] == "done"]
    if done:
        return RunFolder(Path(args.runs_dir) / done[0]["id"])
    run = start_run(args.pipeline, args.data, runs_dir=args.runs_dir, name=name,
                    trainer_overrides={"final_eval": False})
    train_run(run)
    return run


def steps_per_second(run: RunFolder) -> float:
    logs = [r for r in run.metrics() if "loss" in r]
    first, last = logs[min(1, len(logs) - 2)], logs[-1]   # skip the first window: warm-up
    return (last["step"] - first["step"]) / max(last["time"] - first["time"], 1e-9)


def fresh_training_speed(run: RunFolder, steps: int, gpu: bool) -> float:
    """Steps/s of a fresh run of the same pipeline, data and config (bf16 on a GPU)."""
    info = run.info()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = start_run(info["pipeline"], info["data"], config_overrides=info["config"],
                          runs_dir=tmp, trainer_overrides={
                              "steps": steps, "log_every": max(1, steps // 6),
                              "sample_every": 0, "checkpoint_every": 0, "final_eval": False,
                              "mixed_precision": "bf16" if gpu else "no", "cpu": not gpu})
        train_run(fresh)
        return steps_per_second(fresh)


def judge_row(pipe, data, cache_dir, n, scheduler, steps, guidance, gpu) -> dict:
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if gpu
                else contextlib.nullcontext())
    t0 = time.perf_counter()
    with autocast, torch.no_grad():
        result = pipe.evaluate(data, cache_dir, n=n, scheduler=scheduler, steps=steps,
                               guidance=guidance)
    seconds = time.perf_counter() - t0
    drawn = result["n"] + result.get("held_out_n", 0)     # images sampled for this row
    keep = ("fd", "fd_floor", "kid", "kid_floor", "conditional_accuracy", "shape_accuracy",
            "colour_accuracy", "held_out_shape_accuracy", "held_out_colour_accuracy",
            "judge_val_accuracy", "n")
    return {"scheduler": scheduler, "steps": steps, "guidance": guidance,
            **{k: result[k] for k in keep if k in result},
            "seconds_per_image": seconds / drawn}


def fmt(value, digits=3) -> str:
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def table(rows: list[dict], text: bool) -> str:
    acc = ("shape acc | colour acc | held-out shape | held-out colour" if text
           else "conditional accuracy")
    keys = (("shape_accuracy", "colour_accuracy", "held_out_shape_accuracy",
             "held_out_colour_accuracy") if text else ("conditional_accuracy",))
    lines = [f"| scheduler | steps | FD (floor) | {acc} | s / image |",
             "|" + " --- |" * (4 + len(keys))]
    for r in rows:
        lines.append(f"| {r['scheduler']} | {r['steps']} | {fmt(r.get('fd'))} "
                     f"({fmt(r.get('fd_floor'))}) | "
                     + " | ".join(fmt(r.get(k)) for k in keys)
                     + f" | {fmt(r['seconds_per_image'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="A trained diffusion run (id or path).")
    parser.add_argument("--pipeline", default="ddpm-class")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--runs-dir", default="bench/runs")
    parser.add_argument("--n", type=int, default=50, help="Images judged per row.")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 250])
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS), choices=SCHEDULERS)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--train-speed-steps", type=int, default=60)
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--tag", default="", help="Suffix of the result files, to keep the "
                        "tables of split runs (e.g. --steps 250 --n 20 --tag 250) side by side.")
    args = parser.parse_args()
    run = trained_run(args)
    info = run.info()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        gpu = device == "cuda"
        pipe = load_for_sampling(run.path, device=device)
        data = load_data_for(type(pipe), pipe.config, info["data"])
        cache_dir = run.path.parent / ".judges"
        from pipelines.metrics import get_judge
        get_judge(data, cache_dir)              # trained (or read) before any row is timed
        rows = []
        for scheduler in args.schedulers:
            for steps in args.steps:
                rows.append(judge_row(pipe, data, cache_dir, args.n, scheduler, steps,
                                      args.guidance, gpu))
                print(json.dumps(rows[-1]), flush=True)
        t0 = time.perf_counter()
        with (torch.autocast("cuda", dtype=torch.bfloat16) if gpu else contextlib.nullcontext()):
            pipe.sample(args.n, seed=0)                                  # the UI's defaults
        speed = {"sampling_images_per_sec_defaults": args.n / (time.perf_counter() - t0),
                 "training_steps_per_sec_run": steps_per_second(run) if not gpu else None,
                 "training_steps_per_sec_fresh": fresh_training_speed(
                     run, args.train_speed_steps, gpu)}
        name = (f"GPU {torch.cuda.get_device_name(0)}, bf16 autocast" if gpu
                else f"CPU ({torch.get_num_threads()} threads), fp32")
        machine = {"platform": platform.platform(), "torch": torch.__version__, "device": name}
        text = info["pipeline"] == "ddpm-text"
        md = (f"Samplers of `{info['pipeline']}` on {info['data']} (run {run.id}, step "
              f"{info['step']}), guidance {args.guidance}, n = {args.n} per row, {name}, "
              f"torch {torch.__version__}\n\n{table(rows, text)}\n\n"
              + "\n".join(f"- {k.replace('_', ' ')}: {fmt(v)}" for k, v in speed.items()) + "\n")
        print(md)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        tag = ("gpu" if gpu else "cpu") + (f"_{args.tag}" if args.tag else "")
        (out / f"diffusion_samplers_{tag}.json").write_text(json.dumps(
            {"machine": machine, "run": run.id, "pipeline": info["pipeline"],
             "data": info["data"], "step": info["step"], "n": args.n, "rows": rows,
             **speed}, indent=2) + "\n")
        (out / f"diffusion_samplers_{tag}.md").write_text(md)


if __name__ == "__main__":
    main()
