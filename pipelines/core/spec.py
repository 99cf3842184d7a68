"""What a pipeline is, declared without torch: its spec.

Each family declares its pipelines in a torch-free `spec.py` beside its code (e.g.
`pipelines/gan/spec.py`): name, kind, a one-line summary, the Config and SampleControls
dataclasses, its tools, training defaults and presets, the data it reads, whether it trains by
steps or is fit in one go, and where its implementation lives. The registry lists the specs;
the page builds every form and tool panel from them in its own process (`describe`), and the
CLI's `list` and `--help` too, with no torch imported. The implementation class names its spec
(`class DCGAN(GAN): spec = DCGAN_SPEC`) and takes every declaration from it
(`Pipeline.__init_subclass__`), so nothing is written twice; tests/test_specs.py imports every
spec with torch blocked and checks each against its implementation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .config import TrainerConfig, describe as describe_fields


@dataclass(frozen=True)
class Tool:
    """A family-specific action, offered by the CLI (`studio tool RUN NAME --set k=v`) and
    the UI. The pipeline method named `method` is called as `method(ctx, **options)` with a
    ToolContext and the fields of `Options` (a config dataclass), and returns a ToolResult."""
    name: str
    method: str
    Options: type
    help: str
    needs_images: bool = False      # requires input images (`--input a.png b.png`)
    accepts_images: bool = False    # may take input images, works without them too


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    family: str      # gan, autoencoder, diffusion, text, classifier, classic (the UI's groups)
    kind: str        # "image", "text", "classifier" or "classic": what it makes
    summary: str     # one line for lists
    impl: str        # "module:Class", imported only to train, sample or run a tool
    Config: type     # the options dataclass (pipelines/core/config.py's `option` fields)
    SampleControls: type | None = None      # extra sampling controls, if any
    tools: tuple[Tool, ...] = ()
    # Changes to TrainerConfig's defaults that suit this pipeline, e.g. {"steps": 3000}.
    train_defaults: dict[str, Any] = field(default_factory=dict)
    # Changes to those for one bundled data set, e.g. {"shapes": {"steps": 4500}}: a 32 px
    # colour step costs as much as many 8 px digit steps, and each default should fit a few
    # minutes on a CPU (presets.train_defaults_for).
    train_defaults_by_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Named option sets beside the step multipliers (pipelines/core/presets.py), as plain data:
    # {"gpu": {"config": {model options}, "trainer": {trainer options}}}; None for a model
    # fit in one go, which has no steps for a preset to set.
    presets: dict[str, dict[str, dict[str, Any]]] | None = field(default_factory=dict)
    data_kind: str = "image"     # "image", "text" or "table": what its data sets hold
    trains: str = "steps"        # "steps": the trainer's loop; "fit": one call (scikit-learn)
    can_interpolate: bool = False   # draws interpolations between two seeds
    streams: bool = False           # streams its output (text) as it is made
    # turns an image into one `upscales` times larger (super-resolution): offered as "upscale
    # with" to every other image run (`studio sample --upscale-with`, the Images tab); 0: not
    upscales: int = 0
    # The bundled data set it is shown on when none is named (`studio inspect PIPELINE`);
    # "": the first of EXAMPLE_DATA for its data_kind.
    example_data: str = ""

    def variant(self, name: str, impl: str, summary: str, **changes: Any) -> PipelineSpec:
        """A named pipeline on this shared spec: its name, its class ("module:Class", or
        "Class" in this spec's module), its summary and what else it changes."""
        if ":" not in impl:
            impl = f"{self.impl.partition(':')[0]}:{impl}"
        return replace(self, name=name, impl=impl, summary=summary, **changes)


EXAMPLE_DATA = {"image": "digits", "text": "shakespeare", "table": "iris",
                "paired": "shapes-edges", "unpaired": "shapes-seasons",
                "labelled-text": "shakespeare-lines", "text-pairs": "dates"}


def example_data(spec: PipelineSpec) -> str:
    """The bundled data set a pipeline is shown on when none is named."""
    return spec.example_data or EXAMPLE_DATA[spec.data_kind]


def field_dicts(config_cls: type | None) -> list[dict[str, Any]]:
    """A config dataclass's fields as JSON: what the UI builds a form from."""
    if config_cls is None:
        return []
    return [{**asdict(spec), "type": spec.type.__name__} for spec in describe_fields(config_cls)]


def describe(spec: PipelineSpec) -> dict[str, Any]:
    """Everything a form needs about a pipeline, from its spec alone (no torch): its options,
    the trainer's options with this pipeline's defaults, its presets, the sampling controls
    and the tools."""
    from .presets import family_presets
    trainer = field_dicts(TrainerConfig)
    for f in trainer:
        f["default"] = spec.train_defaults.get(f["name"], f["default"])
        by_data = {data: changes[f["name"]] for data, changes
                   in spec.train_defaults_by_data.items() if f["name"] in changes}
        if by_data:     # the form's help says so; the default shown follows the data picked
            f["default_by_data"] = by_data
            f["help"] += " Default " + "; ".join(f"on {d}: {v:,}" if isinstance(v, int)
                                                 else f"on {d}: {v}"
                                                 for d, v in by_data.items()) + "."
    return {
        "name": spec.name, "family": spec.family, "kind": spec.kind,
        "summary": spec.summary, "data_kind": spec.data_kind, "trains": spec.trains,
        "options": field_dicts(spec.Config), "trainer": trainer,
        "presets": family_presets(spec),   # {} for models fit in one go
        "presets_by_data": {data: family_presets(spec, data)
                            for data in spec.train_defaults_by_data},
        "controls": field_dicts(spec.SampleControls),
        "tools": [{"name": t.name, "help": t.help, "needs_images": t.needs_images,
                   "accepts_images": t.accepts_images, "options": field_dicts(t.Options)}
                  for t in spec.tools],
        "can_interpolate": spec.can_interpolate,
        "streams": spec.streams,
        "upscales": spec.upscales,
    }


# What a spec declares that its implementation class takes over as class attributes.
DECLARED = ("name", "Config", "SampleControls", "tools", "train_defaults",
            "train_defaults_by_data", "presets", "data_kind")


def adopt(cls: type, spec: PipelineSpec) -> None:
    """Give an implementation class its spec's declarations (`Pipeline.__init_subclass__`
    and the classic models' base call this)."""
    for attr in DECLARED:
        setattr(cls, attr, getattr(spec, attr))


def lazy_exports(package: str, exports: dict[str, str]):
    """A family package's `__getattr__` (PEP 562): `from pipelines.gan import DCGAN` still
    works, but importing the package (as `pipelines.gan.spec` does) loads no torch code until
    a name from an implementation module is asked for. `exports`: name -> module, relative
    to the package (".pipeline")."""
    import importlib

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)
    return __getattr__
