"""Latent-space helpers that every sampling family shares: which classes to draw, and the
spherical path between two latents."""

from __future__ import annotations

from typing import Any

import torch

from ..core.errors import StudioError


def requested_labels(n: int, labels: Any, count: int, *, what: str = "class",
                     names: list[str] | tuple[str, ...] = ()) -> torch.Tensor | None:
    """The labels to draw for n images from a model with `count` classes (0: unconditional):
    the ones asked for (one int, or one per image), else cycling through the classes so that a
    grid shows each. Bad requests raise StudioError naming the valid range."""
    if not count:
        if labels is not None:
            raise StudioError("this model is not class-conditional; leave out the class")
        return None
    if labels is None:
        return torch.arange(n) % count
    refused = StudioError(f"{what} must be between 0 and {count - 1}"
                          + (f" ({', '.join(names)})" if names else ""))
    try:
        out = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    except (OverflowError, RuntimeError, TypeError, ValueError):  # e.g. 10**20, "seven"
        raise refused from None
    out = out.expand(n) if out.numel() == 1 else out
    if out.numel() != n or out.min() < 0 or out.max() >= count:
        raise refused
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents a and b (D,) at fractions t (T,) -> (T, D).
    Gaussian latents live near a sphere; a straight line between two cuts through its low-norm
    middle, which the decoder (generator) rarely saw."""
    a, b, t = a.float(), b.float(), t.float()[:, None]
    cos = (a @ b / (a.norm() * b.norm()).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:                                    # nearly parallel: a line will do
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
