"""The classifier leaderboard: accuracy on digits' validation split (the same 180 images every
family is measured on) for every classic model, MLP settings, each CNN and each row-reading
sequence classifier, with training time and parameter count, in one run.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/classifier_leaderboard.py          # full
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/classifier_leaderboard.py --smoke  # seconds

Each torch model trains with its registry defaults (its own step count) on one thread; each
classic model is fit with its defaults. Writes bench/results/classifiers_digits_cpu.json and
.md (the smoke mode writes ..._smoke.json / .md, which are not results). `--only a,b` runs a
subset; `--steps-scale 0.5` halves every torch model's steps (and its schedule).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLASSIC = ["logistic", "decision-tree", "random-forest", "svm-linear", "svm-rbf", "svm-poly"]
# (row label, pipeline, config overrides)
TORCH = [
    ("mlp relu", "mlp", {"activation": "relu"}),
    ("mlp sigmoid", "mlp", {"activation": "sigmoid"}),
    ("mlp relu sgd", "mlp", {"activation": "relu", "optimizer": "sgd", "lr": 0.05}),
    ("lenet5", "lenet5", {}),
    ("alexnet", "alexnet", {}),
    ("vgg", "vgg", {}),
    ("resnet", "resnet", {}),
    ("densenet", "densenet", {}),
    ("rnn-rows", "rnn-rows", {}),
    ("lstm-rows", "lstm-rows", {}),
    ("gru-rows", "gru-rows", {}),
    ("bilstm-rows", "bilstm-rows", {}),
]
SMOKE_STEPS = 6


def run_classic(name: str, runs_dir: Path, smoke: bool) -> dict:
    from pipelines.classic import fit_run
    overrides = {"n_estimators": 10} if smoke and name == "random-forest" else {}
    start = time.perf_counter()
    run = fit_run(name, "digits", config_overrides=overrides, runs_dir=runs_dir, name=name)
    seconds = time.perf_counter() - start              # includes the summary and plots
    info = run.info()
    return {"model": name, "pipeline": name, "family": "classic",
            "accuracy": info["eval"]["accuracy"], "macro_f1": info["eval"]["macro_f1"],
            "seconds": info["fit_seconds"], "wall_seconds": round(seconds, 2),
            "steps": None, "parameters": None, "config": overrides}


def run_torch(label: str, name: str, overrides: dict, runs_dir: Path, smoke: bool,
              scale: float) -> dict:
    from pipelines.registry import load_pipeline_class
    from pipelines.core.run_setup import start_run
    from pipelines.core.training_run import train_run
    cls = load_pipeline_class(name)
    steps = SMOKE_STEPS if smoke else max(1, round(cls.train_defaults["steps"] * scale))
    config = dict(overrides)
    if smoke or scale != 1:
        config["schedule_steps"] = steps
        config["warmup_steps"] = min(cls.Config().warmup_steps, steps // 2)
    run = start_run(name, "digits", config_overrides=config,
                    trainer_overrides={"steps": steps, "checkpoint_every": steps,
                                       "log_every": max(1, steps // 8)},
                    runs_dir=runs_dir, name=label.replace(" ", "-"))
    start = time.perf_counter()
    status = train_run(run)
    seconds = time.perf_counter() - start
    info = run.info()
    curve = [[r["step"], round(r["val/accuracy"], 4)] for r in run.metrics() if "val/accuracy" in r]
    return {"model": label, "pipeline": name, "family": "torch", "status": status,
            "accuracy": info["eval"]["accuracy"], "macro_f1": info["eval"]["macro_f1"],
            "seconds": info.get("elapsed_seconds"), "wall_seconds": round(seconds, 2),
            "steps": steps, "parameters": info["eval"]["parameters"], "config": config,
            "val_accuracy_by_step": curve}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# Classifiers on digits (validation split: 180 images)", "",
             f"{meta['when']}, {meta['machine']}, torch threads {meta['torch_threads']}; "
             f"total {meta['total_seconds']:.0f} s. Seconds: torch = the trainer's loop (with its "
             f"periodic validation, not imports or set-up); classic = the fit alone (its "
             f"summary and plots are in wall_seconds of the JSON).", "",
             "| model | family | accuracy | macro-F1 | steps | parameters | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["accuracy"]):
        lines.append(f"| {r['model']} | {r['family']} | {100 * r['accuracy']:.2f}% | "
                     f"{r['macro_f1']:.4f} | {r['steps'] or '-'} | "
                     f"{r['parameters'] or '-'} | {r['seconds']:.1f} |")
    best_cnn = max((r for r in rows if r["pipeline"] in
                    ("lenet5", "alexnet", "vgg", "resnet", "densenet")),
                   key=lambda r: r["accuracy"], default=None)
    rbf = next((r for r in rows if r["pipeline"] == "svm-rbf"), None)
    lines.append("")
    if best_cnn:
        lines.append(f"Best CNN: {best_cnn['model']} {100 * best_cnn['accuracy']:.2f}% "
                     f"(target >= 98.5%).")
    if rbf:
        lines.append(f"SVM (RBF): {100 * rbf['accuracy']:.2f}% (target >= 98%).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_STEPS} steps per torch "
                        "model, a 10-tree forest: checks the script, measures nothing")
    parser.add_argument("--only", default="", help="comma-separated row labels or pipelines")
    parser.add_argument("--steps-scale", type=float, default=1.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    import torch
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    wanted = lambda label, name: not only or label in only or name in only  # noqa: E731
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leaderboard-") as tmp:
        runs_dir = Path(tmp)
        for name in CLASSIC:
            if wanted(name, name):
                rows.append(run_classic(name, runs_dir, args.smoke))
                print(f"{name:<14} {100 * rows[-1]['accuracy']:.2f}%  {rows[-1]['seconds']:.1f} s",
                      flush=True)
        for label, name, overrides in TORCH:
            if wanted(label, name):
                rows.append(run_torch(label, name, overrides, runs_dir, args.smoke,
                                      args.steps_scale))
                r = rows[-1]
                print(f"{label:<14} {100 * r['accuracy']:.2f}%  {r['seconds']:.1f} s  "
                      f"{r['steps']} steps  {r['parameters']} params", flush=True)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} "
            f"{os.cpu_count()} cores", "torch_threads": torch.get_num_threads(),
            "total_seconds": time.perf_counter() - start, "smoke": args.smoke,
            "steps_scale": args.steps_scale}
    stem = "classifiers_digits_cpu" + ("_smoke" if args.smoke else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(rows, meta))
    print(f"wrote {out / stem}.json and .md ({meta['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
