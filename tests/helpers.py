"""Small runs shared by the tests: seconds on a CPU, deterministic."""

import socket
import time

from pipelines.core.runs import RunFolder
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

# Tiny diffusion models (width 8, 8 px, T = 50): the diffusion tests' options. ddpm-text is a
# latent model: its autoencoder trains for the first 3 steps.
DIFFUSION_TINY = {"width": 8, "num_train_timesteps": 50, "image_size": 8, "lr_warmup_steps": 2}
DIFFUSION_TINY_TEXT = {**DIFFUSION_TINY, "text_width": 16, "text_layers": 1,
                       "autoencoder_width": 4, "autoencoder_steps": 3}
TINY = {"steps": 8, "batch_size": 16, "log_every": 1, "sample_every": 4,
        "checkpoint_every": 4, "sample_count": 10, "seed": 3, "final_eval": False}
# The text tests' trainer (test_text.py, test_text_input.py). sample_count 1: a periodic sample
# is 400 new tokens, the slowest part of a tiny run.
TEXT_TRAINER = {"steps": 6, "batch_size": 8, "log_every": 1, "sample_every": 0,
                "checkpoint_every": 3, "seed": 4, "final_eval": False, "sample_count": 1}


def tiny_run(runs_dir, name="t", data="digits", callbacks=(), **trainer):
    run = start_run("dcgan", data, config_overrides={"width": 8, "z_dim": 8},
                    trainer_overrides={**TINY, **trainer}, runs_dir=runs_dir, name=name)
    status = train_run(run, callbacks=callbacks)
    return run, status


def built_now_and_before(run, key):
    """The run's pipeline built from its run.json, and as a run begun before data_info held
    `key` (a choice picked once when the run began, e.g. a net's width) builds it."""
    from pipelines.core.config import from_dict
    from pipelines.registry import load_pipeline_class
    info = run.info()
    cls = load_pipeline_class(info["pipeline"])
    config = from_dict(cls.Config, info["config"])
    old = {k: v for k, v in info["data_info"].items() if k != key}
    return cls(config, info["data_info"]), cls(config, old)


def plays_file(folder):
    """A 12,000-character slice of the bundled plays, as a user's text file."""
    from pipelines.data.text import read_shakespeare
    path = folder / "plays.txt"
    path.write_text(read_shakespeare()[:12_000], encoding="utf-8")
    return path


def losses(run, start=0):
    """{step: (loss_d, loss_g)} of the logged steps after `start`."""
    return {r["step"]: (r["loss_d"], r["loss_g"]) for r in run.metrics()
            if "loss_d" in r and r["step"] > start}


def records(run):
    """Every logged line but its wall time: what an exact resume must repeat."""
    return [{k: v for k, v in r.items() if k != "time"} for r in run.metrics()]


def stop_at(runs_dir, step):
    """A trainer callback that asks the run to stop (it saves a checkpoint) at `step`."""
    def callback(kind, event):
        if kind == "log" and event["step"] == step:
            RunFolder(runs_dir / event["run"]).request_stop()
    return callback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    """The first truthy value of predicate(), polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_captioned_folder(root, how: str):
    """Two classes of drawn squares, each image captioned by a sidecar .txt, metadata.jsonl
    or metadata.csv."""
    import json

    import numpy as np
    from PIL import Image
    rows = []
    for cls, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            picture = np.zeros((16, 16, 3), np.uint8)
            picture[4 + i % 3:10 + i % 3, 4:10] = colour
            Image.fromarray(picture).save(root / cls / f"{i}.png")
            caption = f"a {cls} square number {i}"
            if how == "sidecar":
                (root / cls / f"{i}.txt").write_text(caption + "\n")
            else:
                rows.append({"file_name": f"{cls}/{i}.png", "text": caption})
    if how == "jsonl":
        (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif how == "csv":
        (root / "metadata.csv").write_text("file_name,text\n" + "".join(
            f'{r["file_name"]},"{r["text"]}"\n' for r in rows))
