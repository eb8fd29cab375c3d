"""Linear precoders: MRT, ZF, ZF with water-filling, RZF (pure batched functions).

Every function takes a channel ``h`` ``[..., num_ue, num_bs_ant]`` (complex64/complex128, row u is
``h_u^H``) and returns a precoder ``[..., num_bs_ant, num_ue]`` of the same dtype with
``‖W‖_F² = power``. Computation runs in complex128 inside.
"""

from __future__ import annotations

import torch

from mimofm.core.validation import MimofmInputError, check_num_ue_le_num_ant
from mimofm.precoders._common import eye_like, gram, prepare, scale_to_power

__all__ = ["mrt", "rzf", "water_filling", "zf", "zf_wf"]


def mrt(h: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Maximum-ratio transmission ``W ∝ H^H``: ``[..., K, N]`` -> ``[..., N, K]``."""
    h64, power, _, dtype = prepare(h, power, 1.0)
    return scale_to_power(h64.mH, power).to(dtype)


def _pinv(h64: torch.Tensor) -> torch.Tensor:
    """Pseudo-inverse ``H^+`` ``[..., N, K]`` (SVD based: finite for rank-deficient channels)."""
    return torch.linalg.pinv(h64)


def zf(h: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Zero forcing ``W ∝ H^+ = H^H (H H^H)^{-1}`` with one global power scale (as in the papers).

    ``[..., K, N]`` -> ``[..., N, K]``; needs ``K <= N``.
    """
    h64, power, _, dtype = prepare(h, power, 1.0)
    check_num_ue_le_num_ant(h64, "zero forcing")
    return scale_to_power(_pinv(h64), power).to(dtype)


def water_filling(floors: torch.Tensor, budget: float | torch.Tensor) -> torch.Tensor:
    """Allocate ``q_k = (ν - f_k)^+`` with ``Σ q_k = budget`` (exact, batched, sort based).

    Args:
        floors: ``[..., K]`` positive floors ``f_k``.
        budget: total to distribute (scalar or ``[...]``).
    Returns:
        ``[..., K]`` allocation, non-negative, summing to ``budget``.
    """
    f_sorted, _ = torch.sort(floors, dim=-1)
    k = floors.shape[-1]
    m = torch.arange(1, k + 1, dtype=floors.dtype, device=floors.device)
    if not isinstance(budget, torch.Tensor):
        budget = torch.full(floors.shape[:-1], float(budget), dtype=floors.dtype, device=floors.device)
    # candidate water level when the m smallest floors are active: [..., K]
    levels = (budget[..., None] + torch.cumsum(f_sorted, -1)) / m
    active = levels > f_sorted  # true for a prefix
    n_active = active.sum(-1, keepdim=True).clamp_min(1)
    nu = torch.gather(levels, -1, n_active - 1)  # [..., 1]
    return (nu - floors).clamp_min(0.0)


def zf_wf(h: torch.Tensor, power: float = 1.0, noise_power: float = 1.0) -> torch.Tensor:
    """Zero forcing with sum-rate-optimal water-filling power allocation over the ZF streams.

    With ``W = H^+ diag(√p)`` user k sees SNR ``p_k/σ²`` and the power spent is ``Σ c_k p_k`` with
    ``c_k = [(H H^H)^{-1}]_kk``; water-filling on floors ``c_k σ²`` maximizes the sum rate.
    ``[..., K, N]`` -> ``[..., N, K]``; needs ``K <= N``.
    """
    h64, power, noise_power, dtype = prepare(h, power, noise_power)
    check_num_ue_le_num_ant(h64, "zero forcing with water-filling")
    hp = _pinv(h64)  # [..., N, K]
    c = (hp.real.square() + hp.imag.square()).sum(-2)  # [..., K] column energies
    q = water_filling(c * noise_power, power)  # power spent per stream
    p = q / c
    w = hp * torch.sqrt(p)[..., None, :]
    return scale_to_power(w, power).to(dtype)  # removes round-off only


def rzf(
    h: torch.Tensor, power: float = 1.0, noise_power: float = 1.0, alpha: float | None = None
) -> torch.Tensor:
    """Regularized ZF ``W ∝ H^H (H H^H + α I)^{-1}``, one global power scale.

    The default ``α = K σ²/P`` is the MMSE-optimal regularization for equal user powers
    (Peel, Hochwald, Swindlehurst 2005). ``[..., K, N]`` -> ``[..., N, K]``; any ``K``.
    """
    h64, power, noise_power, dtype = prepare(h, power, noise_power)
    k = h64.shape[-2]
    a = k * noise_power / power if alpha is None else float(alpha)
    if not (a >= 0 and a < float("inf")):
        raise MimofmInputError(f"`alpha` must be finite and >= 0, got {alpha!r}")
    if a == 0:  # the ZF limit, well defined for any K through the pseudo-inverse
        return scale_to_power(_pinv(h64), power).to(dtype)
    g = gram(h64)  # [..., K, K]
    x = torch.linalg.solve(g + a * eye_like(k, g), eye_like(k, g).expand_as(g))  # [..., K, K]
    return scale_to_power(h64.mH @ x, power).to(dtype)
