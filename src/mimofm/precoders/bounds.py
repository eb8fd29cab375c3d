"""Upper bound on every sum rate: the dirty-paper-coding sum capacity of the MISO broadcast channel.

By uplink-downlink (MAC-BC) duality the sum capacity equals the sum capacity of the dual multiple-access
channel under the same total power (unit noise after SNR scaling):

    C = max_{q ≥ 0, Σ q_k = P} log det(I_N + Σ_k q_k h_k h_k^H)

computed by sum-power iterative water-filling with the averaging update that guarantees convergence
(Jindal, Rhee, Vishwanath, Jafar, Goldsmith, IEEE Trans. IT 51(4), 2005, Algorithm 2):
``q ← q_new/K + q·(K−1)/K`` where ``q_new`` water-fills the effective gains ``a_k/(1 − q_k a_k)``.

Everything runs in the ``K``-dimensional user space. With ``G = H H^H`` and its Hermitian square root
``L = G^{1/2}`` (one eigendecomposition before the loop), ``M = L Q L = U diag(ν) U^H`` gives

* ``log det(I_N + H^H Q H) = Σ_i log(1 + ν_i)`` and
* ``a = diag((I + G Q)^{-1} G) = diag(L U diag(1/(1+ν)) U^H L)`` (``a_k = h_k^H S^{-1} h_k``),

both sums of non-negative terms (no cancellation at 80 dB, finite for ``q_k = 0``, ``K > N`` and
rank-deficient channels). The objective is concave on the simplex with gradient ``a`` (nats), so every
iterate certifies ``C* ≤ C(q) + P·max_k a_k − Σ_k q_k a_k``; a sample stops when that gap is below
``tol·max(1, C)`` (bits), or when the gap stalls at its round-off floor, and both the value and the
certified upper bound are returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mimofm.core.validation import MimofmInputError
from mimofm.precoders._common import gram, prepare, snr_scaled
from mimofm.precoders.linear import water_filling

__all__ = ["DPCResult", "dpc_sum_capacity"]

_LN2 = math.log(2.0)
_STALL = 200  # updates without a 1% gap decrease after which a sample stops (round-off floor)


@dataclass
class DPCResult:
    """Output of :func:`dpc_sum_capacity`.

    Attributes:
        sum_rate: ``[...]`` float64, sum rate in bit/s/Hz achieved by ``powers`` (≤ capacity).
        upper_bound: ``[...]`` float64, certified upper bound on the capacity (≥ ``sum_rate``).
        iterations: ``[...]`` int64, water-filling updates run.
        powers: ``[..., K]`` float64 dual-MAC powers in the caller's units (sum ``power``, noise σ²).
    """

    sum_rate: torch.Tensor
    upper_bound: torch.Tensor
    iterations: torch.Tensor
    powers: torch.Tensor


def _sqrtm_psd(g: torch.Tensor) -> torch.Tensor:
    """Hermitian square root of a PSD ``[..., K, K]`` matrix (negative round-off eigenvalues -> 0)."""
    lam, v = torch.linalg.eigh(g)
    s = torch.sqrt(lam.clamp_min(0.0)).to(v.dtype)
    return (v * s[..., None, :]) @ v.mH


def _objective_and_grad(l: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log det(I + L Q L)`` (nats) ``[B]`` and ``a = diag((I + G Q)^{-1} G)`` ``[B, K]`` (``G = L²``)."""
    # M = L diag(q) L: [B, K, K]
    m = (l * q.to(l.dtype)[:, None, :]) @ l
    nu, u = torch.linalg.eigh(m)
    nu = nu.clamp_min(0.0)
    logdet = torch.log1p(nu).sum(-1)
    lu = l @ u  # [B, K, K]
    a = ((lu.real.square() + lu.imag.square()) / (1.0 + nu)[:, None, :]).sum(-1)
    return logdet, a


def dpc_sum_capacity(
    h: torch.Tensor,
    power: float = 1.0,
    noise_power: float = 1.0,
    *,
    tol: float = 1e-10,
    max_iter: int = 5000,
) -> DPCResult:
    """DPC sum capacity of the MISO broadcast channel under ``‖W‖_F² ≤ power`` (any ``K``, ``N``).

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (row k is ``h_k^H``).
        power: total transmit power P. noise_power: σ².
        tol: relative duality-gap tolerance (stop when gap < ``tol·max(1, C)`` in bit/s/Hz).
        max_iter: most water-filling updates per sample. A sample also stops when its gap has not
            decreased by 1% in 200 updates (its round-off floor, ~1e-9 relative at 80 dB with
            ``K > N``); in both cases ``upper_bound`` is still a valid bound.
    Returns:
        :class:`DPCResult`; ``sum_rate`` ``[...]`` is reached by DPC and ``upper_bound`` ``[...]``
        bounds the sum rate of every linear or nonlinear precoder on the same channel.
    """
    h64, power, noise_power, _ = prepare(h, power, noise_power)
    if not (tol >= 0) or int(max_iter) < 0:
        raise MimofmInputError(f"`tol` must be >= 0 and `max_iter` >= 0, got {tol!r}, {max_iter!r}")
    batch, k = h64.shape[:-2], h64.shape[-2]
    hs = snr_scaled(h64, power, noise_power)  # unit power, unit noise from here on
    # [..., K, N] -> [B, K, N]
    hs = hs.reshape(-1, k, hs.shape[-1])
    l = _sqrtm_psd(gram(hs))  # [B, K, K]
    b = l.shape[0]

    q = torch.full((b, k), 1.0 / k, dtype=torch.float64, device=l.device)
    logdet, a = _objective_and_grad(l, q)
    its = torch.zeros(b, dtype=torch.int64, device=l.device)

    def gap_of(q, a):  # certified duality gap in nats (Frank-Wolfe bound), [B']
        return (a.amax(-1) - (q * a).sum(-1)).clamp_min(0.0)

    gap = gap_of(q, a)
    best_gap, stall = gap.clone(), torch.zeros_like(its)  # round-off floor detection
    active = torch.nonzero(gap / _LN2 >= tol * (logdet / _LN2).clamp_min(1.0)).flatten()  # [B_active]
    for _ in range(int(max_iter)):
        if active.numel() == 0:
            break
        qa, aa, la = q[active], a[active], l[active]
        # effective single-user gains with the user's own term removed (Sherman-Morrison)
        eff = aa / (1.0 - qa * aa).clamp_min(1e-300)
        floors = torch.where(eff > 0, 1.0 / eff.clamp_min(1e-300), torch.full_like(eff, 1e300))
        q_next = water_filling(floors, 1.0) / k + qa * ((k - 1) / k)
        ld_next, a_next = _objective_and_grad(la, q_next)
        q[active], a[active], logdet[active] = q_next, a_next, ld_next
        its[active] += 1
        g_next = gap_of(q_next, a_next)
        gap[active] = g_next
        # a gap that has not dropped 1% in _STALL updates sits on its round-off floor (80 dB, K > N)
        progress = g_next < 0.99 * best_gap[active]
        best_gap[active] = torch.where(progress, g_next, best_gap[active])
        stall[active] = torch.where(progress, 0, stall[active] + 1)
        done = (g_next / _LN2 < tol * (ld_next / _LN2).clamp_min(1.0)) | (stall[active] >= _STALL)
        active = active[~done]

    rate = logdet / _LN2
    return DPCResult(
        sum_rate=rate.reshape(batch),  # [B_flat] -> batch
        upper_bound=(rate + gap / _LN2).reshape(batch),  # [B_flat] -> batch
        iterations=its.reshape(batch),  # [B_flat] -> batch
        powers=(q * power).reshape(batch + (k,)),  # [B_flat, K] -> batch + [K]
    )
