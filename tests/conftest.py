import os

import pytest

# Tests never reach a hub or phone home, and never see a GPU-only path unless marked.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Deterministic cuBLAS (before CUDA starts), so the GPU tests can compare runs exactly.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
# Under pytest-xdist (the README's `-n 2`) each worker process runs its torch ops, and the
# studio processes its tests start, on one thread: two workers with a thread per core each
# would oversubscribe the cores, and OpenMP threads that spin-wait for a busy core made the
# suite slower in two processes than in one. Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(d))
    return d


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
