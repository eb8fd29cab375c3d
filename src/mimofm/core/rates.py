"""SINR, per-user rate and sum rate of the multi-user MISO downlink (fm paper, eqs. 1-3).

Convention (DESIGN.md): the channel ``h`` is ``[..., num_ue, num_bs_ant]`` with row ``u`` equal to
``h_u^H``, the precoder ``w`` is ``[..., num_bs_ant, num_ue]``, and user ``u`` receives
``y_u = h[u] @ w @ x + n_u`` with unit-power independent symbols. With an SNR-scaled channel the
noise power is 1; the functions also take an explicit ``noise_power``.
"""

from __future__ import annotations

import torch

from mimofm.core.validation import check_channel, check_positive, check_precoder

__all__ = ["effective_gains", "rates_from_hw", "sinr", "sinr_from_hw", "sum_rate", "user_rates"]


def effective_gains(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``|h_u^H w_j|^2`` for every (user u, stream j): ``[..., num_ue, num_ue]`` real."""
    # [..., K, N] @ [..., N, K] -> [..., K, K]; entry (u, j) = h_u^H w_j
    g = h @ w
    return g.real.square() + g.imag.square()


def sinr_from_hw(hw: torch.Tensor, noise_power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-user SINR (eq. 2) from the effective channel ``H W``: ``[..., K, K]`` -> ``[..., K]``.

    Entry ``(u, j)`` of ``hw`` is ``h_u^H w_j`` (complex); the result is real, in the dtype of ``hw``'s
    real part (complex128 in, float64 out). No input validation: the hot path of the iterative
    precoders, which pass their own (already validated) products; :func:`sinr` validates.
    ``noise_power``: σ², scalar or broadcastable to ``[...]``.
    """
    p = hw.real.square() + hw.imag.square()  # |h_u^H w_j|²  [..., K, K]
    signal = torch.diagonal(p, dim1=-2, dim2=-1)  # [..., K]
    interference = p.sum(dim=-1) - signal  # [..., K]
    if isinstance(noise_power, torch.Tensor):
        noise_power = noise_power.to(p.dtype)[..., None]
    return signal / (interference.clamp_min(0.0) + noise_power)


def rates_from_hw(hw: torch.Tensor, noise_power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-user rates ``log2(1 + SINR_u)`` in bit/s/Hz from ``H W`` ``[..., K, K]`` -> ``[..., K]``.

    :func:`sinr_from_hw` without validation (unit noise by default); float64 in, float64 out.
    """
    return torch.log2(1.0 + sinr_from_hw(hw, noise_power))


def sinr(h: torch.Tensor, w: torch.Tensor, noise_power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-user SINR (eq. 2): ``[..., num_ue]`` real.

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel.
        w: ``[..., num_bs_ant, num_ue]`` complex precoder (its power is used as is).
        noise_power: σ², scalar or broadcastable to ``[...]``.
    """
    check_channel(h, "h")
    check_precoder(w, h, "w")
    check_positive(noise_power, "noise_power")
    # [..., K, N] @ [..., N, K] -> [..., K, K]; entry (u, j) = h_u^H w_j
    return sinr_from_hw(h @ w, noise_power)


def user_rates(h: torch.Tensor, w: torch.Tensor, noise_power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-user rate ``log2(1 + SINR_u)`` in bit/s/Hz (eq. 3): ``[..., num_ue]`` real.

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (row ``u`` is ``h_u^H``), SNR-scaled when
            ``noise_power`` is 1.
        w: ``[..., num_bs_ant, num_ue]`` complex precoder, its power used as is (``‖W‖_F² ≤ 1`` in units of
            the power budget).
        noise_power: σ² in the units of ``h``'s squared gains, scalar or broadcastable to ``[...]``.
    """
    return torch.log2(1.0 + sinr(h, w, noise_power))


def sum_rate(h: torch.Tensor, w: torch.Tensor, noise_power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Sum rate over users in bit/s/Hz: ``h`` ``[..., num_ue, num_bs_ant]``, ``w``
    ``[..., num_bs_ant, num_ue]`` (complex) -> ``[...]`` real; the sum of :func:`user_rates` (same
    arguments and units)."""
    return user_rates(h, w, noise_power).sum(dim=-1)
