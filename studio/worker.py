"""The UI's side of the sampling worker (`pipelines/worker.py`): one long-lived process that
holds torch and the loaded models, so the UI process never imports torch and a slow sample
never blocks the page's other requests (Gradio runs handlers in threads; they wait here for the
worker in turn, while training jobs run in their own processes).

    worker = SamplingWorker(runs_dir)
    result = worker.call("sample", run="dcgan-digits-...", n=16, seed=0)
    for text_so_far in worker.stream("stream_text", run=..., seed=0, controls={...}): ...

The worker starts on first use and again after a crash; its errors come back as StudioError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from pipelines.core.errors import StudioError

REPO_ROOT = Path(__file__).resolve().parents[1]


class SamplingWorker:
    def __init__(self, runs_dir: str | os.PathLike, *, python: str = sys.executable,
                 threads: int = 0):
        self.runs_dir = Path(runs_dir).resolve()
        self.python = python
        self.threads = threads
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()   # one request at a time on the pipe
        self._next_id = 0

    # --- the process ---------------------------------------------------------------------------
    def _start(self) -> subprocess.Popen:
        log_dir = self.runs_dir / ".jobs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH"))
                                            if p)
        cmd = [self.python, "-m", "pipelines.worker", "--runs-dir", str(self.runs_dir)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        with open(log_dir / "worker.log", "ab") as log:
            process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, cwd=REPO_ROOT, env=env, text=True,
                                       encoding="utf-8", bufsize=1)
        ready = process.stdout.readline()
        if not ready:
            raise StudioError(f"the sampling worker did not start; see "
                              f"{log_dir / 'worker.log'}")
        return process

    def _ensure(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        return self._process

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.stdin.close()
                try:
                    self._process.wait(10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            self._process = None

    # --- requests ----------------------------------------------------------------------------
    def _messages(self, op: str, args: dict[str, Any]) -> Iterator[dict]:
        """Send one request and yield its answers (chunks, then the final one); holds the lock
        for the whole exchange so answers never interleave."""
        with self._lock:
            process = self._ensure()
            self._next_id += 1
            rid = self._next_id
            try:
                process.stdin.write(json.dumps({"id": rid, "op": op, "args": args}) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._process = None
                raise StudioError("the sampling worker stopped; try again") from None
            while True:
                line = process.stdout.readline()
                if not line:
                    self._process = None
                    raise StudioError("the sampling worker stopped while answering (out of "
                                      f"memory?); see {self.runs_dir / '.jobs' / 'worker.log'}")
                message = json.loads(line)
                if message.get("id") != rid:
                    continue
                yield message
                if "chunk" not in message:
                    return

    def call(self, op: str, **args: Any) -> Any:
        for message in self._messages(op, args):
            if "chunk" in message:
                continue
            if not message.get("ok"):
                raise StudioError(message.get("error") or "the sampling worker failed")
            return message["result"]
        raise StudioError("the sampling worker gave no answer")

    def stream(self, op: str, **args: Any) -> Iterator[str]:
        """Each chunk the worker sends (e.g. the text so far), then the final text."""
        for message in self._messages(op, args):
            if "chunk" in message:
                yield message["chunk"]
            elif not message.get("ok"):
                raise StudioError(message.get("error") or "the sampling worker failed")

    def warm_up(self) -> None:
        """Start the process now (it imports torch: seconds), so the first sample is quick."""
        with self._lock:
            self._ensure()
