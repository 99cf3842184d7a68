#!/usr/bin/env bash
# Here (a machine with PyPI): fetch the wheels the GPU machine lacks into .whl/ (git-ignored),
# for bench/gpu_check.sh to install there. The GPU machine's image has torch, accelerate,
# transformers, tokenizers, safetensors, scikit-learn, statsmodels, matplotlib and pytest
# (device tool's KINDS.md) but no diffusers; nothing can be fetched from it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    diffusers==0.42.1 importlib_metadata==10.2.0 lazy-importer==0.1.0
ls -la .whl
