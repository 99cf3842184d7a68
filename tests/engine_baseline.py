"""The losses of the first 200 steps of five default runs, recorded before the engine
rework (issue: one engine for the families to come) so that the rework can prove it changed
no training: tests/test_engine_baseline.py compares a fresh run with the recording.

    python tests/engine_baseline.py OUT.json        # what test_engine_baseline.py runs
    python tests/engine_baseline.py --record        # re-record tests/data/engine_baseline.json

Re-record only for a change that is meant to change training, and say which and why in the
commit. One torch thread: the float sums then do not depend on the machine's core count.
They do depend on the CPU's instruction sets (oneDNN picks AVX2, AVX-512 or AMX kernels,
whose sums round differently: the dcgan's second loss differed in its 7th digit between two
machines of the same kind), so the recording names the sets it was made with and the test
compares only on a CPU that has the same.
Validation tokens are cut to 64 for the transformer: validation reads no random numbers and
trains nothing, so the training losses are those of the default run, in a third of the time.
"""

import json
import sys
import tempfile
from pathlib import Path

import torch

RECORDING = Path(__file__).with_name("data") / "engine_baseline.json"
PIPELINES = {"dcgan": "digits", "vae": "digits", "ddpm-class": "digits",
             "transformer": "shakespeare", "lenet5": "digits"}
STEPS = 200
# The /proc/cpuinfo flags that change which float kernels torch's CPU build runs.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16",
                "amx_tile")


def cpu_kernels() -> str:
    """What decides the float kernels here: torch's CPU capability and the flags above."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags")[1].splitlines()[0]
                    .split())
    except (OSError, IndexError):
        flags = set()
    present = [f for f in KERNEL_FLAGS if f in flags]
    return " ".join([torch.backends.cpu.get_cpu_capability(), *present])


def losses() -> dict[str, list[dict[str, float]]]:
    from pipelines.core.run_setup import start_run
    from pipelines.core.training_run import train_run
    torch.set_num_threads(1)
    out = {}
    for name, data in PIPELINES.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = start_run(name, data, runs_dir=tmp,
                            config_overrides={"val_tokens": 64} if name == "transformer" else {},
                            trainer_overrides={"steps": STEPS, "log_every": 1, "sample_every": 0,
                                               "checkpoint_every": 0, "final_eval": False})
            train_run(run)
            out[name] = [{k: v for k, v in r.items() if k.startswith("loss")}
                         for r in run.metrics() if any(k.startswith("loss") for k in r)]
    return out


if __name__ == "__main__":
    target = RECORDING if sys.argv[1:] == ["--record"] else Path(sys.argv[1])
    target.write_text(json.dumps({"torch": torch.__version__, "cpu": cpu_kernels(),
                                  "steps": STEPS,
                                  "losses": losses()}, indent=1) + "\n")
