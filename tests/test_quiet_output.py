"""What a user reads is the studio's own words: no library warning or hint (transformers'
deprecations, Gradio's "set `share=True` in `launch()`") in the CLI's normal output or at
the page's start."""

import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import free_port

REPO = Path(__file__).resolve().parents[1]
# Python's default warning filters, as a user's shell has them (pytest's own are not).
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
       "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
LIBRARY_WORDS = ("warning", "deprecated", "share=true", "futurewarning")


def studio(*args, runs_dir):
    done = subprocess.run([sys.executable, "-m", "pipelines", "--runs-dir", str(runs_dir), *args],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_training_and_sampling_a_text_model_print_no_library_warnings(tmp_path):
    out = studio("train", "transformer", "--data", "shakespeare", "--steps", "4",
                 "--log-every", "2", "--checkpoint-every", "4", "--sample-every", "0",
                 "--sample-count", "1", "--no-final-eval", "--quiet", "--set", "n_layer=1",
                 "--set", "n_embd=16", "--set", "n_head=2", "--set", "context=16",
                 runs_dir=tmp_path)
    run = next(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    out += studio("sample", run, "--n", "2", "--prompt", "ROMEO:", "--set", "max_new_tokens=20",
                  "--out", str(tmp_path / "t.txt"), runs_dir=tmp_path)
    said = [line for line in out.lower().splitlines() if any(w in line for w in LIBRARY_WORDS)]
    assert not said, said


def test_the_page_says_where_it_is_and_how_to_share_in_its_own_words(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--no-browser",
                             "--runs-dir", str(tmp_path)], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines, deadline = [], time.time() + 120
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Generative Media Studio: http" in line or not line:
                break
        assert any(f"Generative Media Studio: http://127.0.0.1:{port}" in ln for ln in lines)
        assert any("--share" in ln for ln in lines)
        said = [ln for ln in lines if any(w in ln.lower() for w in LIBRARY_WORDS)]
        assert not said, said
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_library_warnings_are_kept_in_the_debug_log_not_shown(tmp_path):
    """What `studio`, the worker and launch.py install first (pipelines/core/debug_log.py): a
    library's warning and log record reach the runs folder's .logs/debug.log, not the user."""
    code = ("import logging, warnings\n"
            "from pipelines.core.debug_log import route_library_warnings\n"
            f"route_library_warnings({str(tmp_path)!r})\n"
            "warnings.warn('`past_key_values` is deprecated', FutureWarning)\n"
            "logging.getLogger('transformers.generation').warning('a library hint')\n"
            "print('the studio speaks')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "the studio speaks\n" and not done.stderr
    kept = (tmp_path / ".logs" / "debug.log").read_text()
    assert "FutureWarning: `past_key_values` is deprecated" in kept and "a library hint" in kept
    # `studio --help` writes nothing into the runs folder
    empty = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "pipelines", "--runs-dir", str(empty), "--help"],
                   cwd=REPO, env=ENV, capture_output=True, timeout=60, check=True)
    assert not empty.exists()
