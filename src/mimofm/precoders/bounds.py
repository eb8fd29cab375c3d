"""Upper bound on every sum rate: the dirty-paper-coding sum capacity of the MISO broadcast channel.

By uplink-downlink (MAC-BC) duality the sum capacity equals the sum capacity of the dual multiple-access
channel under the same total power (unit noise after SNR scaling):

    C = max_{q ≥ 0, Σ q_k = P} log det(I_N + Σ_k q_k h_k h_k^H)

computed first by projected Newton steps on the simplex (:func:`_newton`: quadratic convergence, one
Cholesky factorization per step), and, for the rare sample Newton leaves unfinished, by sum-power iterative
water-filling with the averaging update that guarantees convergence
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


_NEWTON_STEPS = 30  # most projected-Newton steps before a sample is handed to water-filling
_ARMIJO = 1e-4
_HALVINGS = 30


def _evaluate(g: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log det(I + D G D)`` (nats) ``[B]``, ``a = diag(B)`` ``[B, K]`` and ``B = (I + G Q)^{-1} G``
    ``[B, K, K]`` for ``D = diag(√q)``, through one Cholesky factorization (``I + D G D`` is positive
    definite for every ``q ≥ 0``). ``B = G − (G D)(I + D G D)^{-1}(D G)`` (Woodbury, valid for singular
    ``G``)."""
    k = g.shape[-1]
    d = torch.sqrt(q).to(g.dtype)  # [B, K]
    gd = g * d[:, None, :]  # G D
    s = torch.eye(k, dtype=g.dtype, device=g.device) + d[:, :, None] * gd  # I + D G D
    low, _ = torch.linalg.cholesky_ex(s)
    logdet = 2.0 * torch.log(torch.diagonal(low, dim1=-2, dim2=-1).real).sum(-1)
    y = torch.linalg.solve_triangular(low, gd.mH, upper=False)  # L^{-1} D G: [B, K, K]
    b = g - y.mH @ y  # G D (L L^H)^{-1} D G
    return logdet, torch.diagonal(b, dim1=-2, dim2=-1).real, b


def _start(g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The best of three dual-MAC powers ``[B, K]`` as Newton's start, with its :func:`_evaluate` values:
    equal powers, all power on the strongest user, and water-filling over the users' single-user gains
    (the optimum of orthogonal users); optima often sit on a face of the simplex, far from equal powers."""
    gains = torch.diagonal(g, dim1=-2, dim2=-1).real  # ‖h_k‖²: [B, K]
    starts = torch.stack(
        [
            torch.full_like(gains, 1.0 / gains.shape[-1]),
            torch.nn.functional.one_hot(gains.argmax(-1), gains.shape[-1]).to(gains.dtype),
            water_filling(1.0 / gains, 1.0),
        ]
    )  # [3, B, K]
    evals = [_evaluate(g, s) for s in starts]
    pick, rows = torch.stack([e[0] for e in evals]).argmax(0), torch.arange(g.shape[0], device=g.device)
    # the chosen start and its objective, gradient and B: [B, K], [B], [B, K], [B, K, K]
    return (
        starts[pick, rows],
        *(torch.stack([e[i] for e in evals])[pick, rows] for i in range(3)),
    )


def _newton(
    g: torch.Tensor, start: tuple[torch.Tensor, ...], tol: float, steps: int
) -> tuple[torch.Tensor, ...]:
    """Projected Newton on the simplex ``{q ≥ 0, Σ q = 1}`` for the dual-MAC objective from ``start``
    (:func:`_start`'s powers and values). Returns the powers ``[B, K]``, their objective ``[B]`` and gradient
    ``[B, K]``, the steps taken ``[B]`` and which samples reached the gap tolerance ``[B]``.

    Each step solves the equality-constrained Newton system on the free users (``q_k > 0``, or a gradient
    above the current average ``Σ q a``) with the Hessian ``−|B|²`` (element-wise), then backtracks
    (Armijo) along the projection arc onto the simplex. The objective is self-concordant, so the iteration
    converges quadratically: a few steps replace hundreds of averaged water-filling updates.
    """
    q, logdet, a, bmat = (t.clone() for t in start)
    b_all, k = q.shape
    its = torch.zeros(b_all, dtype=torch.int64, device=q.device)
    done = torch.zeros(b_all, dtype=torch.bool, device=q.device)
    act = torch.arange(b_all, device=q.device)
    ld_all, a_all = logdet.clone(), a.clone()
    ga, qa = g, q.clone()
    eye = torch.eye(k + 1, dtype=q.dtype, device=q.device)
    for _ in range(steps):
        avg = (qa * a).sum(-1, keepdim=True)
        gap = (a.amax(-1) - avg[:, 0]).clamp_min(0.0)
        met = gap / _LN2 < tol * (logdet / _LN2).clamp_min(1.0)
        free = (qa > 1e-14) | (a > avg)  # [B', K]; a round-off remnant below the average is not free
        ff = free[:, :, None] & free[:, None, :]
        hess = torch.where(ff, bmat.real.square() + bmat.imag.square(), 0.0)  # |B|² on the free block
        ridge = 1e-14 * hess.diagonal(0, -2, -1).amax(-1, keepdim=True)
        hess = hess + torch.diag_embed(torch.where(free, ridge, 1.0))
        kkt = eye.expand(qa.shape[0], k + 1, k + 1).clone()  # [[H, e_F], [e_F^T, 0]]
        kkt[:, :k, :k] = hess
        kkt[:, :k, k] = free.to(q.dtype)
        kkt[:, k, :k] = free.to(q.dtype)
        kkt[:, k, k] = 0.0
        rhs = torch.cat([torch.where(free, a, 0.0), torch.zeros_like(a[:, :1])], -1)
        step, info = torch.linalg.solve_ex(kkt, rhs)
        d = torch.where(free, step[:, :k], 0.0)  # Σ d = 0
        base = torch.where(free, qa, 0.0)  # remnants of non-free users are dropped with the step
        stuck = info != 0
        # Armijo search along the projection arc t -> P(q + t d) (Bertsekas' projected Newton): the
        # projection onto the simplex may set several users to 0 in one step
        t = torch.ones_like(logdet)
        accepted = stuck.clone()
        new_q, new_ld, new_a, new_b = qa.clone(), logdet.clone(), a.clone(), bmat.clone()
        for _ in range(_HALVINGS):
            trial = torch.nonzero(~accepted).flatten()  # [B'] -> [B_trial]
            if trial.numel() == 0:
                break
            qt = water_filling(-(base[trial] + t[trial, None] * d[trial]), 1.0)  # projection onto the simplex
            ld, at, bt = _evaluate(ga[trial], qt)
            ascent = (a[trial] * (qt - qa[trial])).sum(-1)
            # Armijo, with room for round-off once the ascent is below double precision
            ok = ld >= logdet[trial] + _ARMIJO * ascent - 1e-14 * logdet[trial].abs()
            idx = trial[ok]
            new_q[idx], new_ld[idx], new_a[idx], new_b[idx] = qt[ok], ld[ok], at[ok], bt[ok]
            accepted[idx] = True
            t[trial[~ok]] *= 0.5
        stuck = stuck | ~accepted  # no ascent found: water-filling takes over
        its[act[~met]] += 1
        finished = met | stuck
        done[act[met]] = True
        q[act] = torch.where(met[:, None], qa, new_q)
        ld_all[act] = torch.where(met, logdet, new_ld)
        a_all[act] = torch.where(met[:, None], a, new_a)
        keep = ~finished
        act, ga = act[keep], ga[keep]
        qa, logdet, a, bmat = new_q[keep], new_ld[keep], new_a[keep], new_b[keep]
        if act.numel() == 0:
            break
    return q, ld_all, a_all, its, done


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
        max_iter: most updates per sample: up to 30 Newton steps (fewer when ``max_iter`` is smaller),
            then water-filling updates up to ``max_iter``. A sample also stops when its gap has not
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
    g = gram(hs)  # [B, K, K]

    # most samples finish in the Newton phase; the rest continue by water-filling from its q
    q, logdet, a, its, _ = _newton(g, _start(g), tol, min(_NEWTON_STEPS, int(max_iter)))
    # the square root of G (one eigendecomposition) only for the water-filling updates, filled on demand
    l = torch.zeros_like(g)

    def gap_of(q, a):  # certified duality gap in nats (Frank-Wolfe bound), [B']
        return (a.amax(-1) - (q * a).sum(-1)).clamp_min(0.0)

    gap = gap_of(q, a)
    best_gap, stall = gap.clone(), torch.zeros_like(its)  # round-off floor detection
    active = torch.nonzero(gap / _LN2 >= tol * (logdet / _LN2).clamp_min(1.0)).flatten()  # [B_active]
    if active.numel():
        l[active] = _sqrtm_psd(g[active])
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
