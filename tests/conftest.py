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


# The longest files first (by `--durations` on a 2-core machine): with a file per test
# process at a time (`--dist loadfile`), a long file started last would leave one process
# working alone at the end. `--no-loadscope-reorder` keeps this order (xdist otherwise starts
# the files with the most tests first, and these have one or a few each).
LONGEST_FIRST = ("test_text_to_image_quality.py", "test_faults.py", "test_engine_baseline.py",
                 "test_browser_text.py", "test_browser.py", "test_browser_inspect.py",
                 "test_browser_tools.py", "test_browser_tabs.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: else as found
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
