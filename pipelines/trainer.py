"""The one training loop, on Accelerate. Every family runs through `train_run`.

    start_run(...)      validate everything, then create checkpoints/<run-id>/ (status queued)
    train_run(run)      train it: fresh, or resumed from its last complete checkpoint

What the loop does each step: take the next batch (a fixed, seeded permutation per epoch, so
the data position is two integers), call the family's `train_step` under autocast, update the
EMA, and every N steps log, sample a grid, or checkpoint. It stops cleanly on SIGINT/SIGTERM
or a STOP file (saves, marks the run `stopped`), and a non-finite loss stops it as `failed`
without touching the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from . import checkpoints as ckpt
from .base import Pipeline
from .config import TrainerConfig, apply_overrides, config_hash, from_dict, to_dict
from .data import ImageData, TextData, load_data
from .errors import StudioError
from .imaging import save_grid
from .model_card import write_model_card
from .registry import get_entry, load_pipeline_class
from .runs import RunFolder, atomic_write_bytes, atomic_write_text, runs_dir_from_env

Callback = Callable[[str, dict[str, Any]], None]


class TrainingFailed(Exception):
    """The run could not go on (e.g. a non-finite loss); its message says why and what to try."""


# --- setting up --------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "accelerate", "diffusers", "transformers", "safetensors"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def make_configs(pipeline_cls: type, config_overrides: dict[str, Any],
                 trainer_overrides: dict[str, Any]) -> tuple[Any, TrainerConfig]:
    config = apply_overrides(pipeline_cls.Config(), config_overrides)
    trainer = apply_overrides(TrainerConfig(), pipeline_cls.train_defaults)
    trainer = apply_overrides(trainer, trainer_overrides)
    return config, trainer


def load_data_for(pipeline_cls: type, config: Any, spec: str) -> ImageData | TextData:
    size = getattr(config, "image_size", 0) or None
    data = load_data(spec, image_size=size) if pipeline_cls.data_kind == "image" else load_data(spec)
    if data.kind != pipeline_cls.data_kind:
        raise StudioError(f"pipeline {pipeline_cls.name} needs {pipeline_cls.data_kind} data, "
                          f"but {spec!r} is {data.kind} data")
    return data


def start_run(pipeline: str, data: str, *, config_overrides: dict[str, Any] | None = None,
              trainer_overrides: dict[str, Any] | None = None, runs_dir: Any = None,
              name: str | None = None) -> RunFolder:
    """Check the pipeline, data and options, then create the run folder. Nothing is written
    if any of them is wrong."""
    get_entry(pipeline)
    cls = load_pipeline_class(pipeline)
    config, trainer = make_configs(cls, config_overrides or {}, trainer_overrides or {})
    dataset = load_data_for(cls, config, data)
    described = cls.describe_data(dataset, config)
    cls(config, described)  # builds the networks: a config that can't is refused here
    info = {
        "pipeline": pipeline, "data": data, "status": "queued", "step": 0,
        "total_steps": trainer.steps, "seed": trainer.seed,
        "config": to_dict(config), "trainer": to_dict(trainer),
        "data_info": described, "versions": _versions(),
        "config_hash": config_hash(config), "message": "",
    }
    if getattr(dataset, "skipped_files", 0):
        info["message"] = f"{dataset.skipped_files} unreadable files were skipped"
    return RunFolder.create(runs_dir_from_env(runs_dir), name or f"{pipeline}-{data}", info)


@dataclass
class StepContext:
    """Handed to `train_step`: the one way a family takes an optimiser step."""
    accelerator: Accelerator
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float
    step: int = 0

    def backward_step(self, loss: torch.Tensor, optimizer: str,
                      module: str | tuple[str, ...]) -> torch.Tensor:
        """zero_grad, backward, clip (or just measure) the gradient norm of `module` (one name
        or several, e.g. a generator and InfoGAN's Q head), step. Returns the norm.

        Gradients are zeroed first so that, e.g., a generator loss that flowed through the
        discriminator leaves nothing behind for the discriminator's own step."""
        return self.accumulate_step((loss,), optimizer, module)

    def accumulate_step(self, losses: Any, optimizer: str,
                        module: str | tuple[str, ...]) -> torch.Tensor:
        """Gradient accumulation: like `backward_step`, but backward runs on each loss of the
        iterable `losses` as it comes (a generator keeps one micro-batch's graph in memory at a
        time; scale each loss, e.g. by its share of the batch), then one clip and step."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        for loss in losses:
            self.accelerator.backward(loss)
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        names = (module,) if isinstance(module, str) else module
        params = [p for name in names for p in self.modules[name].parameters()]
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        opt.step()
        return norm.detach() if torch.is_tensor(norm) else torch.tensor(float(norm))


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # A generator of its own: the order depends on (seed, epoch) only, so resume needs no state.
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class _StopSignals:
    """SIGINT/SIGTERM set a flag; the loop saves and stops at the next step boundary."""

    def __init__(self):
        self.received: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


# --- the loop ----------------------------------------------------------------------------
class Trainer:
    def __init__(self, run: RunFolder, callbacks: tuple[Callback, ...] = ()):
        self.run = run
        self.callbacks = callbacks
        info = run.info()
        self.info = info
        self.cls = load_pipeline_class(info["pipeline"])
        self.config = from_dict(self.cls.Config, info["config"], where="config.")
        self.tc: TrainerConfig = from_dict(TrainerConfig, info["trainer"], where="trainer.")
        self.data = load_data_for(self.cls, self.config, info["data"])

        AcceleratorState._reset_state()  # one process may train several runs (tests, the UI)
        self.accelerator = Accelerator(mixed_precision=self.tc.mixed_precision, cpu=self.tc.cpu)
        set_seed(self.tc.seed)
        # The info stored at the start of the run: what the family derived from the data then
        # (e.g. a tokenizer) is reused, not derived again.
        self.pipeline: Pipeline = self.cls(self.config, info["data_info"])
        optimizers = self.pipeline.make_optimizers()
        names, opt_names = list(self.pipeline.modules), list(optimizers)
        prepared = self.accelerator.prepare(*self.pipeline.modules.values(), *optimizers.values())
        self.pipeline.modules = dict(zip(names, prepared[:len(names)]))
        self.optimizers = dict(zip(opt_names, prepared[len(names):]))
        self.ema = self._make_ema()
        device = self.accelerator.device
        self.tensors = {k: v.to(device) for k, v in self.pipeline.train_tensors(self.data).items()}
        self.n = len(next(iter(self.tensors.values())))
        world = self.accelerator.num_processes
        if self.n < self.tc.batch_size * world:
            raise StudioError(f"the data set has {self.n} training examples, fewer than one "
                              f"batch ({self.tc.batch_size} x {world} processes); lower batch_size")
        self.ctx = StepContext(self.accelerator, self.pipeline.modules, self.optimizers,
                               self.tc.grad_clip)
        self.step, self.epoch, self.position, self.elapsed = 0, 0, 0, 0.0
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def _make_ema(self) -> dict[str, Any]:
        decay = self.pipeline.ema_decay()
        if not self.pipeline.ema_modules or decay <= 0:
            return {}
        from diffusers.training_utils import EMAModel
        # Warm-up (decay = 1 - (1 + step)^-2/3, capped at `decay`): without it, a 0.999 EMA
        # still holds ~80% of the random initial weights at step 250, and early grids are noise.
        return {name: EMAModel(self._unwrapped(name).parameters(), decay=decay,
                               use_ema_warmup=True, power=2 / 3)
                for name in self.pipeline.ema_modules}

    def _unwrapped(self, name: str) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.pipeline.modules[name])

    def emit(self, kind: str, **payload: Any) -> None:
        for cb in self.callbacks:
            cb(kind, {"run": self.run.id, "step": self.step, **payload})

    # --- data ------------------------------------------------------------------------------
    def next_batch(self) -> dict[str, torch.Tensor]:
        b, world, rank = self.tc.batch_size, self.accelerator.num_processes, self.accelerator.process_index
        if self.position + b * world > self.n:  # drop the ragged end of an epoch
            self.epoch, self.position = self.epoch + 1, 0
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, _epoch_order(self.n, self.tc.seed, self.epoch))
        order = self._order[1]
        start = self.position + rank * b
        idx = order[start:start + b].to(self.accelerator.device)
        self.position += b * world
        return {k: v[idx] for k, v in self.tensors.items()}

    # --- checkpoints -------------------------------------------------------------------------
    def _sampling_tensors(self) -> dict[str, torch.Tensor]:
        modules = {n: self._unwrapped(n) for n in self.pipeline.modules}
        tensors = ckpt.module_tensors(modules)
        for name, ema in self.ema.items():  # EMA weights replace the raw ones for sampling
            params = dict(modules[name].named_parameters())
            for (key, _), shadow in zip(params.items(), ema.shadow_params):
                tensors[f"{name}.{key}"] = shadow
        return tensors

    def weights_metadata(self) -> dict[str, str]:
        return {"studio_format": ckpt.FORMAT, "studio_pipeline": self.info["pipeline"],
                "studio_step": str(self.step), "studio_config_hash": self.info["config_hash"],
                "studio_config": json.dumps(self.info["config"], sort_keys=True),
                "studio_data_info": json.dumps(self.info["data_info"], sort_keys=True),
                "studio_ema": str(bool(self.ema)).lower()}

    def save_checkpoint(self) -> None:
        if not self.accelerator.is_main_process:
            return
        modules = {n: self._unwrapped(n) for n in self.pipeline.modules}
        sampling = ckpt.weights_bytes(self._sampling_tensors(), self.weights_metadata())
        files = {"model.safetensors": sampling,
                 "training.safetensors": ckpt.weights_bytes(ckpt.module_tensors(modules))}
        opt_tensors, opt_meta = {}, {}
        for name, opt in self.optimizers.items():
            t, m = ckpt.optimizer_state(name, opt)
            opt_tensors.update(t)
            opt_meta[name] = m
        files["optimizers.safetensors"] = ckpt.weights_bytes(opt_tensors)
        files["optimizers.json"] = json.dumps(opt_meta).encode()
        if self.ema:
            ema_tensors, ema_meta = {}, {}
            for name, ema in self.ema.items():
                sd = ema.state_dict()
                for i, p in enumerate(sd.pop("shadow_params")):
                    ema_tensors[f"{name}/{i}"] = p
                ema_meta[name] = sd
            files["ema.safetensors"] = ckpt.weights_bytes(ema_tensors)
            files["ema.json"] = json.dumps(ema_meta).encode()
        rng_tensors, rng_meta = ckpt.rng_state()
        files["rng.safetensors"] = ckpt.weights_bytes(rng_tensors)
        files["trainer.json"] = json.dumps({
            "step": self.step, "epoch": self.epoch, "position": self.position,
            "elapsed": self.elapsed, "rng": rng_meta}).encode()
        ckpt.write_checkpoint_dir(self.run, self.step, files)
        # The top-level weights file is the newest sampling weights, replaced atomically.
        atomic_write_bytes(self.run.weights_path, sampling)
        ckpt.prune_checkpoints(self.run, self.tc.keep_checkpoints)
        self.run.update_info(checkpoint_step=self.step)
        self.emit("checkpoint")

    def load_checkpoint(self) -> None:
        steps = self.run.checkpoint_steps()
        if not steps:
            return  # never checkpointed: start from the beginning
        folder = self.run.checkpoint_dir(steps[-1])
        modules = {n: self._unwrapped(n) for n in self.pipeline.modules}
        ckpt.load_module_tensors(modules, ckpt.read_checkpoint_file(folder, "training.safetensors"),
                                 folder)
        opt_tensors = ckpt.read_checkpoint_file(folder, "optimizers.safetensors")
        opt_meta = ckpt.read_checkpoint_json(folder, "optimizers.json")
        for name, opt in self.optimizers.items():
            ckpt.load_optimizer_state(name, opt, opt_tensors, opt_meta[name])
        if self.ema:
            ema_tensors = ckpt.read_checkpoint_file(folder, "ema.safetensors")
            ema_meta = ckpt.read_checkpoint_json(folder, "ema.json")
            for name, ema in self.ema.items():
                shadows = [ema_tensors[f"{name}/{i}"].to(self.accelerator.device)
                           for i in range(len(ema.shadow_params))]
                ema.load_state_dict({**ema_meta[name], "shadow_params": shadows})
        state = ckpt.read_checkpoint_json(folder, "trainer.json")
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.elapsed = state["elapsed"]
        ckpt.set_rng_state(ckpt.read_checkpoint_file(folder, "rng.safetensors"), state["rng"])
        if self.accelerator.is_main_process:
            self.run.truncate_metrics(self.step)

    # --- sampling grids ---------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self) -> None:
        if not self.accelerator.is_main_process or not self.pipeline.draws_samples:
            return
        with self._sampling_weights():
            samples = self.pipeline.sample(self.tc.sample_count, seed=self.tc.sample_seed)
        if samples.images is not None:
            path = self.run.sample_path(self.step)
            save_grid(samples.images, path, labels=samples.labels)
        else:
            path = self.run.sample_path(self.step, ".txt")
            atomic_write_text(path, "\n\n---\n\n".join(samples.texts or []))
        self.emit("sample", path=str(path))

    def _should_stop(self, signals: _StopSignals) -> bool:
        local = bool(signals.received) or self.run.stop_requested()
        if self.accelerator.num_processes == 1:
            return local
        # Every process must stop at the same step, or the next collective hangs.
        flag = torch.tensor([float(local)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    @contextlib.contextmanager
    def _sampling_weights(self):
        """Unwrapped modules in eval mode with the EMA weights swapped in; restored after.
        Unwrapped, so that sampling on the main process alone runs no collective."""
        wrapped = self.pipeline.modules
        self.pipeline.modules = {n: self._unwrapped(n) for n in wrapped}
        for name, ema in self.ema.items():
            ema.store(self.pipeline.modules[name].parameters())
            ema.copy_to(self.pipeline.modules[name].parameters())
        for m in self.pipeline.modules.values():
            m.eval()
        try:
            yield
        finally:
            for m in self.pipeline.modules.values():
                m.train()
            for name, ema in self.ema.items():
                ema.restore(self.pipeline.modules[name].parameters())
            self.pipeline.modules = wrapped

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The family's validation numbers (e.g. a VAE's ELBO), as "val/<name>", with the
        sampling weights (eval mode, EMA) in place. Main process only."""
        if type(self.pipeline).validate is Pipeline.validate:
            return {}  # the family has none: skip swapping the EMA weights in and out
        with self._sampling_weights():
            values = self.pipeline.validate(self.data)
        return {f"val/{k}": float(v) for k, v in values.items()}

    def log_window(self, window: dict[str, list], steps: int, seconds: float) -> None:
        """Log the mean of each value over the steps since the last log line that reported it
        (a WGAN's generator loss comes every n_critic steps); a non-finite mean stops the run
        before anything is saved from it."""
        means = {k: float(total) / count for k, (total, count) in window.items()}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            kept = self.run.checkpoint_steps()
            raise TrainingFailed(
                f"{', '.join(bad)} became non-finite near step {self.step}; the last good "
                f"checkpoint ({f'step {kept[-1]}' if kept else 'none yet'}) is kept. Try a "
                f"lower learning rate, grad_clip, or fp32")
        speed = steps / max(seconds, 1e-9)
        eta = (self.tc.steps - self.step) / speed
        # The family's own alarms (mode collapse, posterior collapse): in the metrics line and
        # the run's status line while they last.
        if self.accelerator.is_main_process:
            means.update(self.validate())
        warning = "; ".join(self.pipeline.log_warnings(means, self.step))
        if self.accelerator.is_main_process:
            record = {"step": self.step, "time": round(self.elapsed, 3), **means}
            self.run.log_metrics({**record, "warning": warning} if warning else record)
            self.run.update_info(step=self.step, steps_per_sec=round(speed, 3), warning=warning,
                                 eta_seconds=round(eta, 1), elapsed_seconds=round(self.elapsed, 1))
        self.emit("log", metrics=means, steps_per_sec=speed, eta=eta, warning=warning)

    # --- the loop ------------------------------------------------------------------------------
    def train(self, resume: bool) -> str:
        """Train until the total step count, a stop request, or a failure. Returns the status."""
        if resume:
            self.load_checkpoint()
        main = self.accelerator.is_main_process
        self.accelerator.wait_for_everyone()  # nobody may see the old STOP file after this
        if main:
            self.run.clear_stop()
        self.accelerator.wait_for_everyone()
        device = str(self.accelerator.device)
        if main:
            self.run.update_info(status="running", step=self.step, message="", device=device,
                                 pid=os.getpid(), host=socket.gethostname(),
                                 precision=self.tc.mixed_precision,
                                 processes=self.accelerator.num_processes)
        self.emit("start", total=self.tc.steps, device=device)
        window: dict[str, list] = {}  # name -> [sum, count] since the last log line
        window_steps, window_start = 0, time.perf_counter()
        t0 = time.perf_counter() - self.elapsed
        status = "done"
        with _StopSignals() as signals:
            try:
                while self.step < self.tc.steps:
                    if self._should_stop(signals):
                        status = "stopped"
                        break
                    batch = self.next_batch()
                    self.ctx.step = self.step
                    with self.accelerator.autocast():
                        logs = self.pipeline.train_step(batch, self.ctx)
                    self.step += 1
                    for name, ema in self.ema.items():
                        ema.step(self._unwrapped(name).parameters())
                    for k, v in logs.items():
                        v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                        total, count = window.get(k, (0.0, 0))
                        window[k] = [total + v, count + 1]
                    window_steps += 1
                    due_ckpt = self.tc.checkpoint_every and self.step % self.tc.checkpoint_every == 0
                    if self.step % self.tc.log_every == 0 or due_ckpt or self.step == self.tc.steps:
                        now = time.perf_counter()
                        self.elapsed = now - t0
                        self.log_window(window, window_steps, now - window_start)
                        window, window_steps, window_start = {}, 0, now
                    if self.tc.sample_every and self.step % self.tc.sample_every == 0:
                        self.sample_grid()
                    if due_ckpt:
                        self.save_checkpoint()
            except TrainingFailed as e:
                if main:
                    self.run.update_info(status="failed", message=str(e))
                self.emit("end", status="failed", message=str(e))
                raise
            except BaseException as e:
                if main and not isinstance(e, KeyboardInterrupt):
                    self.run.update_info(status="failed", message=f"{type(e).__name__}: {e}")
                raise
            self.elapsed = time.perf_counter() - t0
            if self.step not in self.run.checkpoint_steps():
                self.sample_grid()
                self.save_checkpoint()
        return self.finish(status, signals.received)

    def finish(self, status: str, signal_name: str | None) -> str:
        message = ""
        if status == "stopped":
            why = f"signal {signal_name}" if signal_name else "a stop request"
            message = f"stopped at step {self.step} by {why}; `studio resume {self.run.id}` continues"
        elif self.accelerator.is_main_process and self.tc.final_eval:
            with self._sampling_weights(), torch.no_grad():
                results = self.pipeline.evaluate(self.data, self.run.path.parent / ".judges")
            if results:
                self.run.log_metrics({"step": self.step, "time": round(self.elapsed, 3),
                                      **{f"eval/{k}": v for k, v in results.items()}})
                self.run.update_info(eval=results)
        self.run.clear_stop()
        if self.accelerator.is_main_process:
            self.run.update_info(status=status, step=self.step, message=message,
                                 elapsed_seconds=round(self.elapsed, 1), eta_seconds=0)
            write_model_card(self.run)
        self.emit("end", status=status, message=message)
        return status

def train_run(run: RunFolder, *, resume: bool = False, total_steps: int | None = None,
              callbacks: tuple[Callback, ...] = ()) -> str:
    """Train (or resume) the run in `run`. Returns its final status."""
    if total_steps is not None:
        info = run.info()
        trainer = dict(info["trainer"], steps=int(total_steps))
        run.update_info(trainer=trainer, total_steps=int(total_steps))
    try:
        trainer = Trainer(run, callbacks)
    except BaseException as e:  # e.g. its data folder is gone: say so in the run, not "queued"
        if os.environ.get("RANK", "0") == "0":
            run.update_info(status="failed", message=f"could not start: {e}")
        raise
    return trainer.train(resume=resume)
