"""Pipeline specs (pipelines/core/spec.py): every pipeline is declared without torch, the page builds
its forms from the declarations in its own process, and each declaration matches its
implementation."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.base import Pipeline
from pipelines.registry import list_pipelines, load_pipeline_class
from pipelines.core.spec import PipelineSpec, describe

REPO = Path(__file__).resolve().parents[1]
SPECS = list_pipelines()
HEAVY = ("torch", "numpy", "sklearn", "statsmodels", "diffusers", "transformers", "accelerate",
         "scipy", "PIL")
# What the page's own process may not load either (it needs numpy and PIL for Gradio)
TRAINING = ("torch", "sklearn", "statsmodels", "diffusers", "transformers", "accelerate")


def run_without(blocked: tuple[str, ...], code: str, *args: str, timeout: float = 60) -> str:
    """Run `code` in a fresh Python where importing any of `blocked` fails; its stdout."""
    guard = f"import sys\nfor name in {blocked!r}: sys.modules[name] = None\n"
    result = subprocess.run([sys.executable, "-c", guard + code, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_spec_imports_and_describes_itself_with_torch_blocked():
    """Importing the registry, every family's spec and describing every pipeline (what the
    page and `studio list` do) loads none of the numeric libraries: they are blocked, so an
    import of any of them fails the run."""
    out = run_without(HEAVY, "from pipelines.registry import list_pipelines\n"
                             "from pipelines.core.spec import describe\n"
                             "described = [describe(s) for s in list_pipelines()]\n"
                             "print(len(described), sorted({d['family'] for d in described}))\n")
    count, families = out.split(" ", 1)
    assert int(count) == len(SPECS) >= 40
    assert "'gan'" in families and "'classic'" in families


def test_names_are_unique_and_every_entry_is_a_spec():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    assert all(isinstance(s, PipelineSpec) for s in SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_each_spec_matches_its_implementation(spec):
    cls = load_pipeline_class(spec.name)
    assert cls.spec is spec
    from pipelines.core.spec import DECLARED
    for attr in DECLARED:
        assert getattr(cls, attr) == getattr(spec, attr), attr
    # A fit model keeps no weights: its tools run on the finished run (classic/tools.py).
    from pipelines.classic.tools import FittedRun
    runs_tools = FittedRun if spec.trains == "fit" else cls
    for tool in spec.tools:
        assert callable(getattr(runs_tools, tool.method, None)), tool.method
    if spec.trains == "fit":
        assert not issubclass(cls, Pipeline) and spec.presets is None
    else:
        assert spec.trains == "steps" and issubclass(cls, Pipeline)
        overrides = getattr(cls, "interpolate", Pipeline.interpolate) is not Pipeline.interpolate
        assert spec.can_interpolate == overrides
    assert spec.streams == callable(getattr(cls, "stream", None))


def test_describe_is_plain_json_for_the_page():
    import json
    for spec in SPECS:
        desc = describe(spec)
        assert json.loads(json.dumps(desc))["name"] == spec.name and desc["trainer"]


def test_describe_lists_options_controls_and_tools():
    """What the page builds a form from (moved here from the worker, which no longer
    describes pipelines)."""
    from studio.common import describe as page_describe
    desc = page_describe("cgan")
    assert desc["kind"] == "image" and desc["can_interpolate"]
    assert [c["name"] for c in desc["controls"]] == ["truncation"]
    assert {"name", "type", "default", "help", "choices", "low", "high"} <= set(desc["options"][0])
    steps = next(s for s in desc["trainer"] if s["name"] == "steps")
    assert steps["type"] == "int" and steps["low"] == 1


def test_the_page_builds_every_pipelines_form_with_no_torch_and_no_worker(tmp_path):
    """The page's Train form for every pipeline (its options, trainer options, preset, sampling
    controls and tool options, as studio/tabs build them), in a process where torch and the
    other training libraries cannot be imported, so the sampling worker cannot be what
    answered."""
    code = (
        "import gradio as gr\n"
        "import studio.app\n"
        "from studio.common import describe\n"
        "from studio.forms import field_input\n"
        "from pipelines.registry import list_pipelines\n"
        "app = studio.app.build_app(sys.argv[1])\n"
        "assert app.studio.worker._process is None\n"
        "n = 0\n"
        "with gr.Blocks():\n"
        "    for spec in list_pipelines():\n"
        "        d = describe(spec.name)\n"
        "        fields = d['options'] + d['trainer'] + d['controls'] + "
        "[o for t in d['tools'] for o in t['options']]\n"
        "        n += len([field_input(f) for f in fields])\n"
        "assert app.studio.worker._process is None\n"
        "print(n)\n")
    out = run_without(TRAINING, code, str(tmp_path / "runs"), timeout=120)
    assert int(out.split()[-1]) > 40 * 20   # every pipeline's fields became inputs


def test_studio_list_and_help_read_the_specs_without_torch():
    out = run_without(TRAINING, "from pipelines.cli import main\n"
                                "assert main(['list', 'infogan']) == 0\n"
                                "assert main(['list']) == 0\n")
    assert "tool code-sweep" in out and "presets (studio train --preset NAME)" in out \
        and "wgan-gp" in out
