"""The sampling worker: a long-lived process that loads trained models and samples from them
for the UI, which never imports torch itself.

    python -m pipelines.worker --runs-dir DIR

It reads one JSON request per line on stdin and answers with JSON lines on stdout:

    {"id": 7, "op": "sample", "args": {"run": "dcgan-digits-...", "n": 16, "seed": 0}}
    -> {"id": 7, "ok": true, "result": {"grid": "/.../grid.png", "images": [...], ...}}
    -> {"id": 7, "ok": false, "error": "run x has no weights yet ..."}
    streamed ops (text) first send {"id": 7, "chunk": "text so far"} lines.

Pictures are written as PNG files under DIR/.ui/ (the UI may serve files from the runs folder
only) and answered by path. Loaded models are kept (a few, newest first) keyed by their weights
file and its modification time, so a second request for the same run does not load it again.
Everything a library prints goes to stderr: stdout carries the protocol alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator

from .core.config import check_seed
from .core.errors import StudioError

KEEP_MODELS = 4
OUTPUT_FOLDER = ".ui"


class Worker:
    """Answers requests for the runs under `runs_dir`."""

    def __init__(self, runs_dir: str | os.PathLike):
        self.runs_dir = Path(runs_dir).resolve()
        self.out_root = self.runs_dir / OUTPUT_FOLDER
        self._models: OrderedDict[tuple, Any] = OrderedDict()

    # --- models ----------------------------------------------------------------------------
    def model(self, run: str, step: int | None = None):
        from .services.loading import load_for_sampling, weights_file
        path = weights_file(self._run_path(run), step=step)
        key = (str(path), path.stat().st_mtime_ns)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        pipe = load_for_sampling(path)
        self._models[key] = pipe
        while len(self._models) > KEEP_MODELS:
            self._models.popitem(last=False)
        return pipe

    def _run_path(self, run: str) -> Path:
        """A run id of this runs folder; anything else (a path, '..') is refused."""
        from .core.runs import RunFolder
        return RunFolder.by_id(self.runs_dir, run).path

    def _out_dir(self) -> Path:
        path = self.out_root / time.strftime("%Y%m%d") / uuid.uuid4().hex[:12]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _controls(self, pipe, values: dict[str, Any] | None) -> dict[str, Any]:
        from .services.sampling import parse_controls
        return parse_controls(pipe, values or {})

    # --- operations ------------------------------------------------------------------------
    def op_sample(self, run: str, n: int = 16, seed: int = 0, label: int | None = None,
                  step: int | None = None, controls: dict | None = None,
                  upscale_with: str | None = None) -> dict[str, Any]:
        """A batch: one PNG per image (its seed in the name), the grid, and the texts of a
        text model; upscaled by the super-resolution run `upscale_with` if given."""
        from .services.imaging import save_grid
        from .services.sampling import upscale_samples
        if not 1 <= int(n) <= 1024:
            raise StudioError("the batch size must be between 1 and 1024")
        seed = check_seed(seed)
        pipe = self.model(run, step)
        controls = self._controls(pipe, controls)
        samples = pipe.sample(int(n), seed=seed, labels=label, **controls)
        if samples.texts is not None:
            return {"texts": samples.texts, "step": pipe.step}
        if upscale_with:
            upscale_with = self._run_path(upscale_with).name
            samples = upscale_samples(samples, self.model(upscale_with), upscale_with)
        out = self._out_dir()
        # What made this batch, in every PNG (pipelines/core/png_settings.py): dropped on the
        # Images tab, a file brings these settings back.
        made = {"pipeline": pipe.name, "run": self._run_path(run).name, "checkpoint": step,
                "weights_step": pipe.step, "seed": seed, "count": int(n), "label": label,
                "controls": controls, "upscale_with": upscale_with or None}
        files = []
        grouped = len(samples.images) != int(n)  # e.g. pix2pix: input | output | target each
        for i, image in enumerate(samples.images):
            name = f"seed{int(seed)}-{i:04d}" if grouped else f"seed{int(seed) + i}"
            if samples.labels is not None:
                name += f"-class{int(samples.labels[i])}"
            save_grid(image[None], out / f"{name}.png", nrow=1, settings={**made, "index": i})
            files.append(str(out / f"{name}.png"))
        save_grid(samples.images, out / "grid.png", labels=samples.labels,
                  nrow=samples.columns, settings={**made, "index": None})
        labels = None if samples.labels is None else [int(x) for x in samples.labels]
        return {"grid": str(out / "grid.png"), "files": files, "labels": labels,
                "step": pipe.step, "class_names": pipe.info.get("class_names")}

    def op_interpolate(self, run: str, seed_a: int, seed_b: int, frames: int = 10,
                       label: int | None = None, step: int | None = None,
                       controls: dict | None = None) -> dict[str, Any]:
        from .services.imaging import save_gif, save_grid
        if not 2 <= int(frames) <= 256:
            raise StudioError("frames must be between 2 and 256")
        seed_a, seed_b = check_seed(seed_a, "seed_a"), check_seed(seed_b, "seed_b")
        pipe = self.model(run, step)
        samples = pipe.interpolate(seed_a, seed_b, int(frames), labels=label,
                                   **self._controls(pipe, controls))
        out = self._out_dir()
        save_grid(samples.images, out / "walk.png", nrow=len(samples.images))
        save_gif(samples.images, out / "walk.gif")
        return {"strip": str(out / "walk.png"), "gif": str(out / "walk.gif"), "step": pipe.step}

    def op_tool(self, run: str, name: str, options: dict | None = None,
                inputs: list[str] | None = None, step: int | None = None) -> dict[str, Any]:
        from .classic.tools import fitted_run
        from .core.runs import RunFolder
        from .services.imaging import save_grid
        from .services.sampling import run_tool
        # A classic run has no weights: its tools read what the fit wrote.
        pipe = fitted_run(RunFolder(self._run_path(run))) or self.model(run, step)
        result = run_tool(pipe, name, options or {}, input_paths=inputs or None,
                          cache_dir=self.runs_dir / ".judges")
        out, image = self._out_dir(), None
        if result.figure_png is not None:
            image = out / "figure.png"
            image.write_bytes(result.figure_png)
        elif result.images is not None:
            image = out / "result.png"
            save_grid(result.images, image, nrow=result.columns)
        return {"image": str(image) if image else None, "values": result.values,
                "probabilities": result.probabilities, "text": result.text, "step": pipe.step}

    def op_stream_text(self, run: str, seed: int = 0, step: int | None = None,
                       controls: dict | None = None) -> Iterator[str]:
        """The text so far, after every new piece the model writes."""
        seed = check_seed(seed)
        pipe = self.model(run, step)
        if not callable(getattr(pipe, "stream", None)):
            raise StudioError(f"{pipe.name} does not write text")
        text = ""
        for piece in pipe.stream(seed, **self._controls(pipe, controls)):
            text += piece
            yield text

    def op_chat_setup(self, run: str, step: int | None = None) -> dict[str, Any]:
        """How the run's corpus writes who speaks, and its most frequent speakers."""
        from .core.run_setup import load_data_for
        from .text.chat import DEFAULT_SPEAKERS, COLON, speaker_format
        pipe = self.model(run, step)
        if not callable(getattr(pipe, "stream", None)):
            raise StudioError(f"{pipe.name} does not write text, so it cannot chat")
        try:
            corpus = load_data_for(type(pipe), pipe.config, pipe.info["name"]).train_text
        except StudioError:             # the user's text file is gone: generic names
            return {"style": COLON, "speakers": list(DEFAULT_SPEAKERS)}
        return speaker_format(corpus)

    def op_stream_chat(self, run: str, turns: list, you: str, them: str, style: str,
                       seed: int = 0, step: int | None = None,
                       controls: dict | None = None) -> Iterator[str]:
        """The model's next reply in a chat, as it writes it (pipelines/text/chat.py)."""
        from .text.chat import check_turns, stream_reply
        seed = check_seed(seed)
        pipe = self.model(run, step)
        if not callable(getattr(pipe, "stream", None)):
            raise StudioError(f"{pipe.name} does not write text, so it cannot chat")
        turns = check_turns(turns, you, them, style)
        yield from stream_reply(pipe, seed, turns, them, style, self._controls(pipe, controls))

    def op_chat_transcript(self, turns: list, style: str) -> str:
        """A chat's turns written the way its corpus writes a conversation."""
        from .text.chat import transcript
        return transcript(turns, style)

    def op_classify(self, image: str, data: str | None = "digits") -> list[dict[str, Any]]:
        """Every finished classifier's prediction for the picture at `image` (a PNG the UI
        wrote under the runs folder)."""
        import numpy as np
        from PIL import Image
        from .classifiers.classify import classify_image
        path = Path(image).resolve()
        if self.runs_dir not in path.parents:
            raise StudioError("the picture to classify must lie in the runs folder")
        return classify_image(np.asarray(Image.open(path)), self.runs_dir, data=data or None)

    def op_export(self, run: str) -> dict[str, Any]:
        """`studio export`: weights, config, model card and the family's library folder."""
        from .services.export import export_run
        from .core.runs import RunFolder
        dest = export_run(RunFolder(self._run_path(run)))
        return {"folder": str(dest), "files": sorted(p.name for p in dest.iterdir())}

    # --- the loop ----------------------------------------------------------------------------
    def handle(self, request: dict[str, Any], send: Callable[[dict], None]) -> None:
        rid = request.get("id")
        try:
            op = getattr(self, f"op_{request.get('op', '')}", None)
            if op is None:
                raise StudioError(f"unknown request {request.get('op')!r}")
            result = op(**(request.get("args") or {}))
            if hasattr(result, "__next__"):
                last = None
                for last in result:
                    send({"id": rid, "chunk": last})
                result = {"text": last or ""}
            send({"id": rid, "ok": True, "result": result})
        except StudioError as e:
            send({"id": rid, "ok": False, "error": str(e)})
        except TypeError as e:  # wrong arguments from the client
            traceback.print_exc()
            send({"id": rid, "ok": False, "error": f"bad request: {e}"})
        except Exception as e:  # noqa: BLE001 - reported in words; stderr keeps the traceback
            traceback.print_exc()
            send({"id": rid, "ok": False, "error": f"{type(e).__name__}: {e}"})


def serve(runs_dir: str | os.PathLike) -> int:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr  # a library's print must not break the protocol

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    worker = Worker(runs_dir)
    send({"id": None, "ok": True, "result": "ready"})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            send({"id": None, "ok": False, "error": "a request must be one JSON object per line"})
            continue
        worker.handle(request, send)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.worker", description=__doc__)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0 = torch's default)")
    args = parser.parse_args(argv)
    from .core.debug_log import route_library_warnings
    route_library_warnings(args.runs_dir)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    return serve(args.runs_dir)


if __name__ == "__main__":
    raise SystemExit(main())

