"""Every GAN variant trained with its defaults, judged the same way, in one table.

    python bench/gan_quality.py [--data digits] [--variants gan dcgan ...] [--runs-dir DIR]
                                [--out bench/results] [--docs docs] [--name gan_quality]

The other families that draw from noise are judged the same way by naming them:
`--variants vae cvae ddpm ddpm-class --name sampler_quality` (their grids go to docs/gans/
too, named by pipeline).

Each variant trains exactly as `studio train <variant> --data digits` would (its own default
steps and options), and is judged at the end by the trainer's evaluation: Fréchet distance
and KID on the studio's classifier features, each next to its floor, k-NN
precision and recall, and conditional accuracy for class-conditional models (InfoGAN's
categories are matched to classes first). Writes JSON, a markdown table and each variant's
final sample grid; wall time is the trainer's own (start-up and evaluation excluded).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
from pathlib import Path

import torch

from pipelines.core.runs import RunFolder, list_runs
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from pipelines.services.evaluation import evaluate_run

VARIANTS = ("gan", "dcgan", "cgan", "wgan", "wgan-gp", "lsgan", "sngan", "infogan", "stylegan",
            "biggan", "lapgan")


def fmt(value, digits=3) -> str:
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def train_and_judge(variant: str, data: str, runs_dir: Path, config: dict | None = None,
                    trainer: dict | None = None, tag: str = "") -> tuple[dict, Path]:
    """Train the variant (or reuse its finished run in runs_dir, so an interrupted benchmark
    picks up where it stopped) and read back its judged numbers. `config` and `trainer`
    override its defaults (a sweep); `tag` names such a run apart."""
    name = f"bench-{variant}-{data}{tag}"
    done = [r for r in list_runs(runs_dir) if r["id"].endswith(f"-{name}")
            and r["status"] == "done"]
    if done:           # judged again: the judge may have changed since it was trained
        run = RunFolder(runs_dir / done[0]["id"])
        evaluate_run(run.path)
    else:
        run = start_run(variant, data, runs_dir=runs_dir, name=name,
                        config_overrides=config or {}, trainer_overrides=trainer or {})
        train_run(run)
    info = run.info()
    losses = [r for r in run.metrics() if "loss_d" in r]
    last = losses[-1] if losses else {}
    warnings = sorted({r["warning"].split(":")[0] for r in run.metrics() if r.get("warning")})
    row = {"variant": variant, "data": data, "steps": info["step"],
           "minutes": round(info["elapsed_seconds"] / 60, 2), **info.get("eval", {}),
           "final_diversity": last.get("diversity"), "warnings_seen": warnings}
    return row, run.sample_files()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--runs-dir", default=None, help="Keep the runs here (default: a "
                        "temporary folder, deleted after).")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--docs", default="docs", help="Where the sample grids go.")
    parser.add_argument("--name", default="gan_quality", help="The result files' name.")
    parser.add_argument("--steps", type=int, default=None, help="A sweep: train this many "
                        "steps instead of each variant's default.")
    parser.add_argument("--seed", type=int, default=None, help="Train with this seed instead "
                        "of the default's 0 (how far a number moves from run to run).")
    parser.add_argument("--batch-size", type=int, default=None, help="A sweep: train with "
                        "this batch size instead of the variant's default.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="A sweep: a model option for every variant (repeatable).")
    args = parser.parse_args()
    tmp = None if args.runs_dir else tempfile.TemporaryDirectory()
    runs_dir = Path(args.runs_dir or tmp.name)
    grids = Path(args.docs) / "gans"
    grids.mkdir(parents=True, exist_ok=True)
    rows = []
    config = dict(item.split("=", 1) for item in args.set)       # the same for every variant
    trainer = {**({"steps": args.steps} if args.steps else {}),
               **({"seed": args.seed} if args.seed is not None else {}),
               **({"batch_size": args.batch_size} if args.batch_size else {})}
    tag = "".join(f"-{k}{v}" for k, v in {**trainer, **config}.items())
    for variant in args.variants:
        row, grid = train_and_judge(variant, args.data, runs_dir, config, trainer, tag)
        shutil.copyfile(grid, grids / f"{variant}-{args.data}.png")
        rows.append(row)
        print(json.dumps(row), flush=True)
    device = "GPU " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
        f"CPU ({torch.get_num_threads()} threads)"
    header = ("| variant | steps | minutes | FD (floor) | FD layers (floor) | FD pixels (floor) "
              "| KID (floor) | precision (floor) | recall (floor) | conditional accuracy "
              "| judge accuracy on real val | warnings seen |")
    lines = [header, "|" + " --- |" * 12]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['steps']} | {r['minutes']} | {fmt(r.get('fd'))} "
            f"({fmt(r.get('fd_floor'))}) | {fmt(r.get('fd_layers'))} "
            f"({fmt(r.get('fd_layers_floor'))}) | {fmt(r.get('fd_pixels'))} "
            f"({fmt(r.get('fd_pixels_floor'))}) | {fmt(r.get('kid'))} ({fmt(r.get('kid_floor'))}) | "
            f"{fmt(r.get('precision'), 2)} ({fmt(r.get('precision_floor'), 2)}) | "
            f"{fmt(r.get('recall'), 2)} ({fmt(r.get('recall_floor'), 2)}) | "
            f"{fmt(r.get('conditional_accuracy'), 3)} | "
            f"{fmt(r.get('judge_val_accuracy'), 3)} | {', '.join(r['warnings_seen']) or '-'} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "gpu" if torch.cuda.is_available() else "cpu"
    machine = {"platform": platform.platform(), "torch": torch.__version__, "device": device}
    (out / f"{args.name}_{args.data}_{tag}.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    changed = [*(f"--set {item}" for item in args.set),
               *(f"--{k.replace('_', '-')} {v}" for k, v in trainer.items())]
    settings = ", ".join(changed) if changed else "defaults"   # a sweep says what it changed
    (out / f"{args.name}_{args.data}_{tag}.md").write_text(
        f"{', '.join(args.variants)} on {args.data}, {settings}, {device}, "
        f"torch {machine['torch']}\n\n{table}\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
