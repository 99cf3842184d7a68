"""What every tab shares: the studio's context (runs folder, jobs, sampling worker, viewer
mode), turning errors into warnings, and small formatting helpers. No torch here."""

from __future__ import annotations

import datetime as _dt
import functools
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from pipelines.core.errors import StudioError
from pipelines.core.runs import RunFolder, list_runs

from .jobs import JobManager
from .outputs import OUTPUT_FOLDER, OutputCache
from .worker import SamplingWorker

log = logging.getLogger(__name__)


@dataclass
class Studio:
    """One studio page's back end: shared by every session of the page (jobs and the worker
    are process-wide objects keyed by run id; per-user state lives in gr.State)."""
    runs_dir: Path
    jobs: JobManager
    worker: SamplingWorker
    viewer: bool = False     # read-only: browse and sample, no training, deleting or uploading
    outputs: OutputCache | None = field(default=None)   # the page's pictures, bounded

    def __post_init__(self):
        if self.outputs is None:
            self.outputs = OutputCache(Path(self.runs_dir) / OUTPUT_FOLDER)

    def require_editor(self, what: str) -> None:
        if self.viewer:
            raise StudioError(f"this studio is read-only (--viewer): {what} is not allowed")

    def run_ids(self, kind: str | tuple[str, ...] | None = None,
                with_weights: bool = True) -> list[str]:
        """Run ids, newest first; only those with sampling weights, of `kind` (one registry
        kind, or any of several) if given."""
        kinds = (kind,) if isinstance(kind, str) else kind
        ids = []
        for summary in list_runs(self.runs_dir):
            run = RunFolder(self.runs_dir / summary["id"])
            if with_weights and not run.weights_path.is_file():
                continue
            if kinds is not None and run_kind(run) not in kinds:
                continue
            ids.append(summary["id"])
        return ids


@functools.cache
def describe(pipeline: str) -> dict[str, Any]:
    """A pipeline's options, trainer options, presets, sampling controls and tools: from its
    torch-free spec (pipelines/core/spec.py), in this process, so no form waits for the sampling
    worker. Cached: they change only with the code."""
    from pipelines.registry import get_entry
    from pipelines.core.spec import describe as describe_spec
    return describe_spec(get_entry(pipeline))


def run_kind(run: RunFolder) -> str:
    """'image', 'text' or another registry kind for a run (from its pipeline's entry)."""
    from pipelines.registry import get_entry
    try:
        return get_entry(run.info().get("pipeline", "")).kind
    except StudioError:
        return "?"


def as_markdown_text(text: str) -> str:
    """Free text for a gr.Markdown: `<folder>` must show, not vanish as an HTML tag."""
    return html.escape(text, quote=False)


def shows_errors(n_outputs: int) -> Callable:
    """Decorate a handler so that any error becomes a gr.Warning (never a traceback in the
    page) and its outputs stay as they were. Generators (streaming handlers) too."""
    def decorate(fn: Callable) -> Callable:
        def skips():
            values = tuple(gr.skip() for _ in range(n_outputs))
            return values[0] if n_outputs == 1 else values

        def warn(e: Exception) -> None:
            gr.Warning(as_markdown_text(error_text(e, fn.__name__)))

        import inspect
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_handler(*args):
                try:
                    yield from fn(*args)
                except Exception as e:  # noqa: BLE001 - the console gets the traceback
                    warn(e)
                    yield skips()
            return gen_handler

        @functools.wraps(fn)
        def handler(*args):
            try:
                return fn(*args)
            except Exception as e:  # noqa: BLE001 - the console gets the traceback
                warn(e)
            return skips()
        return handler
    return decorate


def error_text(e: Exception, where: str) -> str:
    """What the user reads about an error: a StudioError's own sentence; anything else in one
    line (the console gets the traceback)."""
    if isinstance(e, StudioError):
        return str(e)
    log.error("studio handler %s failed", where, exc_info=e)
    return f"Something went wrong: {type(e).__name__}: {e}"


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"
    return "\n".join([cells(columns), cells(["---"] * len(columns)), *map(cells, rows)])


def format_step(step: Any, total: Any) -> str:
    return f"{step}/{total}" if total else str(step)


def format_losses(losses: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, (int, float)) else f"{k}={v}"
                    for k, v in sorted(losses.items()))


def format_created(stamp: str) -> str:
    """An ISO time (UTC in run.json) as local 'YYYY-MM-DD HH:MM:SS'."""
    try:
        return _dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(stamp or "")


def whole_number(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """A form's number as an int, or a StudioError naming the field."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StudioError(f"{name} must be a whole number, not {value!r}") from None
    if not number.is_integer():
        raise StudioError(f"{name} must be a whole number, not {value!r}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise StudioError(f"{name} must be between {low} and {high}, not {int(number)}")
    return int(number)


def run_choices(studio: Studio, kind: str | tuple[str, ...] | None) -> dict:
    """A dropdown update listing the runs one can sample from, the newest picked (a Refresh
    button's: the user asked for the list again)."""
    return newest_picked(studio.run_ids(kind))


def newest_picked(ids: list[str]) -> dict:
    """A dropdown update: these run ids (newest first), the newest picked."""
    return gr.Dropdown(choices=ids, value=ids[0] if ids else None)


# Run in the browser once the lists have arrived: only an empty dropdown gets its newest run.
# `undefined` leaves a dropdown as it is: setting a run again, even the same one, would fire
# its change event, which draws the run's panels again (a Tools button clicked meanwhile
# belonged to the panel drawn before, whose listener Gradio no longer knows).
KEEP_PICKED_JS = ("(newest, ...picked) => picked.map((run, i) => "
                  "run || !newest[i] ? undefined : newest[i])")


def changed_lists(dropdowns: list[gr.Dropdown], lists: list[list[str]],
                  shown: dict | None) -> tuple[list, dict]:
    """(one update per dropdown, the lists now shown): a dropdown whose list `shown` already
    holds gets gr.skip(), the others their new choices alone. New choices fire a dropdown's
    change event, which draws what follows from it again (a run's panels, a comparison), so
    a list is sent only when it changed. `shown`: a gr.State's dict, keyed by each
    dropdown's block id (a dropdown has no public stable id)."""
    shown, updates = dict(shown or {}), []
    for dropdown, ids in zip(dropdowns, lists):
        key = str(dropdown._id)
        updates.append(gr.skip() if shown.get(key) == ids else gr.Dropdown(choices=ids))
        shown[key] = ids
    return updates, shown


def offer_runs(trigger: Callable, dropdowns: list[gr.Dropdown],
               listing: Callable[[], list[list[str]]], shown: gr.State) -> None:
    """On `trigger` (the page's load, a tab's select): list each dropdown's runs (`listing`:
    one list of run ids per dropdown, newest first) and pick the newest where none is picked.
    The pick is made in the browser after the lists arrive, never by the listing's answer: on
    a busy machine the page-load event answered after the user had already picked a run, and
    an answer that set the value replaced their pick (the run's tools then worked on another
    run). A list the page already shows is not sent again (`shown`: a gr.State({}) shared by
    the calls for the same dropdowns): new choices fire the dropdown's change event too, and
    the run's panels would be drawn again at every visit of the tab. Builds a hidden
    component: call it inside the page's Blocks."""
    newest = gr.JSON(visible=False)

    def listed(already: dict):
        lists = listing()
        updates, already = changed_lists(dropdowns, lists, already)
        return (*updates, [ids[0] if ids else None for ids in lists], already)

    trigger(listed, shown, [*dropdowns, newest, shown], show_progress="hidden").success(
        None, [newest, *dropdowns], dropdowns, js=KEEP_PICKED_JS, show_progress="hidden")
