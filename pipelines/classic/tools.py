"""The classic models' tools: what a fit wrote into its run folder (summary.json, plots/*.png),
offered the way every family's tools are (`studio tool RUN summary`, `studio tool RUN plot --set
which=tree`, the page's Tools panel). A classic run keeps no weights (nothing is pickled), so
the tools read the fit's own files instead of loading a model; nothing is refit.
"""

from __future__ import annotations

from typing import Any

from ..core.base import Pipeline, ToolResult
from ..core.errors import StudioError
from ..core.runs import RunFolder
from ..registry import get_entry
from .fit import read_summary, summary_markdown
from .spec import PLOTS


class FittedRun:
    """A finished classic run, as `run_tool` calls its tools (name, tools, get_tool, methods)."""

    def __init__(self, run: RunFolder):
        self.run, self.info = run, run.info()
        self.name = self.info["pipeline"]
        self.spec = get_entry(self.name)
        self.tools, self.step = self.spec.tools, None
        read_summary(run)                        # a run that did not finish: one line now

    get_tool = Pipeline.get_tool            # by name, from self.tools, as every pipeline

    def tool_summary(self, ctx) -> ToolResult:
        summary = read_summary(self.run)
        values: dict[str, Any] = {**summary["metrics"], **{
            k: v for k, v in summary["statistics"].items() if isinstance(v, (int, float))}}
        return ToolResult(values=values, text=summary_markdown(summary))   # tables: the text

    def tool_plot(self, ctx, which: str) -> ToolResult:
        drawn = [name for name in PLOTS if (self.run.path / "plots" / f"{name}.png").is_file()]
        if not drawn:
            raise StudioError(f"run {self.run.id} drew no pictures")
        if which == "first":
            which = drawn[0]
        if which not in drawn:
            raise StudioError(f"{self.name} on this data drew no {which} picture; it drew "
                              f"{', '.join(drawn)}")
        return ToolResult(figure_png=(self.run.path / "plots" / f"{which}.png").read_bytes(),
                          values={"picture": which, "drawn": drawn})


def fitted_run(ref, runs_dir=None) -> FittedRun | None:
    """The run `ref` (a RunFolder, id or folder) as its tools see it when it is a classic
    one; None for anything else, a weights file included (the caller's loader says what is
    wrong with those)."""
    try:
        run = ref if isinstance(ref, RunFolder) else RunFolder.resolve(ref, runs_dir)
        entry = get_entry(run.info().get("pipeline", ""))
    except StudioError:
        return None
    return FittedRun(run) if entry.trains == "fit" else None
