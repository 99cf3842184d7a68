"""Time to quality of the four text models: RNN, LSTM, GRU and transformer, each with about as
many parameters as the transformer's defaults, each trained for the same wall time.

    python bench/text_compare.py [--seconds 300] [--data shakespeare]
                                 [--models transformer lstm gru rnn] [--out bench/results]

Every model trains through the real trainer with its own defaults (the same char tokenizer,
context, batch, warm-up, AdamW), except two things made equal for all: the recurrent nets'
hidden size is chosen so their parameter count is the nearest to the transformer's, and the
learning rate stays constant after warm-up (a wall-time budget fixes no step count for a
cosine decay to end on). A callback asks the run to stop once `--seconds` of training have
passed, as the UI's Stop button would. Then the saved weights are scored on the whole
validation split: loss (nats per token), bits per character, and tokens per second of
training (read from metrics.jsonl after the first, warm-up, log window).

Writes bench/results/text_compare_<device>.json and .md. A smoke test:
    python bench/text_compare.py --seconds 3 --eval-chars 2000 --log-every 2 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from pipelines.registry import load_pipeline_class
from pipelines.text.models import parameter_count
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def recurrent_parameters(cell: str, vocab: int, embed: int, hidden: int, layers: int) -> int:
    """Embedding + stacked cell (two weight matrices and two biases per gate) + linear head."""
    g = GATES[cell]
    first = g * (embed * hidden + hidden * hidden + 2 * hidden)
    rest = (layers - 1) * g * (2 * hidden * hidden + 2 * hidden)
    return vocab * embed + first + rest + hidden * vocab + vocab


def matched_hidden(cell: str, vocab: int, embed: int, layers: int, target: int) -> int:
    return min(range(8, 4097, 8), key=lambda h: abs(
        recurrent_parameters(cell, vocab, embed, h, layers) - target))


def transformer_size(data) -> tuple[int, int]:
    cls = load_pipeline_class("transformer")
    config = cls.Config()
    info = cls.describe_data(data, config)
    return parameter_count(cls(config, info).model), info["vocab_size"]


def tokens_per_second(run, batch: int, context: int) -> float:
    logs = [r for r in run.metrics() if "loss" in r]
    first, last = logs[min(1, len(logs) - 2)], logs[-1]  # skip the warm-up window
    return (last["step"] - first["step"]) * batch * context / (last["time"] - first["time"])


def measure(name: str, data_spec: str, data, overrides: dict, seconds: float,
            eval_chars: int, log_every: int, runs_dir: Path) -> dict:
    run = start_run(name, data_spec, runs_dir=runs_dir, name=f"compare-{name}",
                    config_overrides={"decay_steps": 0, "val_tokens": 1024, **overrides},
                    trainer_overrides={"steps": 10_000_000, "log_every": log_every, "sample_every": 0,
                                       "checkpoint_every": 0, "final_eval": False})
    clock = {}

    def stop_after_budget(kind, event):
        if kind == "start":
            clock["t0"] = time.perf_counter()
        # at least three log lines: the warm-up window and two measured ones
        elif (kind == "log" and time.perf_counter() - clock["t0"] > seconds
              and event["step"] >= 3 * log_every):
            run.request_stop()

    train_run(run, callbacks=(stop_after_budget,))
    info = run.info()
    pipe = load_for_sampling(run.path, device="cpu")
    text = data.val_text[:eval_chars] if eval_chars else data.val_text
    with torch.no_grad():
        score = pipe.score(text)
        sample = pipe.sample(1, seed=0, prompt="", max_new_tokens=300).texts[0]
    batch, context = info["trainer"]["batch_size"], info["config"]["context"]
    return {"model": name, "parameters": parameter_count(pipe.model),
            "config": {k: info["config"][k] for k in overrides if k in info["config"]},
            "steps": info["step"], "train_seconds": info.get("elapsed_seconds"),
            "tokens_per_sec": round(tokens_per_second(run, batch, context), 1),
            "val_loss": round(score["loss"], 4), "val_bpc": round(score["bpc"], 4),
            "val_characters": int(score["characters"]), "sample": sample}


def markdown(rows: list[dict], meta: dict) -> str:
    ref = rows[0]["tokens_per_sec"]
    lines = [f"# Text models at equal wall time ({meta['seconds']} s each, {meta['data']})", "",
             f"{meta['device']}, torch {meta['torch']}, {meta['threads']} thread(s). Validation "
             f"bits per character on {rows[0]['val_characters']:,} characters of the validation "
             "split; tokens/s of training (ratio against the first row, same run).", "",
             "| model | parameters | steps | tokens/s | ratio | val loss (nats/token) | val bpc |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['parameters']:,} | {r['steps']:,} | "
                     f"{r['tokens_per_sec']:,.0f} | {r['tokens_per_sec'] / ref:.2f} | "
                     f"{r['val_loss']:.3f} | {r['val_bpc']:.3f} |")
    lines += ["", "Samples (seed 0, temperature 0.8, first 300 tokens):", ""]
    for r in rows:
        lines += [f"**{r['model']}**", "", "```", r["sample"].strip("\n")[:600], "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="Training time per model.")
    ap.add_argument("--data", default="shakespeare")
    ap.add_argument("--models", nargs="+", default=["transformer", "lstm", "gru", "rnn"],
                    choices=["transformer", "lstm", "gru", "rnn"])
    ap.add_argument("--eval-chars", type=int, default=0,
                    help="Score only the first N validation characters (0: all; smoke tests).")
    ap.add_argument("--log-every", type=int, default=25,
                    help="Log (and check the clock) every N steps; at least 3 logs per model.")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()

    data = load_data(args.data)
    target, vocab = transformer_size(data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            overrides = {}
            if name != "transformer":
                cfg = load_pipeline_class(name).Config()
                overrides = {"hidden_size": matched_hidden(name, vocab, cfg.embed_dim,
                                                           cfg.layers, target)}
            rows.append(measure(name, args.data, data, overrides, args.seconds,
                                args.eval_chars, args.log_every, Path(tmp)))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "sample"}), flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    meta = {"seconds": args.seconds, "data": args.data, "device": device,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "transformer_parameters": target}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"text_compare_{device}.json").write_text(json.dumps({**meta, "rows": rows},
                                                                indent=2))
    (out / f"text_compare_{device}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
