#!/usr/bin/env bash
# On the GPU machine, as one prepared call of the device tool (run bench/gpu_kit.sh here first):
#
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# installs the carried wheels, then runs the GPU tests and the GPU benchmark, everything
# teed into $OUT (gpu.txt, pytest_gpu.log, bench/gpu_cuda.md and .json). Budgets (seconds)
# can be changed: GPU_TEST_SECONDS (default 270), BENCH_BUDGET (default 220; bench/gpu.py
# skips what would overrun it and lists it as skipped). Both together stay under the tool's
# 10-minute command limit; split them over two calls (GPU_TEST_SECONDS=0 or BENCH_BUDGET=0)
# for a fuller run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, accelerate, diffusers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'diffusers', diffusers.__version__)" | tee -a "$OUT/gpu.txt"
if [ "${GPU_TEST_SECONDS:-270}" != 0 ]; then
    timeout "${GPU_TEST_SECONDS:-270}" python3 -m pytest -m gpu -q -p no:cacheprovider \
        tests/test_gpu.py tests/test_scale.py tests/test_trainer.py 2>&1 | tee "$OUT/pytest_gpu.log"
fi
if [ "${BENCH_BUDGET:-220}" != 0 ]; then
    timeout $(( ${BENCH_BUDGET:-220} + 90 )) python3 bench/gpu.py --budget "${BENCH_BUDGET:-220}" \
        --out "$OUT/bench" 2>&1 | tee "$OUT/bench_gpu.log"
fi
