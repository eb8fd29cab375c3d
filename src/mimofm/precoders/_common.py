"""Helpers shared by the classical precoders (internal)."""

from __future__ import annotations

import torch

from mimofm.core.validation import check_channel, check_positive


def prepare(h: torch.Tensor, power, noise_power) -> tuple[torch.Tensor, float, float, torch.dtype]:
    """Validate and lift the channel to complex128; returns (h128, power, noise, api dtype)."""
    check_channel(h, "h")
    power = float(check_positive(power, "power"))
    noise_power = float(check_positive(noise_power, "noise_power"))
    return h.to(torch.complex128), power, noise_power, h.dtype


def snr_scaled(h: torch.Tensor, power: float, noise_power: float) -> torch.Tensor:
    """Fold power and noise into the channel so the maths runs at unit power and unit noise."""
    return h * (power / noise_power) ** 0.5


def gram(h: torch.Tensor) -> torch.Tensor:
    """``H H^H``: ``[..., K, N]`` -> ``[..., K, K]`` Hermitian."""
    return h @ h.mH


def eye_like(k: int, ref: torch.Tensor) -> torch.Tensor:
    return torch.eye(k, dtype=ref.dtype, device=ref.device)


def fro2(w: torch.Tensor) -> torch.Tensor:
    """``‖W‖_F²`` per sample, real."""
    return (w.real.square() + w.imag.square()).sum(dim=(-2, -1))


def scale_to_power(w: torch.Tensor, power: float) -> torch.Tensor:
    """One global scale per sample so that ``‖W‖_F² = power`` (zero precoders stay zero)."""
    p = fro2(w)
    s = torch.where(p > 0, torch.sqrt(power / p.clamp_min(1e-300)), torch.zeros_like(p))
    return w * s[..., None, None]
