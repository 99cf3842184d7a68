"""The `studio` command's argument parser (one sub-command each, the trainer flags generated
from TrainerConfig) and what turns its arguments into options: --set split between the
pipeline and the trainer, a preset under them. pipelines/cli.py and cli_models.py run the
commands."""

from __future__ import annotations

import argparse

from .core.config import TrainerConfig, describe, parse_set_args
from .core.errors import StudioError
from .core.presets import preset_overrides
from .registry import get_entry


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, like every other input error
        self.exit(2, f"studio: error: {message} (see `{self.prog} --help`)\n")


def _add_trainer_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    for spec in describe(TrainerConfig):
        if spec.name in skip:
            continue
        flag = "--" + spec.name.replace("_", "-")
        text = spec.help.replace("%", "%%")      # argparse formats help with %: "5%" is text
        if spec.type is bool:
            p.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                           default=None, help=text)
        else:
            p.add_argument(flag, dest=spec.name, type=str, default=None,
                           metavar=spec.type.__name__.upper(), choices=None,
                           help=f"{text} (default {spec.default}; a pipeline may change it: "
                                "`studio list`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="Generative Media Studio: train and sample models.")
    parser.add_argument("--runs-dir", default=None,
                        help="Folder of run folders (default $STUDIO_RUNS_DIR or ./checkpoints).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="Start a new run.")
    p.add_argument("pipeline", help="Pipeline name; `studio list` shows them.")
    p.add_argument("--data", required=True,
                   help="digits | shapes | shakespeare | folder:PATH (or a .zip) | text:PATH")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="Set a pipeline (or trainer) option; repeatable.")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="quick-look, default or long: a tenth, one or three times the "
                        "family's default steps (sized for a CPU); gpu: a bigger model, batch "
                        "and step count for one modern GPU, about 5 minutes. --set and the "
                        "flags win over it; `studio list PIPELINE` shows what gpu sets.")
    p.add_argument("--name", help="A name for the run folder (default pipeline-data).")
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    p.add_argument("--queue", action="store_true",
                   help="Only create the run (status queued) after checking everything, and "
                        "exit; `studio resume RUN` (or the studio's job queue) trains it.")
    p.add_argument("--init-from", default=None, metavar="PATH",
                   help="Text transformer: start from a local transformers causal-LM folder "
                        "(the same as --set init_from=PATH); nothing is downloaded.")
    p.add_argument("--dry-run", action="store_true",
                   help="Build everything as this run would, train a few steps in a temporary "
                        "folder (nothing is kept) and report speed, peak memory, disk per "
                        "checkpoint and the ETA of the whole run.")
    p.add_argument("--dry-run-steps", type=int, default=10, metavar="N",
                   help="Steps the dry run times, after 2 warm-up steps (default 10).")
    _add_trainer_flags(p)

    p = sub.add_parser("resume", help="Continue a stopped, failed or interrupted run.")
    p.add_argument("run", help="Run id or folder.")
    p.add_argument("--steps", type=int, default=None, help="New total step count (to extend it).")
    p.add_argument("--quiet", action="store_true")
    _add_trainer_flags(p, skip=("steps",))  # e.g. a smaller --batch-size after running out of memory

    p = sub.add_parser("sample", help="Draw samples from a trained run.")
    p.add_argument("run", help="Run id, run folder, or a studio .safetensors file.")
    p.add_argument("--n", type=int, default=64, help="Number of samples.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="label", type=int, default=None,
                   help="Class index for conditional models (default: cycle through classes).")
    p.add_argument("--step", type=int, default=None, help="Use the checkpoint of this step.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="A sampling control of the model's family, e.g. truncation=0.7 "
                        "(`studio list` shows each family's); repeatable.")
    p.add_argument("--interpolate", nargs=2, type=int, metavar=("SEED_A", "SEED_B"),
                   help="Walk the latent space from SEED_A's sample to SEED_B's (slerp).")
    p.add_argument("--frames", type=int, default=10, help="Frames of an --interpolate walk.")
    p.add_argument("--prompt", default=None,
                   help="The prompt, for families that take one (text models, text-to-image "
                        "diffusion); the same as --set prompt=...")
    p.add_argument("--upscale-with", metavar="SR_RUN", default=None,
                   help="Upscale the samples with a trained super-resolution run (srresnet, "
                        "srgan: 4x), a run id of the same runs folder.")
    p.add_argument("--out", default=None, help="grid.png, samples.npz (images as floats "
                   "in [0,1], shape (N, C, H, W), and labels for conditional models), or "
                   "walk.gif (with --interpolate); for text models samples.txt, or leave it "
                   "out to print them.")

    p = sub.add_parser("chat", help="Chat with a text model in its corpus's format: you speak "
                       "as one character, it answers as another (one line a turn; an empty "
                       "line or Ctrl-D ends it). Kept in the Text tab's History.")
    p.add_argument("run", help="Run id or run folder of a text model.")
    p.add_argument("--as", dest="you", default=None,
                   help="Your character (default: the corpus's most frequent speaker).")
    p.add_argument("--to", dest="them", default=None,
                   help="The model's character (default: the second most frequent).")
    p.add_argument("--seed", type=int, default=0, help="Reply k of the chat uses seed + k.")
    p.add_argument("--step", type=int, default=None, help="Use the checkpoint of this step.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="A sampling control, e.g. temperature=0.7 (default max_new_tokens=300).")

    p = sub.add_parser("tool", help="Run a family's tool on a trained model (leave out NAME "
                       "to list them).")
    p.add_argument("run", help="Run id, run folder, or a studio .safetensors file.")
    p.add_argument("name", nargs="?", help="The tool; leave out to list the model's tools.")
    p.add_argument("--input", nargs="+", metavar="IMAGE", help="Input image files.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="A tool option.")
    p.add_argument("--step", type=int, default=None, help="Use the checkpoint of this step.")
    p.add_argument("--out", help="Where to write the picture (.png); numbers are printed, "
                   "or written as JSON when --out ends in .json.")

    p = sub.add_parser("eval", help="Judge a run's samples: Fréchet distance and KID on the "
                       "studio's classifier features, next to its floor.")
    p.add_argument("run")
    p.add_argument("--step", type=int, default=None, help="Use the checkpoint of this step.")
    p.add_argument("--data", default=None, help="Text models: score all of this text instead "
                   "of the run's validation split (text:FILE or shakespeare).")

    p = sub.add_parser("classify", help="Every finished classifier's prediction for one "
                       "image (a drawn digit by default).")
    p.add_argument("--input", required=True, help="The image file (.png, .jpg, ...).")
    p.add_argument("--data", default="digits", help="Only runs on this data set (default "
                   "digits); all: every image classifier run.")
    p.add_argument("--json", action="store_true", help="JSON with every class's probability.")

    p = sub.add_parser("runs", help="List runs.")
    p.add_argument("--json", action="store_true", help="JSON instead of a table.")

    p = sub.add_parser("export", help="Write export/: weights, config and model card.")
    p.add_argument("run")

    p = sub.add_parser("inspect", help="Every network of a pipeline (before training) or of a "
                       "run, layer by layer: output shapes, parameters, multiply-adds, the "
                       "output-size arithmetic of conv layers, from one real training step.")
    p.add_argument("target", metavar="PIPELINE_OR_RUN",
                   help="A pipeline name (`studio list`), or a run id or folder.")
    p.add_argument("--data", default=None, help="A pipeline's data set (default: its bundled "
                   "example, e.g. digits); shapes follow from it.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="A pipeline or trainer option, as for train (batch_size sets the "
                   "shapes' first dimension).")
    p.add_argument("--preset", default=None, help="A preset's options, as for train.")
    p.add_argument("--json", action="store_true", help="The whole report as JSON.")

    p = sub.add_parser("layers", help="The layer calculator: each layer's output shape and "
                       "parameters for a typed stack, e.g. \"conv 16 k=3 p=1; pool k=2; dense "
                       "10\" --input 3x32x32; without a stack, the worked examples.")
    p.add_argument("stack", nargs="?", help="conv OUT k=K [s= p= d=], pool k=K [s= p=], "
                   "flatten, dense OUT; separated by ';' or new lines.")
    p.add_argument("--input", default="3x32x32", help="channels x height x width, or a "
                   "number of features (default 3x32x32).")

    p = sub.add_parser("list", help="Pipelines and the bundled data sets; with a pipeline "
                       "name, its options, sampling controls and tools.")
    p.add_argument("pipeline", nargs="?", help="Show this pipeline's options in full.")
    return parser


def split_overrides(pipeline: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """--set pairs go to the pipeline config, or to the trainer if it has that key."""
    pipeline_keys = {s.name for s in describe(get_entry(pipeline).Config)}
    trainer_keys = {s.name for s in describe(TrainerConfig)}
    config, trainer = {}, {}
    for key, value in parse_set_args(args.set).items():
        if key in trainer_keys and key not in pipeline_keys:
            trainer[key] = value
        else:
            config[key] = value  # unknown keys are refused by the config with the valid list
    for key in trainer_keys:
        if getattr(args, key, None) is not None:
            trainer[key] = getattr(args, key)
    if getattr(args, "init_from", None) is not None:
        if "init_from" not in pipeline_keys:
            raise StudioError(f"--init-from is for the text transformer; {pipeline} has no "
                              f"pretrained start")
        config["init_from"] = args.init_from
    return config, trainer


def with_preset(pipeline: str, preset: str | None, config: dict, trainer: dict,
                data: str | None = None) -> tuple[dict, dict]:
    """The preset's options (on that data set) under the user's own: --set and the flags
    win."""
    if preset is None:
        return config, trainer
    preset_config, preset_trainer = preset_overrides(get_entry(pipeline), preset, data)
    return {**preset_config, **config}, {**preset_trainer, **trainer}
