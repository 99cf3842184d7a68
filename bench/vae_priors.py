"""Where a VAE's samples come from, judged: one trained model, its samples drawn many ways.

    python bench/vae_priors.py [--variants vae cvae] [--data digits] [--set KEY=VALUE ...]
                               [--steps N] [--runs-dir DIR] [--out bench/results]

The autoencoder counterpart of bench/gan_quality.py. Each variant trains as `studio train
<variant>` would (with --set/--steps overrides: a sweep; a finished run of the same name in
--runs-dir is reused), then its samples are judged the way the final evaluation judges them
(pipelines/metrics: the judge's features, its per-stage statistics and the pixels' principal
components, each next to its floor) when drawn

- from N(0, I) at temperatures 1.0 and 1.2 (`--set prior=standard`), and
- from Gaussian mixtures of 1, 3, 10 and 20 components fitted to the training images'
  posterior means at the run's best weights (per class for a CVAE, which stops at 10):
  what `prior_components` sets for training (pipelines/autoencoders/latent_mixture.py).

A mixture that scores below 1x the floor on any view is closer to replaying the training
set's latents than to modelling them; docs/autoencoders.md has the table this printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/vae_priors.py`

from bench.gan_quality import train_and_judge  # noqa: E402
from pipelines.autoencoders.latent_mixture import LatentMixture  # noqa: E402
from pipelines.core.runs import list_runs  # noqa: E402
from pipelines.metrics import judge_samples  # noqa: E402
from pipelines.services.loading import load_for_sampling  # noqa: E402

COMPONENTS = (1, 3, 10, 20)
VIEWS = ("fd", "fd_layers", "fd_pixels")


def judged(data, samples, cache: Path) -> dict:
    r = judge_samples(data, samples.images, samples.labels, cache_dir=cache, seed=0)
    out = {view: round(r[view] / r[f"{view}_floor"], 2) for view in VIEWS}
    out.update(precision=round(r["precision"], 2), recall=round(r["recall"], 2))
    if "conditional_accuracy" in r:
        out["conditional_accuracy"] = round(r["conditional_accuracy"], 3)
    return out


def sampling_ways(run_path: Path, cache: Path) -> list[dict]:
    """The run's best weights, their samples drawn each way, judged."""
    pipe = load_for_sampling(run_path, device="cpu")
    data = pipe.data()
    n = min(1000, (len(data.train_images) + len(data.val_images)) // 2)
    rows = [{"draw": f"N(0, I) at temperature {t}",
             **judged(data, pipe.sample(n, seed=0, prior="standard", temperature=t), cache)}
            for t in (1.0, 1.2)]
    groups = max(1, pipe.num_classes)
    latent_dim = pipe.config.latent_dim
    for k in COMPONENTS:
        if pipe.num_classes and k > 10:
            continue
        pipe.net.prior = LatentMixture(groups, k, latent_dim)
        pipe.on_new_best(data)                       # fits the new mixture
        label = f"mixture of {k}" + (" per class" if pipe.num_classes else "")
        rows.append({"draw": label, **judged(data, pipe.sample(n, seed=0), cache)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["vae", "cvae"])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="A model option for every variant (repeatable): a sweep.")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--runs-dir", default=None, help="Keep the runs here (default: a "
                        "temporary folder, deleted after).")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    config = dict(item.split("=", 1) for item in args.set)   # parsed as `studio train --set`
    trainer = {"steps": args.steps} if args.steps else {}
    tag = "".join(f"-{k}{v}" for k, v in {**trainer, **config}.items())   # as gan_quality's
    tmp = None if args.runs_dir else tempfile.TemporaryDirectory()
    runs_dir = Path(args.runs_dir or tmp.name)
    results = []
    for variant in args.variants:
        train_and_judge(variant, args.data, runs_dir, config, trainer, tag=tag)
        run = next(r for r in list_runs(runs_dir)
                   if r["id"].endswith(f"-bench-{variant}-{args.data}{tag}"))
        # The judge the final evaluation trained, cached in the runs folder as the studio does.
        for row in sampling_ways(runs_dir / run["id"], runs_dir / ".judges"):
            row = {"variant": variant, "options": args.set, **row}
            print(json.dumps(row), flush=True)
            results.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"vae_priors_{args.data}_{'gpu' if torch.cuda.is_available() else 'cpu'}"
    (out / f"{name}.json").write_text(json.dumps(
        {"machine": {"platform": platform.platform(), "torch": torch.__version__},
         "rows": results}, indent=1) + "\n")
    lines = ["| variant | options | draw | FD | FD layers | FD pixels | precision | recall | "
             "conditional accuracy |", "| --- " * 9 + "|"]
    lines += [f"| {r['variant']} | {' '.join(r['options']) or 'defaults'} | {r['draw']} | "
              + " | ".join(f"{r[v]}x" for v in VIEWS)
              + f" | {r['precision']} | {r['recall']} | {r.get('conditional_accuracy', '')} |"
              for r in results]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    if tmp:
        tmp.cleanup()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
