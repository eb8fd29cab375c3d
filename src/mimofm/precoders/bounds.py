"""Upper bound on every sum rate: the dirty-paper-coding sum capacity of the MISO broadcast channel.

By uplink-downlink (MAC-BC) duality the sum capacity equals the sum capacity of the dual multiple-access
channel under the same total power:

    C = max_{q ≥ 0, Σ q_k = P} log det(I_N + Σ_k q_k h_k h_k^H)          (unit noise)

computed by sum-power iterative water-filling with the averaging update that guarantees convergence
(Jindal, Rhee, Vishwanath, Jafar, Goldsmith, IEEE Trans. IT 51(4), 2005, Algorithm 2).
Everything runs in the ``K``-dimensional user space: with ``G = H H^H``,
``log det(I_N + H^H Q H) = log det(I_K + Q^{1/2} G Q^{1/2})`` and
``a_k = h_k^H S^{-1} h_k = [(I + G Q)^{-1} G]_kk`` (push-through identity).

The objective is concave on the simplex with gradient ``a`` (nats), so every iterate certifies
``C* ≤ C(q) + P·max_k a_k − Σ_k q_k a_k`` (Frank-Wolfe gap); iteration stops when that gap is below
``tol`` (relative) and both the value and the certified upper bound are returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mimofm.precoders._common import eye_like, gram, prepare, snr_scaled
from mimofm.precoders.linear import water_filling

__all__ = ["DPCResult", "dpc_sum_capacity"]

_LN2 = math.log(2.0)


@dataclass
class DPCResult:
    """``sum_rate`` ``[...]`` (bit/s/Hz, achieved by the returned powers), ``upper_bound`` ``[...]``
    (certified), ``iterations`` ``[...]``, ``powers`` ``[..., K]`` dual-MAC powers (sum P, unit noise)."""

    sum_rate: torch.Tensor
    upper_bound: torch.Tensor
    iterations: torch.Tensor
    powers: torch.Tensor


def _logdet_and_grad(g: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log det(I + Q^{1/2} G Q^{1/2})`` (nats) ``[...]`` and ``a = diag((I + G Q)^{-1} G)`` ``[..., K]``."""
    k = g.shape[-1]
    sq = torch.sqrt(q).to(g.dtype)
    m = eye_like(k, g) + sq[..., :, None] * g * sq[..., None, :]  # Hermitian positive definite
    chol, _ = torch.linalg.cholesky_ex(m)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1).real).sum(-1)
    a = torch.linalg.solve(eye_like(k, g) + g * q.to(g.dtype)[..., None, :], g)  # (I + G Q)^{-1} G
    return logdet, torch.diagonal(a, dim1=-2, dim2=-1).real.clamp_min(0.0)


def dpc_sum_capacity(h: torch.Tensor, power: float = 1.0, noise_power: float = 1.0, *, tol: float = 1e-9,
                     max_iter: int = 5000) -> DPCResult:
    """DPC sum capacity of the MISO broadcast channel ``h`` ``[..., K, N]`` under ``Σ power ≤ P``.

    Returns a :class:`DPCResult` whose ``sum_rate`` is within ``tol`` (relative, certified by the duality
    gap) of the capacity; it upper-bounds the sum rate of every linear precoder on the same channel.
    """
    h64, power, noise_power, _ = prepare(h, power, noise_power)
    hs = snr_scaled(h64, power, noise_power)  # unit power, unit noise
    g = gram(hs)  # [..., K, K]
    k = g.shape[-1]
    q = torch.full(g.shape[:-1], 1.0 / k, dtype=torch.float64, device=g.device)  # [..., K]
    its = torch.zeros(g.shape[:-2], dtype=torch.int64, device=g.device)
    active = torch.ones_like(its, dtype=torch.bool)
    logdet, a = _logdet_and_grad(g, q)
    gap = (a.amax(-1) - (q * a).sum(-1)).clamp_min(0.0)
    for _ in range(max_iter):
        done = gap <= tol * logdet.abs().clamp_min(1.0) * 1.0
        active = active & ~done
        if not bool(active.any()):
            break
        # effective single-user gains with the user's own term removed: a / (1 - q a)
        eff = a / (1.0 - q * a).clamp_min(1e-300)
        floors = torch.where(eff > 0, 1.0 / eff.clamp_min(1e-300), torch.full_like(eff, 1e300))
        q_new = water_filling(floors, 1.0)
        q_next = q_new / k + q * (k - 1) / k
        q = torch.where(active[..., None], q_next, q)
        its += active.to(torch.int64)
        logdet, a = _logdet_and_grad(g, q)
        gap = (a.amax(-1) - (q * a).sum(-1)).clamp_min(0.0)
    return DPCResult(sum_rate=logdet / _LN2, upper_bound=(logdet + gap) / _LN2, iterations=its,
                     powers=q * power)
