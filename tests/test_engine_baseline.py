"""Default runs train exactly as they did before the engine rework: the losses of the first
200 steps of dcgan, vae, ddpm-class, transformer and lenet5 (tests/engine_baseline.py) equal
the recording in tests/data/engine_baseline.json, bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RECORDED = json.loads((HERE / "data" / "engine_baseline.json").read_text())


def test_default_runs_train_exactly_as_recorded(tmp_path):
    import torch
    if torch.__version__ != RECORDED["torch"]:
        pytest.skip(f"recorded with torch {RECORDED['torch']}, not {torch.__version__}: float "
                    f"results may differ between torch versions")
    from engine_baseline import cpu_kernels
    if cpu_kernels() != RECORDED.get("cpu"):
        pytest.skip(f"recorded on a CPU with {RECORDED.get('cpu', 'unrecorded')} kernels, "
                    f"this one has {cpu_kernels()}: float sums round differently")
    out = tmp_path / "now.json"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(HERE / "engine_baseline.py"), str(out)], env=env,
                   check=True, timeout=900, capture_output=True)
    now = json.loads(out.read_text())["losses"]
    for name, recorded in RECORDED["losses"].items():
        assert len(now[name]) == RECORDED["steps"], name
        first = next((i for i, (a, b) in enumerate(zip(now[name], recorded)) if a != b), None)
        assert first is None, (f"{name} trains differently from step {first + 1}: "
                               f"{now[name][first]} != {recorded[first]}")
