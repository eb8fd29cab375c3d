"""Input validation shared by every public entry point.

Every check raises :class:`MimofmInputError` (a ``ValueError``) whose message names the argument,
the offending value and what would be valid. Asserts are never used for user input.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mimofm.core.errors import MimofmInputError

__all__ = [
    "MimofmInputError",
    "check_channel",
    "check_choice",
    "check_num_ue_le_num_ant",
    "check_positive",
    "check_precoder",
    "check_rates",
]


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {list(x.shape)} and dtype {x.dtype}"
    return repr(x)


def check_channel(h: Any, name: str = "h", *, min_rank: int = 2) -> torch.Tensor:
    """Validate a multi-user channel ``[..., num_ue, num_bs_ant]`` complex and return it.

    Rejects: non-tensors, real dtypes, rank < ``min_rank``, empty dimensions, NaN/Inf entries and
    users whose channel vector is all zeros (no precoder can serve them and several divide by
    their norm).
    """
    if not isinstance(h, torch.Tensor):
        raise MimofmInputError(f"`{name}` must be a torch.Tensor, got {type(h).__name__}")
    if not h.is_complex():
        raise MimofmInputError(
            f"`{name}` must be complex (complex64 or complex128), got {_describe(h)}; "
            f"build it with torch.complex(real, imag)"
        )
    if h.dim() < min_rank:
        raise MimofmInputError(
            f"`{name}` must have shape [..., num_ue, num_bs_ant] (rank >= {min_rank}), got {_describe(h)}"
        )
    if any(s == 0 for s in h.shape):
        raise MimofmInputError(f"`{name}` has an empty dimension: {_describe(h)}")
    # one cheap pass: the per-user energy is NaN/Inf when an entry is, and 0 for an all-zero user; only
    # when it is not clean (or overflows/underflows) do the exact, slower checks run
    energy = torch.view_as_real(h.resolve_conj()).square().sum(dim=(-2, -1))  # [..., K, N, 2] -> [..., K]
    if bool((energy > 0).all()) and bool(torch.isfinite(energy).all()):
        return h
    if not bool(torch.isfinite(h).all()):
        bad = int((~torch.isfinite(h)).sum())
        raise MimofmInputError(f"`{name}` contains {bad} NaN/Inf entries; every entry must be finite")
    zero = h.abs().amax(dim=-1) == 0
    if bool(zero.any()):
        idx = torch.nonzero(zero)[0].tolist()
        raise MimofmInputError(
            f"`{name}` has {int(zero.sum())} all-zero user channel(s) (first at index {idx}); "
            f"every user needs a non-zero channel vector"
        )
    return h


def check_precoder(w: Any, h: torch.Tensor, name: str = "w") -> torch.Tensor:
    """Validate a precoder ``[..., num_bs_ant, num_ue]`` against channel ``h`` ``[..., num_ue,
    num_bs_ant]``."""
    if not isinstance(w, torch.Tensor) or not w.is_complex():
        raise MimofmInputError(f"`{name}` must be a complex torch.Tensor, got {_describe(w)}")
    if w.dim() < 2 or w.shape[-2] != h.shape[-1] or w.shape[-1] != h.shape[-2]:
        raise MimofmInputError(
            f"`{name}` must have shape [..., num_bs_ant={h.shape[-1]}, num_ue={h.shape[-2]}] "
            f"to match the channel, got {_describe(w)}"
        )
    if not bool(torch.isfinite(w).all()):
        raise MimofmInputError(f"`{name}` contains NaN/Inf entries; every entry must be finite")
    return w


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float | torch.Tensor:
    """Check a power/noise-like quantity: finite and > 0 (or >= 0 with ``allow_zero``)."""
    what = "non-negative" if allow_zero else "positive"
    if isinstance(value, torch.Tensor):
        ok = torch.isfinite(value).all() and ((value >= 0) if allow_zero else (value > 0)).all()
        if not bool(ok):
            raise MimofmInputError(
                f"`{name}` must be finite and {what}, got {_describe(value)} "
                f"with min {value.min().item() if value.numel() else 'n/a'}"
            )
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MimofmInputError(f"`{name}` must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise MimofmInputError(f"`{name}` must be finite and {what}, got {value!r}")
    return v


def check_num_ue_le_num_ant(h: torch.Tensor, precoder: str) -> None:
    """Zero-forcing-type precoders need ``num_ue <= num_bs_ant``."""
    k, n = h.shape[-2], h.shape[-1]
    if k > n:
        raise MimofmInputError(
            f"`num_ue` ({k}) must be <= `num_bs_ant` ({n}) for {precoder}; "
            f"use rzf, mrt or wmmse when users outnumber antennas"
        )


def check_rates(rates: Any, h: torch.Tensor, name: str = "rate_targets") -> torch.Tensor:
    """Per-user rate targets (bit/s/Hz) broadcastable to ``[..., num_ue]``; finite and >= 0."""
    if not isinstance(rates, torch.Tensor):
        try:
            rates = torch.as_tensor(rates, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise MimofmInputError(f"`{name}` must be numeric, got {rates!r}") from None
    if rates.is_complex():
        raise MimofmInputError(f"`{name}` must be real, got {_describe(rates)}")
    if not bool(torch.isfinite(rates).all()) or bool((rates < 0).any()):
        raise MimofmInputError(f"`{name}` must be finite and >= 0 bit/s/Hz, got {_describe(rates)}")
    try:
        torch.broadcast_shapes(rates.shape, h.shape[:-1])
    except RuntimeError:
        raise MimofmInputError(
            f"`{name}` of shape {list(rates.shape)} does not broadcast to [..., num_ue] = "
            f"{list(h.shape[:-1])}"
        ) from None
    return rates


def check_choice(value: str, name: str, choices: list[str] | tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; else a named error listing the valid ones."""
    if value not in choices:
        raise MimofmInputError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
    return value
