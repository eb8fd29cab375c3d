"""Linear precoders: MRT, ZF, ZF with water-filling, RZF (pure batched functions).

Every function takes a channel ``h`` ``[..., num_ue, num_bs_ant]`` (complex64/complex128, row u is
``h_u^H``) and returns a precoder ``[..., num_bs_ant, num_ue]`` of the same dtype with
``‖W‖_F² = power``. ZF, ZF-WF and RZF work in the user space: one Cholesky inverse of the ``K × K`` Gram
matrix (:func:`mimofm.precoders._common.regularized_pinv`), never a decomposition of ``H`` itself except for
the rare samples too ill-conditioned for it. ``precision="double"`` (default) computes in complex128;
``"single"`` in complex64, about twice as fast, with ill-conditioned samples redone in double.
"""

from __future__ import annotations

import torch

from mimofm.core.validation import MimofmInputError, check_num_ue_le_num_ant
from mimofm.precoders._common import (
    Precision,
    gram,
    prepare,
    regularized_inverse,
    scale_to_power,
)

__all__ = ["mrt", "rzf", "rzf_equal_power", "water_filling", "zf", "zf_wf"]


def mrt(h: torch.Tensor, power: float = 1.0, *, precision: Precision = "double") -> torch.Tensor:
    """Maximum-ratio transmission ``W ∝ H^H``: ``[..., K, N]`` -> ``[..., N, K]``."""
    hc, power, _, dtype = prepare(h, power, 1.0, precision)
    energy = torch.view_as_real(hc).square().sum(dim=(-3, -2, -1))  # ‖H‖_F²: [..., K, N, 2] -> [...]
    # conj(H) scaled, then transposed (a view): [..., K, N] -> [..., N, K]
    return (hc.conj() * torch.sqrt(power / energy)[..., None, None]).mT.to(dtype)


def _user_space(hc: torch.Tensor, alpha: float, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows ``T = X^T conj(H)`` ``[..., K, N]`` of ``W = H^H X = T^T``, ``X = (H H^H + αI)^{-1}``, and
    their energies ``[..., K]`` (the column powers of ``H^H X``, measured, so powers are exact at any
    condition number)."""
    k, n = hc.shape[-2], hc.shape[-1]
    hb = hc.reshape(-1, k, n)  # [..., K, N] -> [B, K, N]
    x, _ = regularized_inverse(hb, gram(hb), alpha, precision)
    # [B, K, K] @ [B, K, N] -> [B, K, N] -> [..., K, N]
    t = (x.mT.contiguous() @ hb.conj().resolve_conj()).reshape(hc.shape)
    return t, torch.view_as_real(t).square().sum(dim=(-2, -1))  # [..., K, N, 2] -> [..., K]


def _columns_scaled(t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``W = T^T diag(scale)``: rows ``[..., K, N]`` times a real per-row scale ``[..., K]`` ->
    ``[..., N, K]`` (a transposed view)."""
    return (t * scale.to(t.real.dtype)[..., :, None]).mT


def zf(h: torch.Tensor, power: float = 1.0, *, precision: Precision = "double") -> torch.Tensor:
    """Zero forcing ``W ∝ H^+ = H^H (H H^H)^{-1}`` with one global power scale (as in the papers).

    ``[..., K, N]`` -> ``[..., N, K]``; needs ``K <= N``.
    """
    hc, power, _, dtype = prepare(h, power, 1.0, precision)
    check_num_ue_le_num_ant(hc, "zero forcing")
    t, c = _user_space(hc, 0.0, precision)
    return _columns_scaled(t, torch.sqrt(power / c.sum(-1, keepdim=True)).expand_as(c)).to(dtype)


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


def zf_wf(
    h: torch.Tensor, power: float = 1.0, noise_power: float = 1.0, *, precision: Precision = "double"
) -> torch.Tensor:
    """Zero forcing with sum-rate-optimal water-filling power allocation over the ZF streams.

    With ``W = H^+ diag(√p)`` user k sees SNR ``p_k/σ²`` and the power spent is ``Σ c_k p_k`` with
    ``c_k = [(H H^H)^{-1}]_kk``; water-filling on floors ``c_k σ²`` maximizes the sum rate.
    ``[..., K, N]`` -> ``[..., N, K]``; needs ``K <= N``.
    """
    hc, power, noise_power, dtype = prepare(h, power, noise_power, precision)
    check_num_ue_le_num_ant(hc, "zero forcing with water-filling")
    t, c = _user_space(hc, 0.0, precision)  # [..., K, N], [..., K]
    q = water_filling(c * noise_power, power)  # power spent per stream, Σ q = power
    # Σ_k c_k p_k = Σ q: the division by Σ q removes round-off only
    return _columns_scaled(t, torch.sqrt(q / c * (power / q.sum(-1, keepdim=True)))).to(dtype)


def _alpha(alpha: float | None, k: int, power: float, noise_power: float, *, allow_zero: bool) -> float:
    """RZF's regularization: ``alpha``, or the MMSE choice ``K σ²/P``; finite and ``>= 0`` (``> 0`` unless
    ``allow_zero``), else a named error."""
    a = k * noise_power / power if alpha is None else float(alpha)
    if not (a < float("inf") and (a >= 0 if allow_zero else a > 0)):
        raise MimofmInputError(f"`alpha` must be finite and {'>=' if allow_zero else '>'} 0, got {alpha!r}")
    return a


def rzf(
    h: torch.Tensor,
    power: float = 1.0,
    noise_power: float = 1.0,
    alpha: float | None = None,
    *,
    precision: Precision = "double",
) -> torch.Tensor:
    """Regularized ZF ``W ∝ H^H (H H^H + α I)^{-1}``, one global power scale.

    The default ``α = K σ²/P`` is the MMSE-optimal regularization for equal user powers
    (Peel, Hochwald, Swindlehurst 2005). ``[..., K, N]`` -> ``[..., N, K]``; any ``K``.
    """
    hc, power, noise_power, dtype = prepare(h, power, noise_power, precision)
    k = hc.shape[-2]
    a = _alpha(alpha, k, power, noise_power, allow_zero=True)
    if a == 0 and k > hc.shape[-1]:  # the ZF limit for K > N: the pseudo-inverse keeps it well defined
        return scale_to_power(torch.linalg.pinv(hc.to(torch.complex128)), power).to(dtype)
    t, c = _user_space(hc, a, precision)
    return _columns_scaled(t, torch.sqrt(power / c.sum(-1, keepdim=True)).expand_as(c)).to(dtype)


def rzf_equal_power(
    h: torch.Tensor,
    power: float = 1.0,
    noise_power: float = 1.0,
    alpha: float | None = None,
    *,
    precision: Precision = "double",
) -> torch.Tensor:
    """Regularized ZF with every column at power ``P/K`` (equal power per user, as Sionna's
    ``rzf_precoding_matrix``): ``[..., K, N]`` -> ``[..., N, K]``; ``α`` as in :func:`rzf`."""
    hc, power, noise_power, dtype = prepare(h, power, noise_power, precision)
    k = hc.shape[-2]
    a = _alpha(alpha, k, power, noise_power, allow_zero=False)
    t, c = _user_space(hc, a, precision)
    return _columns_scaled(t, torch.sqrt(power / k / c)).to(dtype)
