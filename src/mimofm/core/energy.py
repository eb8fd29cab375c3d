"""Transmitter energy model of the fm paper (eq. 4) and power normalization.

``E(Ω, γ) = γ·P_TX + P_RF·Σ_i ω_i``: ``γ ∈ [0, 1]`` scales the maximum transmit power ``P_TX``
(watts) and ``Ω ∈ {0,1}^{N_T}`` switches antennas (RF chains) on, each costing ``P_RF`` watts.
"""

from __future__ import annotations

import torch

from mimofm.core.validation import MimofmInputError, check_positive

__all__ = ["apply_mask_and_scale", "energy", "normalize_power", "total_power"]


def total_power(w: torch.Tensor) -> torch.Tensor:
    """``‖W‖_F²`` per sample: complex ``[..., num_bs_ant, num_ue]`` -> real ``[...]``, in the units of
    ``W``'s squared entries (units of the power budget for mimofm's precoders, where ``≤ 1``)."""
    return (w.real.square() + w.imag.square()).sum(dim=(-2, -1))


def normalize_power(w: torch.Tensor, power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Scale each precoder ``[..., num_bs_ant, num_ue]`` to ``‖W‖_F² = power`` (all-zero stays zero)."""
    check_positive(power, "power")
    p = total_power(w)
    if isinstance(power, torch.Tensor):
        power = power.to(p.dtype)
    scale = torch.where(
        p > 0, torch.sqrt(power / p.clamp_min(torch.finfo(p.dtype).tiny)), torch.zeros_like(p)
    )
    return w * scale[..., None, None].to(w.dtype)


def apply_mask_and_scale(w: torch.Tensor, omega: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The transmitted precoder ``√γ·(Ω ⊙ W)``.

    Args:
        w: ``[..., num_bs_ant, num_ue]`` precoder with ``‖W‖_F² ≤ 1``.
        omega: ``[..., num_bs_ant]`` antenna mask in [0, 1] (binary at deployment).
        gamma: ``[...]`` power scale in [0, 1].
    """
    if omega.shape[-1] != w.shape[-2]:
        raise MimofmInputError(f"`omega` has {omega.shape[-1]} antennas, `w` has {w.shape[-2]}")
    return w * omega[..., :, None].to(w.dtype) * torch.sqrt(gamma)[..., None, None].to(w.dtype)


def energy(omega: torch.Tensor, gamma: torch.Tensor, p_tx_w: float, p_rf_w: float) -> torch.Tensor:
    """Energy per transmission ``E(Ω, γ) = γ·P_TX + P_RF·Σω`` (eq. 4) in watts.

    Args:
        omega: ``[..., num_bs_ant]`` antenna on/off mask (values in [0, 1]).
        gamma: ``[...]`` transmit-power scale in [0, 1].
        p_tx_w: maximum transmit power P_TX in watts.
        p_rf_w: fixed power of one active RF chain P_RF in watts.
    """
    check_positive(p_tx_w, "p_tx_w")
    check_positive(p_rf_w, "p_rf_w", allow_zero=True)
    if bool(((omega < 0) | (omega > 1)).any()) or bool(((gamma < 0) | (gamma > 1)).any()):
        raise MimofmInputError("`omega` and `gamma` must lie in [0, 1]")
    return gamma * p_tx_w + p_rf_w * omega.sum(dim=-1)
