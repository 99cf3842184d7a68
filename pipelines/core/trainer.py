"""The one training loop, on Accelerate. Every family runs through `train_run`.

    start_run(...)      validate everything, then create checkpoints/<run-id>/ (status queued)
    train_run(run)      train it: fresh, or resumed from its last complete checkpoint
                        (training_run.py: the run's lock, heartbeat and failures around this)

What the loop does each step: take the next batch (a fixed, seeded permutation per epoch, so
the data position is two integers), call the family's `train_step` under autocast, update the
EMA, and every N steps log, sample a grid, or checkpoint. It stops cleanly on SIGINT/SIGTERM
or a STOP file (saves, marks the run `stopped`), and a non-finite loss stops it as `failed`
without touching the last good checkpoint.

Out of the loop, as plain functions of the Trainer: what a checkpoint holds and which weights
sampling uses (trainer_state.py); the log lines, the phase and ETA, and the run's last word
(trainer_report.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import Any, Callable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from . import hardware as hw
from . import tracking, trainer_report, trainer_state
from .atomic_files import atomic_write_text
from .base import Pipeline
from .best import BestTracker
from .config import TrainerConfig, from_dict
from .errors import StudioError
from .ema import EMA
from ..services.imaging import save_grid
from .phases import span_at
from .phases import spans as phase_spans
from ..registry import load_pipeline_class
from .run_setup import load_data_for
from .runs import RunFolder
from .step import StepContext, without_overflow
from .trainer_report import TrainingFailed

Callback = Callable[[str, dict[str, Any]], None]


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
    def __init__(self, run: RunFolder, callbacks: tuple[Callback, ...] = (),
                 info_changes: dict[str, Any] | None = None):
        self.run = run
        self.callbacks = callbacks
        # `info_changes`: what train_run's main process is writing into run.json (a new total
        # step count...): every process applies it itself rather than racing to read it back
        info = {**run.info(), **(info_changes or {})}
        self.info = info
        self.cls = load_pipeline_class(info["pipeline"])
        self.config = from_dict(self.cls.Config, info["config"], where="config.")
        self.tc: TrainerConfig = from_dict(TrainerConfig, info["trainer"], where="trainer.")
        self.data = load_data_for(self.cls, self.config, info["data"])

        AcceleratorState._reset_state()  # one process may train several runs (tests, the UI)
        hw.check_compile(self.tc.compile, self.tc.cpu)
        set_seed(self.tc.seed)
        # The info stored at the start of the run: what the family derived from the data then
        # (e.g. a tokenizer) is reused, not derived again. Built before the Accelerator:
        # `auto` precision depends on the model's size.
        self.pipeline: Pipeline = self.cls(self.config, info["data_info"])
        on_gpu = torch.cuda.is_available() and not hw.use_cpu(self.tc.cpu)
        self.precision, self.precision_reason = hw.resolve_precision(
            self.tc.mixed_precision, on_gpu, on_gpu and torch.cuda.is_bf16_supported(),
            hw.trainable_parameters(self.pipeline.modules), self.tc.batch_size)
        # compile: Accelerate's prepare wraps each module in torch.compile (after DDP).
        # Dynamo's caches are per process and bounded (recompile_limit, 8 by default): the
        # modules of earlier runs in this process (the UI's worker, tests) would fill them
        # and later runs fall back to eager without a word (seen on an H200), so each
        # compiled run starts from empty caches.
        if self.tc.compile:
            import torch._dynamo as dynamo
            dynamo.reset()
        self.accelerator = Accelerator(mixed_precision=self.precision,
                                       cpu=hw.use_cpu(self.tc.cpu),
                                       dynamo_backend="inductor" if self.tc.compile else "no",
                                       **tracking.accelerator_args(self.tc.report_to, run.path))
        device = self.accelerator.device
        hw.set_fast_math(self.tc.tf32, device)
        self.channels_last = hw.to_channels_last(self.pipeline.modules, device, self.tc.channels_last)
        optimizers = self.pipeline.make_optimizers()
        # Modules with nothing to train (a frozen feature network, CycleGAN's pool of past
        # fakes) are only moved: DDP refuses to wrap a module without trainable parameters.
        modules = self.pipeline.modules
        names = [n for n, m in modules.items() if any(p.requires_grad for p in m.parameters())]
        opt_names = list(optimizers)
        prepared = self.accelerator.prepare(*(modules[n] for n in names), *optimizers.values())
        self.pipeline.modules = {n: prepared[names.index(n)] if n in names else m.to(device)
                                 for n, m in modules.items()}
        self.optimizers = dict(zip(opt_names, prepared[len(names):]))
        self.ema = self._make_ema()
        self.schedules = self.pipeline.schedules()
        self.spans = phase_spans(self.cls.phases(self.config), self.tc.steps)
        for name in self.schedules:   # each group's peak: its lr now (checkpointed with it)
            for group in self.optimizers[name].param_groups:
                group.setdefault("initial_lr", group["lr"])
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        if world > 1:
            # The weights are built identically (and DDP syncs them from rank 0); the noise
            # each process draws from here on (GAN latents, diffusion timesteps) must differ.
            set_seed((self.tc.seed + 1_000_003 * rank) % 2**32)   # numpy's seed range
        # The whole training split lives on the device: batches are indexed there, so no
        # step copies data from the host (and pinned memory has nothing to speed up).
        self.tensors = {k: v.to(device) for k, v in self.pipeline.train_tensors(self.data).items()}
        self.n = len(next(iter(self.tensors.values())))
        if self.n < self.tc.batch_size * world:
            raise StudioError(f"the data set has {self.n} training examples, fewer than one "
                              f"batch ({self.tc.batch_size} x {world} processes); lower batch_size")
        self.ctx = StepContext(self.accelerator, self.pipeline.modules, self.optimizers,
                               self.tc.grad_clip)
        self.step, self.epoch, self.position, self.elapsed = 0, 0, 0, 0.0
        self.skipped_steps = 0  # optimizer steps fp16's gradient scaler skipped, whole run
        metric = self.pipeline.best_metric if self.tc.keep_best else None
        self.best = (BestTracker(f"val/{metric[0]}", metric[1], self.tc.early_stop_patience)
                     if metric else None)
        self.early_stopped = False
        # A first grid at 5% of the run whatever sample_every says (250 of 300 steps showed
        # none while training); a run under 20 steps has nothing to show that early.
        self.first_grid = -(-self.tc.steps // 20) if self.tc.steps >= 20 else 0
        self.sampled_step = -1  # the step of the last grid (every run ends with one)
        self.saved_step = -1  # the step of this process's last checkpoint (not the folder's:
        # under several processes only the main one writes, and all must agree)
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def _make_ema(self) -> dict[str, Any]:
        decay = self.pipeline.ema_decay()
        if not self.pipeline.ema_modules or decay <= 0:
            return {}
        # Warm-up (pipelines/core/config.py's EMA_WARM_UP): without it, a 0.999 EMA still
        # holds ~80% of the random initial weights at step 250, and early grids are noise.
        return {name: EMA(self._unwrapped(name).parameters(), decay=decay,
                          power=self.pipeline.ema_warm_up_power)
                for name in self.pipeline.ema_modules}

    def _unwrapped(self, name: str) -> torch.nn.Module:
        # Without torch.compile's wrapper too: checkpoints keep their plain parameter names.
        return self.accelerator.unwrap_model(self.pipeline.modules[name], keep_torch_compile=False)

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
        batch = {k: v[idx] for k, v in self.tensors.items()}
        return hw.batch_channels_last(batch) if self.channels_last else batch

    # --- checkpoints (pipelines/core/trainer_state.py: what one holds, written and read) --------
    def save_checkpoint(self) -> None:
        trainer_state.save(self)

    def load_checkpoint(self) -> None:
        trainer_state.restore(self)

    # --- sampling grids ---------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self) -> None:
        self.sampled_step = self.step
        if not self.accelerator.is_main_process or not self.pipeline.draws_samples:
            return
        with trainer_state.sampling_weights(self):
            samples = self.pipeline.sample(self.tc.sample_count, seed=self.tc.sample_seed)
        if samples.images is not None:
            path = self.run.sample_path(self.step)
            save_grid(samples.images, path, labels=samples.labels, nrow=samples.columns)
            tracking.log_grid(self, path)
        else:
            path = self.run.sample_path(self.step, ".txt")
            atomic_write_text(path, "\n\n---\n\n".join(samples.texts or []))
        self.emit("sample", path=str(path))

    def _should_stop(self, signals: _StopSignals) -> bool:
        local = bool(signals.received) or self.run.stop_requested() or self.early_stopped
        if self.accelerator.num_processes == 1:
            return local
        # Every process must stop at the same step, or the next collective hangs.
        flag = torch.tensor([float(local)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The family's validation numbers (e.g. a VAE's ELBO), as "val/<name>", with the
        sampling weights (eval mode, EMA) in place. Main process only."""
        if type(self.pipeline).validate is Pipeline.validate:
            return {}  # the family has none: skip swapping the EMA weights in and out
        with trainer_state.sampling_weights(self):
            values = self.pipeline.validate(self.data)
        return {f"val/{k}": float(v) for k, v in values.items()}

    def apply_schedules(self) -> dict[str, float]:
        """Set each scheduled optimiser's learning rate for this step (pipelines/core/schedules.py):
        its groups' peaks times the schedule's factor. Returns what to log: `lr`, or
        `lr_<optimiser>` when there are several."""
        logged = {}
        for name, schedule in self.schedules.items():
            factor = schedule.factor(self.step)
            groups = self.optimizers[name].param_groups
            for group in groups:
                group["lr"] = group["initial_lr"] * factor
            logged["lr" if len(self.schedules) == 1 else f"lr_{name}"] = groups[0]["lr"]
        return logged

    def _peak_memory_mb(self) -> float:
        return hw.peak_memory_over_processes(self.accelerator)

    # --- the loop ------------------------------------------------------------------------------
    def train(self, resume: bool) -> str:
        """Train until the total step count, a stop request, or a failure. Returns the status."""
        main = self.accelerator.is_main_process
        if resume:
            self.load_checkpoint()
            if main:  # what was logged or drawn after the checkpoint (or with none: all of
                # it) is done again now, so it must not stay twice
                self.run.truncate_metrics(self.step)
                self.run.trim_samples(self.step)
        tracking.start(self)   # after the checkpoint: a tracker forgets what came after it
        # (train_run cleared an old STOP file before marking the run running: a stop asked
        # for since then, even before this point, is honoured at the first step)
        self.accelerator.wait_for_everyone()
        device = hw.device_name(self.accelerator.device)
        hw.reset_peak_memory(self.accelerator.device)
        if main:
            self.run.update_info(status="running", step=self.step,
                                 message=trainer_report.data_note(self.info), device=device,
                                 pid=os.getpid(), host=socket.gethostname(),
                                 precision=self.precision,
                                 precision_reason=self.precision_reason,
                                 processes=self.accelerator.num_processes,
                                 # A CPU run repeats bit for bit only on as many threads
                                 # (they sum in another order), so the run says how many.
                                 threads=torch.get_num_threads())
        self.emit("start", total=self.tc.steps, device=device)
        window: dict[str, list] = {}  # name -> [sum, count] since the last log line
        window_steps, window_start = 0, time.perf_counter()
        t0 = time.perf_counter() - self.elapsed
        status = "done"
        with _StopSignals() as signals:
            try:
                while self.step < self.tc.steps:
                    if self._should_stop(signals):
                        status = "done" if self.early_stopped else "stopped"
                        break
                    batch = self.next_batch()
                    self.ctx.step, self.ctx.skipped = self.step, False
                    rates = self.apply_schedules()
                    span = span_at(self.spans, self.step)   # which phase, by step alone
                    step_fn = getattr(self.pipeline, span.phase.step)
                    with self.accelerator.autocast():
                        logs = {**rates, **step_fn(batch, self.ctx)}
                    if self.ctx.skipped:  # fp16's scaler skipped it: not a divergence
                        self.skipped_steps += 1
                        logs = without_overflow(logs)
                    self.step += 1
                    if span.phase.ema:    # a phase that trains other modules leaves it
                        for name, ema in self.ema.items():
                            ema.step(self._unwrapped(name).parameters())
                    self.emit("step")  # cheap; the dry run times steps with it
                    for k, v in logs.items():
                        v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                        total, count = window.get(k, (0.0, 0))
                        window[k] = [total + v, count + 1]
                    window_steps += 1
                    due_ckpt = self.tc.checkpoint_every and self.step % self.tc.checkpoint_every == 0
                    if self.step % self.tc.log_every == 0 or due_ckpt or self.step == self.tc.steps:
                        now = time.perf_counter()
                        self.elapsed = now - t0
                        trainer_report.log_window(self, window, window_steps, now - window_start)
                        window, window_steps, window_start = {}, 0, now
                    if self.tc.sample_every and (self.step % self.tc.sample_every == 0
                                                 or self.step == self.first_grid):
                        self.sample_grid()
                    if due_ckpt:
                        self.save_checkpoint()
                self.elapsed = time.perf_counter() - t0
                if self.step != self.sampled_step:   # the last grid and checkpoint
                    self.sample_grid()
                if self.step != self.saved_step:
                    self.save_checkpoint()
                return trainer_report.finish(self, status, signals.received)
            except TrainingFailed as e:
                if main:
                    self.run.update_info(status="failed", message=str(e))
                self.emit("end", status="failed", message=str(e))
                raise
            except BaseException as e:
                if main and not isinstance(e, KeyboardInterrupt):
                    self.run.update_info(status="failed",
                                         message=trainer_report.failure_message(self, e))
                raise
