"""DCGAN training speed through the real trainer, as a table and JSON.

    python bench/train_speed.py [--seconds 20] [--out bench/results]

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

from pipelines.trainer import start_run, train_run


def steps_per_second(run) -> float:
    logs = [r for r in run.metrics() if "loss_d" in r]
    first, last = logs[min(1, len(logs) - 2)], logs[-1]  # skip the first window: warm-up
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def measure(data: str, precision: str, cpu: bool, seconds: float, runs_dir: Path) -> dict:
    run = start_run("dcgan", data, runs_dir=runs_dir, trainer_overrides={
        "steps": 1_000_000, "log_every": 5, "sample_every": 0, "checkpoint_every": 0,
        "mixed_precision": precision, "cpu": cpu})
    t0 = time.perf_counter()

    def stop_after_budget(kind, event):
        # at least three log lines: the warm-up window and two measured ones
        if kind == "log" and time.perf_counter() - t0 > seconds and event["step"] >= 15:
            run.request_stop()

    train_run(run, callbacks=(stop_after_budget,))
    info = run.info()
    return {"data": data, "device": info["device"], "precision": precision,
            "batch_size": info["trainer"]["batch_size"], "steps": info["step"],
            "steps_per_sec": round(steps_per_second(run), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Time per row.")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    cases = [("digits", "no", True), ("digits", "bf16", True),
             ("shapes", "no", True), ("shapes", "bf16", True)]
    if torch.cuda.is_available():
        cases += [("digits", "no", False), ("digits", "bf16", False),
                  ("shapes", "no", False), ("shapes", "bf16", False)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data, precision, cpu in cases:
            rows.append(measure(data, precision, cpu, args.seconds, Path(tmp)))
            print(rows[-1], flush=True)
    reference = rows[0]["steps_per_sec"]
    for r in rows:
        r["ratio_vs_cpu_fp32_digits"] = round(r["steps_per_sec"] / reference, 2)
    machine = {"platform": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    header = "| data | device | precision | batch | steps/s | ratio vs CPU fp32 digits |"
    lines = [header, "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['data']} | {r['device']} | {r['precision']} | {r['batch_size']} | "
              f"{r['steps_per_sec']} | {r['ratio_vs_cpu_fp32_digits']} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "gpu" if torch.cuda.is_available() else "cpu"
    (out / f"dcgan_train_speed_{tag}.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    (out / f"dcgan_train_speed_{tag}.md").write_text(
        f"DCGAN training speed ({machine['platform']}, torch {machine['torch']}, "
        f"{machine['threads']} threads, GPU: {machine['gpu']})\n\n{table}\n")


if __name__ == "__main__":
    main()
