"""What every family implements. The trainer drives it; the CLI and UI sample from it.

A pipeline is one class with a config dataclass and five methods:

    build()            -> {"generator": nn.Module, ...}    the networks, freshly initialised
    make_optimizers()  -> {"g": Optimizer, ...}             over self.modules' parameters
    schedules()        -> {"g": Schedule, ...}              learning rates over the run (optional)
    train_step(batch, ctx) -> {"loss_g": float, ...}       one optimisation step, via ctx.step
    phases(config)     -> [Phase("autoencoder", 1500, "autoencoder_step"), Phase("diffusion")]
                            (optional: one "training" phase of train_step by default)
    sample(n, seed, labels, **controls) -> Samples         deterministic for a seed
    evaluate(data, cache_dir) -> {"metric": float, ...}    at the end of training
    validate(data)     -> {"elbo": float, ...}              cheap; at every log step
    on_new_best(data)                                        when validation finds a new best

and, where the family has them:

    SampleControls          a dataclass of extra sampling controls (truncation, steps, ...);
                            the CLI's `studio sample --set k=v` and the UI's forms read it
    interpolate(seed_a, seed_b, frames, labels, **controls) -> Samples   frames in order
    log_warnings(means, step) -> ["mode collapse: ..."] checked at every log step
    tools                   family-specific actions (`studio tool RUN NAME`), see `Tool`

The trainer owns everything else: devices, precision, the loop, seeding, logging, sampling
grids, checkpoints, resume, stop and the NaN guard.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..data import ImageData, TextData
from ..data.language import LabelledTextData, TextPairsData
from ..data.paired import PairedImageData
from ..data.unpaired import UnpairedImageData
from .config import EMA_WARM_UP_POWER
from .errors import StudioError
from .phases import Phase
from .spec import PipelineSpec, Tool, adopt  # noqa: F401 - Tool: families import it from here


@dataclass
class Samples:
    """What `sample` returns: images (N, C, H, W) in [0, 1], or texts."""
    images: np.ndarray | None = None
    labels: np.ndarray | None = None      # (N,) class per image, for conditional models
    texts: list[str] | None = None
    # Grid columns where the images come in groups (pix2pix: input | output | target), for
    # whoever draws the grid; None: a square-ish grid.
    columns: int | None = None


@dataclass
class ToolContext:
    """What a tool may use besides its options: input images, the run's data set (loaded on
    first use: it can take seconds), and a cache folder (e.g. for the quality judge)."""
    images: np.ndarray | None                   # (N, C, H, W) in [0, 1], at the model's size
    load_data: Callable[[], ImageData | TextData]
    cache_dir: Path
    # The input files as given, for a tool that reads them at another size than the model's
    # (super-resolution's upscale reads them at a quarter of it, and refuses a wrong one).
    paths: tuple[str, ...] = ()


@dataclass
class ToolResult:
    """What a tool returns: any of a picture grid, a plot, numbers, class probabilities, text."""
    images: np.ndarray | None = None            # (N, C, H, W) in [0, 1], shown as a grid
    columns: int | None = None                  # grid columns (e.g. input | reconstruction)
    figure_png: bytes | None = None             # a finished plot
    values: dict[str, Any] | None = None        # numbers to print / tabulate
    text: str | None = None                     # shown line by line (the page renders
                                                # Markdown in it: a summary's tables)
    # {class name: probability} of one answer (a classifier's): the page draws them as bars,
    # likeliest first; the CLI prints them sorted
    probabilities: dict[str, float] | None = None


def data_info(data: ImageData | TextData) -> dict[str, Any]:
    """The facts about a data set that a model's shape depends on (stored with its weights)."""
    if isinstance(data, PairedImageData):   # "channels": the inputs', what a tool reads files at
        return {"name": data.name, "kind": "paired", "channels": data.input_channels,
                "target_channels": data.target_channels, "image_size": data.image_size,
                "num_classes": data.num_classes, "class_names": list(data.class_names)}
    if isinstance(data, UnpairedImageData):   # "channels": domain A's, "target_channels": B's
        return {"name": data.name, "kind": "unpaired", "channels": data.a_channels,
                "target_channels": data.channels, "image_size": data.image_size,
                "num_classes": data.num_classes, "class_names": list(data.class_names)}
    if isinstance(data, ImageData):
        return {"name": data.name, "kind": "image", "channels": data.channels,
                "image_size": data.image_size, "num_classes": data.num_classes,
                "class_names": list(data.class_names)}
    if isinstance(data, LabelledTextData):
        return {"name": data.name, "kind": "labelled-text", "num_classes": data.num_classes,
                "class_names": list(data.class_names), "train_texts": len(data.train_texts),
                "val_texts": len(data.val_texts)}
    if isinstance(data, TextPairsData):
        return {"name": data.name, "kind": "text-pairs", "train_pairs": len(data.train_pairs),
                "val_pairs": len(data.val_pairs), "held_out_pairs": len(data.held_out),
                "held_out_name": data.held_out_name}
    return {"name": data.name, "kind": "text"}


class Pipeline:
    # The pipeline's torch-free declaration (pipelines/core/spec.py): a class that names one takes
    # its name, Config, SampleControls, tools, train_defaults, presets and data_kind from it.
    spec: ClassVar[PipelineSpec | None] = None
    name: ClassVar[str]
    Config: ClassVar[type]
    data_kind: ClassVar[str] = "image"
    # Changes to TrainerConfig's defaults that suit this family, e.g. {"steps": 3000}.
    train_defaults: ClassVar[dict[str, Any]] = {}
    train_defaults_by_data: ClassVar[dict[str, dict[str, Any]]] = {}
    # Named option sets beside the step multipliers (pipelines/core/presets.py), as plain data:
    # {"gpu": {"config": {model options}, "trainer": {trainer options}}}.
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    # Modules whose exponential moving average is kept and used for sampling, and the power
    # of its warm-up (pipelines/core/config.py's EMA_WARM_UP; 1.0 makes it the plain average
    # of every update's weights until the decay reaches ema_decay).
    ema_modules: ClassVar[tuple[str, ...]] = ()
    ema_warm_up_power: ClassVar[float] = EMA_WARM_UP_POWER
    # Extra sampling controls (a config dataclass), or None when there are none.
    SampleControls: ClassVar[type | None] = None
    # Family-specific actions: reconstruct, latent map, code sweep, ...
    tools: ClassVar[tuple[Tool, ...]] = ()
    # False for models that draw nothing (classifiers): the trainer saves no sample grids.
    draws_samples: ClassVar[bool] = True
    # The validation number that says which weights are best, and whether lower or higher is
    # better, e.g. ("loss", "min"); None keeps only the latest weights (pipelines/core/best.py).
    best_metric: ClassVar[tuple[str, str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("spec") is not None:
            adopt(cls, cls.spec)

    def __init__(self, config: Any, info: dict[str, Any]):
        self.config = config
        self.info = info
        self.modules: dict[str, torch.nn.Module] = self.build()

    # --- what a family writes --------------------------------------------------------------
    def build(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_tensors(self, data: ImageData | TextData) -> dict[str, torch.Tensor]:
        """The training split as equal-length tensors; the trainer shuffles and batches them."""
        return {"images": torch.from_numpy(data.train_images),
                "labels": torch.from_numpy(data.train_labels)}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int, seed: int, labels: Any = None, **controls: Any) -> Samples:
        raise NotImplementedError

    def interpolate(self, seed_a: int, seed_b: int, frames: int, labels: Any = None,
                    **controls: Any) -> Samples:
        raise StudioError(f"{self.name} cannot interpolate between seeds")

    def evaluate(self, data: ImageData | TextData, cache_dir: Path) -> dict[str, float]:
        """Quality numbers at the end of training (with the sampling weights swapped in)."""
        return {}

    def validate(self, data: ImageData | TextData) -> dict[str, float]:
        """Cheap numbers on the validation split, logged as val/<name> at every log step."""
        return {}

    def sampling_statistics(self) -> contextlib.AbstractContextManager:
        """A context entered with the sampling weights in place (the EMA's, eval mode) around
        every use of them, saving included: inside it, statistics the modules keep beside
        their weights suit those weights (a GAN's batch norm, recomputed for its EMA
        generator), and they are put back on leaving, so that training never sees them.
        Nothing by default."""
        return contextlib.nullcontext()

    def on_new_best(self, data: ImageData | TextData) -> None:
        """Called with the sampling weights in place when validation has just found them the
        best so far, before they are saved as the run's best: refit what sampling derives
        from the weights and the training data (a VAE's mixture over its latents) so that
        the saved file carries it. Nothing by default."""

    def log_warnings(self, means: dict[str, float], step: int) -> list[str]:
        """Plain-words warnings about the means logged at `step` (e.g. mode collapse)."""
        return []

    def get_tool(self, name: str) -> Tool:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise StudioError(f"{self.name} has no tool {name!r}; it has "
                          f"{', '.join(t.name for t in self.tools) or 'none'}")

    @classmethod
    def describe_data(cls, data: ImageData | TextData, config: Any) -> dict[str, Any]:
        """The `info` the networks are built from, stored in run.json and in every weights
        file's metadata. A family may add what it derives from the data once, at the start of
        a run, e.g. a tokenizer trained on the corpus (as its JSON text), so that sampling and
        resuming never derive it again."""
        return data_info(data)

    def export_ecosystem(self, dest: Path) -> str:
        """Write the family's ecosystem format into `dest` (the run's export/ folder), e.g. a
        diffusers or transformers folder that the library's own `from_pretrained` loads.
        Returns a markdown section for the model card saying what it wrote and how to load it
        with the library alone (a code snippet); the default writes nothing and returns ""."""
        return ""

    @classmethod
    def phases(cls, config: Any) -> list[Phase]:
        """The parts of a run that train different things, in order (pipelines/core/phases.py):
        each names the method its steps call. One phase, "training" (train_step), unless a
        family says otherwise (a latent diffusion model trains its autoencoder first)."""
        return [Phase("training")]

    def schedules(self) -> dict[str, Any]:
        """{optimiser name: pipelines.core.schedules.Schedule}: how each optimiser's learning rate
        moves over the run; the trainer applies them before every step. None listed: each
        keeps the learning rate it was made with."""
        return {}

    def ema_decay(self) -> float:
        return float(getattr(self.config, "ema_decay", 0.0))

    @property
    def device(self) -> torch.device:
        return next(iter(self.modules.values())).parameters().__next__().device
