"""Generation settings inside the PNGs the studio writes ("PNG info").

Every sample PNG carries, in a text chunk named `studio`, what made it: the run and pipeline,
the checkpoint asked for and the step of the weights used, the batch it came from (its first
seed, its size, the class asked for) and its place in it, and every sampling control
(sampler, steps, guidance, prompt, truncation, ...). Image viewers show the chunk as text; the
Images tab reads it back when such a PNG is dropped on it and sets every control, so Generate
draws the same batch again, this image at the same place (`studio sample` writes it too).
The batch, not the image alone: what "image i" means without its batch differs by family
(a class model cycles the classes, a text model draws a prompt per seed).

The chunk is JSON; reading it back checks it field by field and never runs anything from
it. This module never imports torch: the page reads PNGs too.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from .errors import StudioError

KEY = "studio"          # the PNG text chunk's keyword
VERSION = 1
FIELDS = {"version": int, "pipeline": str, "run": str, "checkpoint": (int, type(None)),
          "weights_step": (int, type(None)), "seed": int, "count": int,
          "label": (int, type(None)), "index": (int, type(None)), "controls": dict}
# Fields later studios added, and their value in a PNG written before them.
OPTIONAL_FIELDS = {"upscale_with": ((str, type(None)), None)}


def png_bytes(image: Image.Image, settings: dict[str, Any] | None = None) -> bytes:
    """The picture as PNG bytes, with `settings` (see FIELDS) in its `studio` chunk."""
    info = None
    if settings is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(KEY, json.dumps({"version": VERSION, **settings}, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _is_a(value: Any, kind) -> bool:
    """isinstance, but a JSON true is not a number (bool is an int subclass in Python)."""
    return isinstance(value, kind) and not isinstance(value, bool)


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings of a studio PNG, checked; a StudioError saying what is wrong otherwise."""
    name = Path(path).name
    try:
        with Image.open(path) as picture:
            text = getattr(picture, "text", {}).get(KEY) if picture.format == "PNG" else None
    except (OSError, ValueError, Image.DecompressionBombError):
        raise StudioError(f"{name} is not a picture this studio can read") from None
    if text is None:
        raise StudioError(f"{name} has no studio settings: only PNGs the studio wrote (the "
                          f"Images tab's samples, `studio sample --out x.png`) carry them")
    try:
        settings = json.loads(text)
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise StudioError(f"{name}'s studio settings are damaged (not a JSON object)")
    for key, (_, before) in OPTIONAL_FIELDS.items():
        settings.setdefault(key, before)
    wrong = [key for key, kind in [*FIELDS.items(), *((k, v[0]) for k, v in
                                                      OPTIONAL_FIELDS.items())]
             if key not in settings or not _is_a(settings[key], kind)]
    if wrong:
        raise StudioError(f"{name}'s studio settings are damaged: {', '.join(wrong)} missing "
                          f"or of the wrong type")
    if settings["version"] > VERSION:
        raise StudioError(f"{name} was written by a newer studio (settings version "
                          f"{settings['version']}); update the studio to read it")
    return settings
