"""What the trainer needs to know about the machine: which device, how much memory it used,
the GPU fast paths (TF32, channels-last, torch.compile), and out-of-memory errors explained.

    use_cpu(requested)          True for a CPU run (also every process of a multi-process CPU run)
    resolve_precision(...)      what `--mixed-precision auto` means on this device for this model
    device_name(device)         "cpu" or "cuda: NVIDIA H100 80GB HBM3"
    peak_memory_mb(device)      GPU: peak allocated by torch; CPU: the process's peak RSS
    window_means(acc, window)   logged means over a log window and over every process
    set_fast_math(tc, device)   TF32 matmuls and convolutions on CUDA, if tc.tf32
    check_compile(tc)           refuse `compile` in words where it cannot work
    to_channels_last(...)       conv weights and image batches in NHWC on CUDA
    is_out_of_memory(e), out_of_memory_message(...)   one plain message with what to change
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
from typing import Any

import torch

from .errors import StudioError


# --- devices -------------------------------------------------------------------------------
def use_cpu(requested: bool) -> bool:
    """Accelerate picks the gloo (multi-process CPU) backend only when told `cpu=True`; under
    `accelerate launch --multi_gpu --num_processes N` on a machine without CUDA it would
    otherwise start N unrelated single-process runs."""
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return requested or (multi_process and not torch.cuda.is_available())


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return device.type


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """On CUDA, the most memory torch's allocator has held for tensors since the last reset
    (what limits the batch size); on the CPU, the peak resident set of this process (Python,
    libraries and data included; it never goes down)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def window_means(accelerator: Any, window: dict[str, list]) -> dict[str, float]:
    """Each logged value's mean over a log window ({name: [sum, count]}) and over every
    process (each saw its own shard of the batch), so the log is the whole batch's, not rank
    0's alone. The keys are the same on every process: a family logs by step, not by data."""
    means = {k: float(total) / count for k, (total, count) in sorted(window.items())}
    if accelerator.num_processes > 1 and means:
        local = torch.tensor(list(means.values()), dtype=torch.float64, device=accelerator.device)
        means = dict(zip(means, accelerator.reduce(local, reduction="mean").tolist()))
    return means


def peak_memory_over_processes(accelerator: Any) -> float:
    """The largest peak among the processes (each has its own GPU, or its own RSS)."""
    peak = torch.tensor([peak_memory_mb(accelerator.device)], device=accelerator.device)
    if accelerator.num_processes > 1:
        peak = accelerator.reduce(peak, reduction="max")
    return float(peak.item())


# `auto` on a GPU: bf16 where it was measured faster, fp32 (TF32) below. The measure of work
# is trainable parameters x batch (per process), a rough stand-in for FLOPs per step: on one
# H200 (bench/gpu.py, bench/results/gpu_h200*.md; fp32 -> bf16 steps/s) every default preset
# (8-60M parameter-samples: 0.13-0.86M parameters at batch 16-64) ran slower in bf16
# (0.82-0.86x: kernel launches set the pace, autocast only adds cast kernels), and so did
# lenet5's gpu preset (0.51M x 256 = 129M: 0.87x); the vae's gpu preset (2.04M x 256 = 522M)
# gained 1.62x, ddpm's (10.9M x 64 = 699M) 1.26x, the transformer's (10.7M x 64 = 682M)
# 1.05x, dcgan's (23.4M x 128 = 2,990M) 1.15x. Parameters alone did not separate them (the
# 2M-parameter vae gains, the 0.5M lenet5 and the 0.9M default transformer lose).
AUTO_BF16_MIN_WORK = 300_000_000


def resolve_precision(requested: str, on_gpu: bool, bf16_supported: bool,
                      parameters: int, batch_size: int) -> tuple[str, str]:
    """The precision a run trains in ("no", "bf16" or "fp16") and why, in a few words (the
    run and the live view show it). Anything but "auto" is taken as asked."""
    if requested != "auto":
        return requested, "as asked"
    size = f"{parameters / 1e6:.1f}M parameters x batch {batch_size}"
    if not on_gpu:
        # Measured on 2 CPU cores (docs/scaling.md): bf16 autocast is slower there for the
        # conv nets and the transformer alike; the CPU has no bf16 matmul units to pay for it.
        return "no", "auto: fp32 on the CPU"
    if not bf16_supported:
        return "no", "auto: fp32, this GPU has no bf16 (fp16 with a scaler is yours to ask)"
    if parameters * batch_size >= AUTO_BF16_MIN_WORK:
        return "bf16", f"auto: bf16 for {size} on a GPU"
    return "no", (f"auto: fp32 (TF32) for {size}, below the "
                  f"{AUTO_BF16_MIN_WORK // 1_000_000}M where bf16 paid on a GPU")


def precision_label(precision: str) -> str:
    return "fp32" if precision in ("no", "", None) else precision


def trainable_parameters(modules: dict[str, torch.nn.Module]) -> int:
    unique = {id(p): p for m in modules.values() for p in m.parameters() if p.requires_grad}
    return sum(p.numel() for p in unique.values())


# --- GPU fast paths ----------------------------------------------------------------------
def set_fast_math(tf32: bool, device: torch.device) -> None:
    """TF32 (fp32 range, 10-bit mantissa) for fp32 matmuls and convolutions on CUDA: Ampere
    and newer GPUs run them on tensor cores. torch 2.9+ spells it `fp32_precision`; the
    older `allow_tf32` flags are deprecated there."""
    if device.type != "cuda":
        return
    precision = "tf32" if tf32 else "ieee"
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision
    else:  # pragma: no cover - torch < 2.9
        matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def check_compile(compile_: bool, cpu: bool) -> None:
    """torch.compile's inductor backend writes C++ for the CPU (and Triton for CUDA): without
    a C++ compiler it fails deep inside the first step, so say so before anything starts."""
    if not compile_:
        return
    on_cpu = cpu or not torch.cuda.is_available()
    if on_cpu and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        raise StudioError("compile needs a C++ compiler (g++ or clang++) on the PATH to "
                          "compile for the CPU; install one (e.g. apt install g++) or train "
                          "with compile off")
    if sys.platform == "win32":
        raise StudioError("compile (torch.compile) is not supported on Windows; train with "
                          "compile off")


def to_channels_last(modules: dict[str, torch.nn.Module], device: torch.device,
                     enabled: bool) -> bool:
    """NHWC weights for modules with convolutions, on CUDA only (cuDNN's tensor-core kernels
    want NHWC; on the CPU it is rarely faster). Returns whether batches should follow."""
    if not enabled or device.type != "cuda":
        return False
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    used = False
    for module in modules.values():
        if any(isinstance(m, convs) for m in module.modules()):
            module.to(memory_format=torch.channels_last)
            used = True
    return used


def batch_channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """4-D float tensors (images, (B, C, H, W)) in NHWC memory order; the rest unchanged."""
    return {k: v.contiguous(memory_format=torch.channels_last)
            if v.dim() == 4 and v.is_floating_point() else v for k, v in batch.items()}


# --- out of memory -------------------------------------------------------------------------
_CPU_OOM_WORDS = ("can't allocate memory", "cannot allocate memory", "could not allocate",
                  "not enough memory", "out of memory")


def is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and any(w in str(e).lower() for w in _CPU_OOM_WORDS)


def out_of_memory_message(e: BaseException, info: dict[str, Any], step: int | None,
                          checkpoints: list[int], run_id: str) -> str:
    """One message: what ran out, at what batch size, and what to change that keeps the
    effective batch (batch_size x grad_accum), then how to continue."""
    trainer, config = info.get("trainer", {}), info.get("config", {})
    device = info.get("device") or ("cuda" if isinstance(e, torch.OutOfMemoryError) else "cpu")
    what = "GPU memory" if str(device).startswith("cuda") else "memory (RAM)"
    batch = int(trainer.get("batch_size", 0))
    accum = int(config.get("grad_accum", 1) or 1)
    processes = int(info.get("processes") or 1)
    effective = batch * accum * processes
    advice = []
    if batch >= 2:
        half = batch // 2
        if "grad_accum" in config:
            advice.append(f"--batch-size {half} with --set grad_accum={accum * 2} (the same "
                          f"effective batch of {effective})")
        else:
            advice.append(f"--batch-size {half} ({info.get('pipeline')} has no gradient "
                          f"accumulation, so the effective batch halves to "
                          f"{half * processes}; double --steps to see as many examples)")
    if info.get("precision", trainer.get("mixed_precision", "no")) in ("no", "auto"):
        advice.append("--mixed-precision bf16 (about half the activation memory)")
    advice.append(f"a smaller model (`studio list {info.get('pipeline')}` lists its size "
                  f"options)")
    where = f"at step {step + 1}" if step is not None else "while starting"
    kept = (f"the run is kept at its last checkpoint, step {checkpoints[-1]}" if checkpoints
            else "no checkpoint was written yet")
    return (f"ran out of {what} on {device} {where}, at batch_size {batch} per process "
            f"({processes} process{'es' if processes > 1 else ''}, effective batch "
            f"{effective}). Try: " + "; or ".join(advice) + f". {kept.capitalize()}: "
            f"`studio resume {run_id} --batch-size {max(batch // 2, 1)}` continues with a "
            f"smaller batch. ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})")
