"""`studio sample`, `studio tool` and `studio classify`: the CLI's commands that use a trained
model rather than train one, and `studio list`, which reads the specs (pipelines/cli.py builds
the parser and dispatches here).

    studio sample <run | model.safetensors> --n 64 --seed 0 --out grid.png   (or .npz, .txt)
    studio sample <run> --interpolate 3 17 --frames 12 --out walk.gif
    studio tool <run> [NAME] [--input a.png ...] [--set k=v] [--out result.png | .json]
    studio classify --input digit.png [--json]
    studio list [PIPELINE]

Torch is imported only inside the commands that need it (not `list`), so `studio --help`
stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path

from .core.config import check_seed, describe, parse_set_args
from .core.errors import StudioError
from .core.presets import family_presets
from .registry import get_entry, list_pipelines
from .core.runs import runs_dir_from_env


def cmd_classify(args) -> int:
    import numpy as np
    from PIL import Image

    from .classifiers.classify import classify_image, format_table
    from .data.images import bomb_guard, check_image_pixels
    try:
        with bomb_guard(args.input), Image.open(args.input) as image:
            check_image_pixels(image, args.input)   # from the header, before decoding
            pixels = np.asarray(image.convert("RGBA"))
    except (OSError, ValueError) as e:
        raise StudioError(f"cannot read image {args.input}: {e}") from None
    answers = classify_image(pixels, args.runs_dir, data=None if args.data == "all" else args.data)
    print(json.dumps(answers, indent=2) if args.json else format_table(answers))
    return 0


def cmd_sample(args) -> int:
    from .services.loading import load_for_sampling
    from .services.sampling import parse_controls
    out = _output_path(args.out)
    suffix = out.suffix.lower() if out else ""
    allowed = (".png", ".npz", ".gif") if args.interpolate else (".png", ".npz", ".txt")
    if out is not None and suffix not in allowed:
        raise StudioError(f"--out must end in {' or '.join(allowed)}, not {out.name!r}"
                          + ("" if args.interpolate else " (.gif goes with --interpolate)"))
    if not 1 <= args.n <= 4096:
        raise StudioError("--n must be between 1 and 4096")
    if args.interpolate and not 2 <= args.frames <= 256:
        raise StudioError("--frames must be between 2 and 256")
    check_seed(args.seed, "--seed")
    for name, seed in zip(("SEED_A", "SEED_B"), args.interpolate or ()):
        check_seed(seed, f"--interpolate {name}")
    pipe = load_for_sampling(args.run, args.runs_dir, step=args.step)
    values = parse_set_args(args.set)
    if args.prompt is not None:
        values["prompt"] = args.prompt
    controls = parse_controls(pipe, values)
    if args.interpolate:
        seed_a, seed_b = args.interpolate
        samples = pipe.interpolate(seed_a, seed_b, args.frames, labels=args.label, **controls)
    else:
        samples = pipe.sample(args.n, seed=args.seed, labels=args.label, **controls)
    upscaler = None
    if args.upscale_with:
        from .core.runs import RunFolder
        from .services.sampling import upscale_samples
        upscaler = RunFolder.resolve(args.upscale_with, args.runs_dir).id
        samples = upscale_samples(samples, load_for_sampling(args.upscale_with, args.runs_dir),
                                  upscaler)
    run = None     # a run's samples are kept in its runs folder's history (core/generations)
    if not args.interpolate and Path(args.run).suffix != ".safetensors":
        from .core.runs import RunFolder
        run = RunFolder.resolve(args.run, args.runs_dir)
    settings = {"pipeline": pipe.name, "run": run.id if run else None,
                "checkpoint": args.step, "weights_step": pipe.step, "seed": args.seed,
                "count": args.n, "label": args.label, "index": None, "controls": controls,
                "upscale_with": upscaler}
    if samples.texts is not None:
        if run is not None:
            _keep_text(run, samples.texts, settings)
        return _write_texts(samples.texts, out)
    if out is None or suffix == ".txt":
        raise StudioError("this model draws images: pass --out grid.png (or samples.npz, or "
                          "walk.gif with --interpolate)")
    # the batch's settings in the PNG: the Images tab restores them (core/png_settings.py)
    _write_images(samples, out, walk=bool(args.interpolate),
                  settings=settings if run is not None else None)
    if run is not None:
        _keep_grid(run, samples, settings)
    print(f"wrote {len(samples.images)} {'frames' if args.interpolate else 'samples'} to {out}")
    return 0


def _keep_grid(run, samples, settings: dict) -> None:
    """The batch's grid, with its settings, in the history (the Images tab's History)."""
    from .core import generations
    from .services.imaging import save_grid
    folder = generations.new_folder(run.path.parent, run.id,
                                    f"seed{settings['seed']}-n{settings['count']}")
    save_grid(samples.images, folder / generations.IMAGE_MARK, labels=samples.labels,
              nrow=samples.columns, settings=settings)
    generations.prune(run.path.parent)


def _keep_text(run, texts: list[str], settings: dict) -> None:
    """The texts, with their settings, in the history (the Text tab's History)."""
    from .core import generations
    generations.record_text(run.path.parent, run.id, "write", "\n\n---\n\n".join(texts),
                            {k: settings[k] for k in ("seed", "count", "checkpoint",
                                                      "controls")})


def cmd_chat(args) -> int:
    """`studio chat RUN`: one line a turn from stdin, the model's reply streamed to stdout."""
    import sys
    from .core import generations
    from .core.run_setup import load_data_for
    from .core.runs import RunFolder
    from .services.loading import load_for_sampling
    from .services.sampling import parse_controls
    from .text.chat import check_turns, speaker_format, stream_reply, transcript
    check_seed(args.seed, "--seed")
    run = RunFolder.resolve(args.run, args.runs_dir)
    pipe = load_for_sampling(args.run, args.runs_dir, step=args.step)
    if not callable(getattr(pipe, "stream", None)):
        raise StudioError(f"{pipe.name} does not write text, so it cannot chat")
    controls = parse_controls(pipe, {"max_new_tokens": "300", **parse_set_args(args.set)})
    found = speaker_format(load_data_for(type(pipe), pipe.config, pipe.info["name"]).train_text)
    names = found["speakers"]
    you, them, style = args.you or names[0], args.them or names[1], found["style"]
    check_turns([{"speaker": you, "text": "-"}], you, them, style)   # the names, checked now
    interactive = sys.stdin.isatty()
    print(f"{run.id}: you speak as {you}, the model answers as {them} ({style}). "
          f"An empty line or Ctrl-D ends the chat.", flush=True)
    turns: list[dict[str, str]] = []
    folder = None
    while True:
        try:
            line = input(f"{you}> " if interactive else "")
        except EOFError:
            break
        if not line.strip():
            break
        turns.append({"speaker": you, "text": line.strip()})
        replies = sum(t["speaker"] == them for t in turns)
        print(f"{them}. ", end="", flush=True)
        shown = ""
        for reply in stream_reply(pipe, args.seed + replies, turns, them, style, controls):
            if reply.startswith(shown):
                print(reply[len(shown):], end="", flush=True)
                shown = reply
        print(flush=True)
        turns.append({"speaker": them, "text": shown})
        settings = {"seed": args.seed, "checkpoint": args.step, "you": you, "them": them,
                    "style": style, "controls": controls, "turns": turns}
        folder = generations.record_text(run.path.parent, run.id, "chat",
                                         transcript(turns, style), settings, folder=folder)
    if folder is not None:
        print(f"kept in {folder}")
    return 0


def _output_path(out: str | None) -> Path | None:
    """--out as a path whose folder exists: a typo must not create a tree of folders."""
    if not out:
        return None
    path = Path(out).expanduser()
    if not path.parent.is_dir():
        raise StudioError(f"--out {out}: the folder {path.parent} does not exist; create it "
                          f"first or write somewhere else")
    return path


def _write_texts(texts: list[str], out: Path | None) -> int:
    """Print the texts, or write them to a .txt file separated by `---` lines."""
    joined = "\n\n---\n\n".join(texts)
    if out is None:
        print(joined)
        return 0
    if out.suffix.lower() != ".txt":
        raise StudioError(f"this model writes text: --out must end in .txt, not {out.name!r}")
    from .core.atomic_files import atomic_write_text
    atomic_write_text(out, joined + "\n")
    print(f"wrote {len(texts)} samples to {out}")
    return 0


def _write_images(samples, out: Path, walk: bool = False, settings: dict | None = None) -> None:
    import io

    import numpy as np
    from .services.imaging import save_gif, save_grid
    from .core.atomic_files import atomic_write_bytes
    suffix = out.suffix.lower()
    if suffix == ".gif":
        save_gif(samples.images, out)
    elif suffix == ".png":
        # A walk is one row per walk, in order; a batch is a square-ish grid.
        save_grid(samples.images, out, labels=None if walk else samples.labels,
                  nrow=len(samples.images) if walk else samples.columns, settings=settings)
    else:
        buf = io.BytesIO()
        arrays = {"images": samples.images.astype(np.float32)}
        if samples.labels is not None:
            arrays["labels"] = samples.labels.astype(np.int64)
        np.savez(buf, **arrays)
        atomic_write_bytes(out, buf.getvalue())


def cmd_tool(args) -> int:
    from .services.loading import load_for_sampling
    from .core.atomic_files import atomic_write_bytes, atomic_write_text
    from .services.sampling import run_tool
    from .classic.tools import fitted_run
    pipe = (fitted_run(args.run, args.runs_dir)
            or load_for_sampling(args.run, args.runs_dir, step=args.step))
    if not args.name:
        if not pipe.tools:
            print(f"{pipe.name} has no tools")
        for tool in pipe.tools:
            options = " ".join(f"{s.name}={s.default}" for s in describe(tool.Options))
            print(f"{tool.name:<14} {tool.help}" + (f"\n{'':<14} options: {options}" if options else ""))
        return 0
    out = _output_path(args.out)
    if out is not None and out.suffix.lower() not in (".png", ".json"):
        raise StudioError(f"--out must end in .png or .json, not {out.name!r}")
    result = run_tool(pipe, args.name, parse_set_args(args.set), input_paths=args.input,
                      cache_dir=runs_dir_from_env(args.runs_dir) / ".judges")
    if out is not None and out.suffix.lower() == ".json":
        numbers = dict(result.values or {})
        if result.probabilities:
            numbers["probabilities"] = result.probabilities
        atomic_write_text(out, json.dumps(numbers, indent=2))
    elif out is not None:
        if result.figure_png is not None:
            atomic_write_bytes(out, result.figure_png)
        elif result.images is not None:
            from .services.imaging import save_grid
            save_grid(result.images, out, nrow=result.columns)
        else:
            raise StudioError(f"tool {args.name} draws no picture; use --out result.json")
    if result.text:
        print(result.text)
    probabilities = result.probabilities or {}
    for name, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        print(f"{p:8.2%}  {name}")               # likeliest first, as the page's bars
    for key, value in (result.values or {}).items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if out is not None:
        print(f"wrote {out}")
    return 0


def cmd_inspect(args) -> int:
    from .cli_parser import split_overrides, with_preset
    from .core.runs import RunFolder
    from .services import inspector
    if args.target in {entry.name for entry in list_pipelines()}:
        config, trainer = with_preset(args.target, args.preset,
                                      *split_overrides(args.target, args), data=args.data)
        report = inspector.inspect_pipeline(args.target, args.data, config, trainer)
    else:
        if args.data or args.set or args.preset:
            raise StudioError(f"{args.target!r} is not a pipeline; a run is inspected with its "
                              f"own data and options (leave out --data, --set and --preset)")
        try:
            run = RunFolder.resolve(args.target, args.runs_dir)
        except StudioError:
            raise StudioError(f"{args.target!r} is neither a pipeline (`studio list`) nor a "
                              f"run (`studio runs`)") from None
        report = inspector.inspect_run(run)
    print(json.dumps(report, indent=1) if args.json else inspector.as_text(report))
    return 0


def cmd_layers(args) -> int:
    from .services import layer_calculator as calc
    if args.stack:
        print(calc.as_text(calc.calculate(args.stack, args.input), args.input))
        return 0
    for name, (size, stack, expect) in calc.EXAMPLES.items():
        print(f"{name}\n  {stack.replace(chr(10), '; ')}  (input {size})\n  {expect}")
        print("  " + calc.as_text(calc.calculate(stack, size), size).replace("\n", "\n  "))
    return 0


def cmd_list(args) -> int:
    from .data import BUNDLED_DATASETS
    if args.pipeline:
        return _show_pipeline(args.pipeline)
    print("pipelines (`studio list NAME` shows one's options, controls and tools):")
    for entry in list_pipelines():
        print(f"  {entry.name:<16} {entry.summary}")
    print("data sets:")
    for name, kind, summary in BUNDLED_DATASETS:
        print(f"  {name:<16} {kind:<6} {summary}")
    print(f"  {'folder:PATH':<16} image  your images; subfolders are classes (a .zip of one works too)")
    print(f"  {'text:PATH':<16} text   your UTF-8 text file")
    from .data.tabular import BUNDLED_TABLES   # torch-free; numpy only
    print("tables (the classic models):")
    for name, (task, summary) in BUNDLED_TABLES.items():
        print(f"  {name:<16} table  {summary} ({task})")
    print(f"  {'csv:PATH':<16} table  your CSV file (--set target=COLUMN names what to predict)")
    return 0


def _show_pipeline(name: str) -> int:
    cls = get_entry(name)   # the spec: no torch to list options
    print(f"{cls.name}: {cls.summary}")
    print("trainer defaults: " + " ".join(f"--{k.replace('_', '-')} {v}"
                                          for k, v in cls.train_defaults.items()))
    for data, changes in cls.train_defaults_by_data.items():
        print(f"  on {data}: " + " ".join(f"--{k.replace('_', '-')} {v}"
                                          for k, v in changes.items()))
    presets = family_presets(cls)
    if presets:
        gpu = presets.get("gpu", {"config": {}, "trainer": {}})
        print(f"presets (studio train --preset NAME): {', '.join(presets)}; gpu sets "
              + " ".join(f"{k}={v}" for k, v in {**gpu["config"], **gpu["trainer"]}.items()))
    print("options (studio train --set key=value):")
    for spec in describe(cls.Config):
        print(f"  {spec.name}={spec.default!s:<14} {spec.help}")
    if cls.SampleControls is not None:
        print("sampling controls (studio sample --set key=value):")
        for spec in describe(cls.SampleControls):
            print(f"  {spec.name}={spec.default!s:<14} {spec.help}")
    for tool in cls.tools:
        options = " ".join(f"{s.name}={s.default}" for s in describe(tool.Options))
        print(f"tool {tool.name}: {tool.help}" + (f" Options: {options}" if options else ""))
    return 0
