"""One trained image model's samples against three floors, in each of the judge's views.

    python bench/judge_floors.py RUN [RUN ...] [--runs-dir DIR] [--n 898] [--splits 5]

The floors compared, each against the same real halves B:

    halves    real half A against B (the studio's floor until session 16)
    copy      n training images drawn with replacement: what a model that had memorised its
              training set would draw (the studio's floor since session 17, there drawn by
              `training_copy` with its own seeds and averaged over 40 draws)
    subset    n distinct training images (shares more images with B than a copy does: the
              strictest)

Why (docs/gans.md, self-conditioning): A and B are complementary, so where B holds more of
some kind of image A holds fewer, and they differ by twice B's deviation from the whole set;
a model that learned the training set's make-up (most of the pool) differs from B by about
once. Models that match the data's make-up can then read below "real vs real".
Prints each view's distance as a multiple of each floor (the mean over `--splits` splits)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipelines.core.run_setup import load_data_for
from pipelines.core.runs import RunFolder
from pipelines.metrics import frechet_distance, get_judge, real_halves
from pipelines.metrics.image_quality import flat, pixel_pca
from pipelines.services.loading import load_for_sampling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--n", type=int, default=898, help="Samples (at most a real half).")
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    for ref in args.runs:
        run = RunFolder.resolve(ref, args.runs_dir)
        pipe = load_for_sampling(run.path, device="cpu")
        data = load_data_for(type(pipe), pipe.config, run.info()["data"])
        judge = get_judge(data, run.path.parent / ".judges")
        pca = pixel_pca(data)
        views = {"fd": judge.features, "fd_layers": judge.stage_statistics,
                 "fd_pixels": lambda x: pca.transform(flat(x))}
        samples = pipe.sample(args.n, seed=0).images
        train = data.train_images
        cells = []
        for name, view in views.items():
            fake = view(samples)
            model, halves, copy, subset = [], [], [], []
            for k in range(args.splits):
                a, b = real_halves(data, k)
                real_b = view(b[:args.n])
                rng = np.random.default_rng(100 + k)
                model.append(frechet_distance(fake, real_b))
                halves.append(frechet_distance(view(a[:args.n]), real_b))
                copy.append(frechet_distance(view(train[rng.integers(0, len(train), args.n)]),
                                             real_b))
                subset.append(frechet_distance(view(train[rng.permutation(len(train))[:args.n]]),
                                               real_b))
            m = np.mean(model)
            cells.append(f"{name}: halves {m / np.mean(halves):.2f}x copy "
                         f"{m / np.mean(copy):.2f}x subset {m / np.mean(subset):.2f}x")
        print(Path(run.path).name, " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
