"""Helpers shared by the classical precoders (internal). Channels ``[..., K, N]``, precoders
``[..., N, K]``; powers in the caller's units."""

from __future__ import annotations

import torch

from mimofm.core.validation import check_channel, check_positive


def prepare(h: torch.Tensor, power, noise_power) -> tuple[torch.Tensor, float, float, torch.dtype]:
    """Validate ``h`` ``[..., K, N]`` and lift it to complex128; returns (h128, power, noise, api dtype)
    with ``power`` and ``noise_power`` as floats (same units, e.g. W)."""
    check_channel(h, "h")
    power = float(check_positive(power, "power"))
    noise_power = float(check_positive(noise_power, "noise_power"))
    return h.to(torch.complex128), power, noise_power, h.dtype


def snr_scaled(h: torch.Tensor, power: float, noise_power: float) -> torch.Tensor:
    """Fold power and noise into the channel ``[..., K, N]`` (same shape out) so the maths runs at unit
    power and unit noise: ``h · √(P/σ²)``."""
    return h * (power / noise_power) ** 0.5


def gram(h: torch.Tensor) -> torch.Tensor:
    """``H H^H``: ``[..., K, N]`` -> ``[..., K, K]`` Hermitian."""
    # [..., K, N] @ [..., N, K] -> [..., K, K]
    return h @ h.mH


def eye_like(k: int, ref: torch.Tensor) -> torch.Tensor:
    """``I_k`` ``[k, k]`` in ``ref``'s dtype and device."""
    return torch.eye(k, dtype=ref.dtype, device=ref.device)


def fro2(w: torch.Tensor) -> torch.Tensor:
    """``‖W‖_F²`` per sample: ``[..., N, K]`` -> ``[...]`` real."""
    return (w.real.square() + w.imag.square()).sum(dim=(-2, -1))


def scale_to_power(w: torch.Tensor, power: float) -> torch.Tensor:
    """One global scale per sample so that ``‖W‖_F² = power``: ``[..., N, K]`` -> ``[..., N, K]`` (zero
    precoders stay zero)."""
    p = fro2(w)
    s = torch.where(p > 0, torch.sqrt(power / p.clamp_min(1e-300)), torch.zeros_like(p))
    return w * s[..., None, None]
