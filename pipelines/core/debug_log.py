"""Library warnings go to a debug log, not to the user. A deprecation inside transformers, a
hint from Gradio, a UserWarning from a component: none is something the user did or can act
on, and in the CLI's output or the page's Log panel each reads like a fault. They are kept, with
the time and the process, in `<runs folder>/.logs/debug.log` for whoever debugs the studio.

Python's warnings (`warnings.warn`, through `logging.captureWarnings`) and the libraries' own
loggers are routed there; the studio's own words (its `print`s, `studio: error: ...`) are not
warnings and are untouched. Installed once per process by the entry points (`studio ...`, the
sampling worker, launch.py), never by code that tests import, so pytest still sees warnings.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

DEBUG_LOG = Path(".logs") / "debug.log"
LIBRARY_LOGGERS = ("py.warnings", "transformers", "diffusers", "accelerate", "huggingface_hub",
                   "torch", "gradio", "httpx", "PIL", "matplotlib")


class _DebugLogHandler(logging.FileHandler):
    """The one handler this module installs (found again by its class, so a second call
    moves the log instead of writing it twice). Its folder is made at the first record: a
    `studio --help` creates nothing."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def route_library_warnings(runs_dir: str | os.PathLike) -> Path:
    """Send Python warnings and the libraries' log records to the runs folder's debug log."""
    path = Path(runs_dir).resolve() / DEBUG_LOG
    handler = _DebugLogHandler(path, delay=True, encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s pid {os.getpid()} %(name)s %(levelname)s: %(message)s"))
    warnings.simplefilter("default")          # each distinct warning once, as Python does
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _DebugLogHandler)]:
            logger.removeHandler(old)
            old.close()
        logger.addHandler(handler)
        logger.propagate = False              # not also to the console's root handler
    # transformers and diffusers print their records through a stderr handler of their own,
    # made on their first log: their verbosity variables keep those to errors, and what they
    # would have said as warnings is in the debug log through Python's warnings anyway.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    return path
