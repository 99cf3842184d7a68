"""Adam and AdamW with torch's fused kernel where the parameters allow it.

Fused: one kernel updates every parameter instead of a loop of small ones per tensor (CUDA and,
since torch 2.4, the CPU have it). It needs floating-point parameters on a device the kernel
supports; a pipeline calls these before the trainer moves its modules, so the check is on the
device type the parameters will still have after Accelerate's `prepare` moves them (CPU ->
CUDA keeps them on a supported device).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.optim.optimizer import _get_fused_kernels_supported_devices


def fused_supported(params: list[torch.Tensor]) -> bool:
    devices = set(_get_fused_kernels_supported_devices())
    return bool(params) and all(p.device.type in devices and p.is_floating_point()
                                for p in params)


def _params(params: Iterable[Any]) -> tuple[list[Any], list[torch.Tensor]]:
    """The optimizer's argument (tensors or param-group dicts) and the flat tensor list."""
    items = list(params)
    flat = [p for item in items
            for p in (item["params"] if isinstance(item, dict) else [item])]
    return items, flat


def adam(params: Iterable[Any], **kw: Any) -> torch.optim.Adam:
    items, flat = _params(params)
    return torch.optim.Adam(items, fused=fused_supported(flat), **kw)


def adamw(params: Iterable[Any], **kw: Any) -> torch.optim.AdamW:
    items, flat = _params(params)
    return torch.optim.AdamW(items, fused=fused_supported(flat), **kw)
