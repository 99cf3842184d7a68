"""Training speed of any pipelines through the real trainer, as a table and JSON.

    python bench/train_speed.py [--pipelines gan dcgan ...] [--data digits shapes]
                                [--precisions no bf16] [--seconds 20] [--out bench/results]

The default is every GAN variant on digits in fp32 (and bf16 on a GPU).

Each row trains a fresh run for about `--seconds` (then asks it to stop, as the UI would) and
reads steps per second from metrics.jsonl between the first and the last log line, so
start-up, the first (warm-up) steps and the final save are not counted. Ratios are against the first row, measured in the same process, so they
compare on any machine; absolute numbers are only for this one. On a machine with CUDA the GPU
rows run too.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from pipelines.core.run_setup import start_run

from pipelines.core.training_run import train_run

GAN_VARIANTS = ("dcgan", "gan", "cgan", "wgan", "wgan-gp", "lsgan", "sngan", "infogan")


def steps_per_second(run) -> float:
    logs = [r for r in run.metrics() if any(k.startswith("loss") for k in r)]
    first, last = logs[min(1, len(logs) - 2)], logs[-1]  # skip the first window: warm-up
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def measure(pipeline: str, data: str, precision: str, cpu: bool, seconds: float,
            runs_dir: Path) -> dict:
    run = start_run(pipeline, data, runs_dir=runs_dir, trainer_overrides={
        "steps": 1_000_000, "log_every": 5, "sample_every": 0, "checkpoint_every": 0,
        "mixed_precision": precision, "cpu": cpu})
    t0 = time.perf_counter()

    def stop_after_budget(kind, event):
        # at least three log lines: the warm-up window and two measured ones
        if kind == "log" and time.perf_counter() - t0 > seconds and event["step"] >= 15:
            run.request_stop()

    train_run(run, callbacks=(stop_after_budget,))
    info = run.info()
    speed = steps_per_second(run)
    # A WGAN's step is one critic update; its generator moves every n_critic steps.
    n_critic = info["config"].get("n_critic", 1)
    return {"pipeline": pipeline, "data": data, "device": info["device"],
            "precision": precision, "batch_size": info["trainer"]["batch_size"],
            "steps": info["step"], "steps_per_sec": round(speed, 2),
            "generator_steps_per_sec": round(speed / n_critic, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Time per row.")
    parser.add_argument("--pipelines", nargs="+", default=list(GAN_VARIANTS))
    parser.add_argument("--data", nargs="+", default=["digits"])
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="no, bf16, fp16 (default: no on the CPU; no and bf16 on a GPU)")
    parser.add_argument("--name", default="gan", help="Results file stem.")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    precisions = args.precisions or (["no", "bf16"] if gpu else ["no"])
    cases = [(p, d, prec, not gpu) for p in args.pipelines for d in args.data
             for prec in precisions]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline, data, precision, cpu in cases:
            rows.append(measure(pipeline, data, precision, cpu, args.seconds, Path(tmp)))
            print(rows[-1], flush=True)
    reference = rows[0]["steps_per_sec"]
    first = f"{rows[0]['pipeline']} {rows[0]['data']} {rows[0]['precision']}"
    for r in rows:
        r["ratio"] = round(r["steps_per_sec"] / reference, 2)
    machine = {"platform": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    header = (f"| pipeline | data | device | precision | batch | steps/s | generator steps/s "
              f"| ratio vs {first} |")
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['pipeline']} | {r['data']} | {r['device']} | {r['precision']} | "
              f"{r['batch_size']} | {r['steps_per_sec']} | {r['generator_steps_per_sec']} | "
              f"{r['ratio']} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "gpu" if gpu else "cpu"
    (out / f"{args.name}_train_speed_{tag}.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    (out / f"{args.name}_train_speed_{tag}.md").write_text(
        f"Training speed ({machine['platform']}, torch {machine['torch']}, "
        f"{machine['threads']} threads, GPU: {machine['gpu']}); steps/s counts every "
        f"optimisation step (critic steps for WGANs)\n\n{table}\n")


if __name__ == "__main__":
    main()
