#!/usr/bin/env bash
# On the GPU machine, as one prepared call of the device tool (run bench/gpu_kit.sh here first):
#
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# installs the carried wheels, then runs the GPU tests (in parallel: PYTEST_WORKERS processes
# share the GPU) and the GPU benchmark, everything teed into $OUT (gpu.txt, pytest_gpu.log,
# bench_gpu<tag>.log, bench/gpu_cuda<tag>.md and .json). Settings, as environment variables:
#   GPU_TEST_SECONDS (default 170; 0 skips the tests), PYTEST_WORKERS (default 8),
#   BENCH_BUDGET (default 330; 0 skips the benchmark; bench/gpu.py skips the rows that would
#   overrun it and lists them), BENCH_PARTS (default "gpu-speed nanogpt gpt2": bench/gpu.py's
#   --parts, in that order), BENCH_SECONDS (seconds per speed row, default 4), BENCH_TAG,
#   PROFILE (set: bench/gpu_profile.py's table of the GPT-2-small step first).
# A 15-minute lease fits two calls back to back on the warm machine: this one, then
#   GPU_TEST_SECONDS=0 BENCH_PARTS="default-speed compile quality" BENCH_TAG=_2 ...
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
TAG=${BENCH_TAG:-}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers, accelerate, diffusers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'diffusers', diffusers.__version__)"
} 2>&1 | tee "$OUT/gpu$TAG.txt"
if [ "${GPU_TEST_SECONDS:-170}" != 0 ]; then
    timeout "${GPU_TEST_SECONDS:-170}" python3 -m pytest -m gpu -q -p no:cacheprovider \
        -n "${PYTEST_WORKERS:-8}" --timeout 150 -rfE \
        tests/test_gpu.py tests/test_scale.py tests/test_trainer.py 2>&1 | tee "$OUT/pytest_gpu.log"
fi
if [ -n "${PROFILE:-}" ]; then   # where the GPT-2-small step's time goes (bench/gpu_profile.py)
    timeout 120 python3 bench/gpu_profile.py --gpt2-small --out "$OUT/bench" 2>&1 | tail -45
fi
if [ "${BENCH_BUDGET:-330}" != 0 ]; then
    # shellcheck disable=SC2086  # the parts are words
    timeout $(( ${BENCH_BUDGET:-330} + 100 )) python3 bench/gpu.py --budget "${BENCH_BUDGET:-330}" \
        --parts ${BENCH_PARTS:-gpu-speed nanogpt gpt2} --seconds "${BENCH_SECONDS:-4}" \
        --tag "$TAG" --out "$OUT/bench" 2>&1 | tee "$OUT/bench_gpu$TAG.log"
fi
