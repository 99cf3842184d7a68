"""Where a training step's time goes: torch.profiler over a few steps of one pipeline, through
the real trainer, as a table of the kernels and ops that cost most (CUDA time on a GPU).

    python bench/gpu_profile.py [--pipeline transformer] [--gpt2-small] [--precision bf16]
                                [--compile] [--steps 10] [--out bench/results]

`--gpt2-small` is bench/gpu.py's MFU shape (12 layers, 12 heads, 768 wide, context 1024,
batch 16). The first 20 steps warm up (and compile) unprofiled. Writes
profile_<pipeline>.txt: the op table sorted by device time, and the step time with and
without the profiler's overhead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/gpu_profile.py`

from bench.gpu import GPT2_SMALL, DATA, options  # noqa: E402
from bench.run_all import train  # noqa: E402

WARM_UP = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="transformer")
    parser.add_argument("--gpt2-small", action="store_true")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    args.quick, gpu = False, torch.cuda.is_available()
    config, trainer = options(args.pipeline, "gpu", args)
    if args.gpt2_small:
        config, trainer = {**config, **GPT2_SMALL}, {**trainer, "batch_size": 16}
    trainer = {k: v for k, v in trainer.items()
               if k not in ("steps", "sample_every", "checkpoint_every", "log_every")}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    prof = profile(activities=activities)
    marks: dict[str, float] = {}

    def on_event(tr, kind, event):
        if kind != "step":
            return
        if tr.step == WARM_UP:
            torch.cuda.synchronize() if gpu else None
            marks["plain"] = time.perf_counter()
        elif tr.step == WARM_UP + args.steps:
            torch.cuda.synchronize() if gpu else None
            marks["plain"] = (time.perf_counter() - marks["plain"]) / args.steps
            prof.start()
            marks["profiled"] = time.perf_counter()
        elif tr.step == WARM_UP + 2 * args.steps:
            torch.cuda.synchronize() if gpu else None
            marks["profiled"] = (time.perf_counter() - marks["profiled"]) / args.steps
            prof.stop()
            tr.run.request_stop()

    with tempfile.TemporaryDirectory() as tmp:
        train(args.pipeline, DATA.get(args.pipeline, "digits"), config,
              {**trainer, "log_every": 1000, "mixed_precision": args.precision,
               "compile": args.compile, "cpu": not gpu}, Path(tmp), on_event, validate=False)
    sort = "self_cuda_time_total" if gpu else "self_cpu_time_total"
    text = (f"{args.pipeline} {'GPT-2 small ' if args.gpt2_small else ''}{args.precision}"
            f"{' + compile' if args.compile else ''} on "
            f"{torch.cuda.get_device_name(0) if gpu else 'CPU'}: {1000 * marks['plain']:.2f} ms "
            f"a step ({1000 * marks['profiled']:.2f} ms profiled)\n\n"
            + prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=60))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile_{args.pipeline}{'_gpt2' if args.gpt2_small else ''}.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
