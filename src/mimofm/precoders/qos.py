"""QoS power minimization: the least total power meeting per-user rate targets, and a greedy
antenna switch-off on top of it (the classical baseline of fm's energy model, eq. 4).

``min Σ‖w_k‖²  s.t.  SINR_k ≥ γ_k = 2^{R_k} − 1`` is solved exactly through uplink-downlink duality
(Schubert & Boche 2004; Wiesel, Eldar & Shamai 2006), at unit noise on ``hs = h/σ``:

1. dual uplink powers: the least fixed point of ``λ = I(λ)``, ``I_k(λ) = c_k / a_k(λ)`` with
   ``c_k = γ_k/(1+γ_k)``, ``a_k = h_k^H Σ^{-1} h_k``, ``Σ = I + Σ_j λ_j h_j h_j^H``. ``I`` is a
   concave standard interference function, so ``F(λ) = λ − I(λ)`` is convex and Newton's method
   converges monotonically and superlinearly once it lands above the fixed point (Boche & Schubert
   2008); a Newton step that is not positive falls back to the plain step ``λ ← I(λ)``;
2. beam directions ``w̃_k ∝ Σ^{-1} h_k`` (the uplink MMSE receivers);
3. downlink powers from the ``K × K`` system ``|h_k^H w̃_k|² p_k/γ_k − Σ_{j≠k} |h_k^H w̃_j|² p_j = 1``.

All steps run in user space: with ``L = G^{1/2}`` (``G = H H^H``) and ``L Λ L = U diag(ν) U^H``,
``B = H Σ^{-1} H^H = (L U) diag(1/(1+ν)) (L U)^H`` (non-negative sums, no cancellation) and
``Σ^{-1} H^H = H^H (I − Λ B)`` (Woodbury).

Infeasibility is certified, not guessed: the noise-free map ``I_∞`` bounds ``I`` from below, and a
non-zero ``x ≥ 0`` with ``I_∞(x) ≥ x`` (Collatz-Wielandt) proves that no power vector meets the
targets. Targets that would need more than ``1e12`` times the noise power in the dual, or that sit within
``1e-9`` of the feasibility boundary, are also reported infeasible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mimofm.core.energy import energy
from mimofm.core.validation import MimofmInputError, check_choice, check_positive, check_rates
from mimofm.precoders._common import fro2, gram, prepare, snr_scaled

__all__ = ["AntennaSelectionResult", "QoSResult", "greedy_antenna_selection", "qos_power_min"]

_DIVERGED = 1e12  # total dual power (units of the noise) beyond which targets are declared infeasible
_RANK_TOL = 1e-12  # eigenvalues of Λ^{1/2} G Λ^{1/2} below this fraction of the largest count as zero
_CW_TOL = 1e-9  # I_∞(x)_k ≥ (1 − _CW_TOL)·x_k on the support of x certifies infeasibility


@dataclass
class QoSResult:
    """Output of :func:`qos_power_min`.

    Attributes:
        w: ``[..., num_bs_ant, num_ue]`` precoder (API dtype) meeting every target; zeros where infeasible.
        power: ``[...]`` float64 total transmit power ``‖W‖_F²`` (``+inf`` where infeasible).
        feasible: ``[...]`` bool, targets reachable with finite power.
        within_budget: ``[...]`` bool, feasible and ``power ≤ max_power`` (= ``feasible`` without a budget).
        iterations: ``[...]`` int64, fixed-point/Newton updates run.
    """

    w: torch.Tensor
    power: torch.Tensor
    feasible: torch.Tensor
    within_budget: torch.Tensor
    iterations: torch.Tensor


def _sqrtm_psd(g: torch.Tensor) -> torch.Tensor:
    """Hermitian square root of a PSD ``[..., K, K]`` matrix."""
    lam, v = torch.linalg.eigh(g)
    return (v * torch.sqrt(lam.clamp_min(0.0)).to(v.dtype)[..., None, :]) @ v.mH


def _coupling(l: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """``B = H Σ^{-1} H^H = (I + G Λ)^{-1} G`` ``[B, K, K]`` from ``L = G^{1/2}`` and ``λ`` ``[B, K]``."""
    # L Λ L: [B, K, K]
    nu, u = torch.linalg.eigh((l * lam.to(l.dtype)[:, None, :]) @ l)
    lu = l @ u
    return (lu / (1.0 + nu.clamp_min(0.0)).to(lu.dtype)[:, None, :]) @ lu.mH


def _noise_free_ratio(g: torch.Tensor, lam: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``I_∞(λ)_k / λ_k = c_k / t∞_k`` ``[B, K]`` (``inf`` for users with ``λ_k = 0``).

    ``t∞_k = λ_k h_k^H (Σ_j λ_j h_j h_j^H)^+ h_k = [P]_kk``, ``P`` the projector on the range of
    ``Λ^{1/2} G Λ^{1/2}`` (the noise-free uplink SINR of user k is ``t∞_k/(1 − t∞_k)``).
    """
    s = torch.sqrt(lam).to(g.dtype)
    nu, u = torch.linalg.eigh(s[:, :, None] * g * s[:, None, :])  # [B, K], [B, K, K]
    keep = nu > _RANK_TOL * nu.amax(-1, keepdim=True).clamp_min(1e-300)
    t = ((u.real.square() + u.imag.square()) * keep[:, None, :]).sum(-1)  # [B, K]
    return torch.where(lam > 0, c / t.clamp_min(1e-300), float("inf"))


def _noise_free_infeasible(g: torch.Tensor, lam: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Collatz-Wielandt certificate of infeasibility ``[B]``.

    The noise-free map ``I_∞`` is monotone and homogeneous and ``I ≥ I_∞``, so a non-zero ``x ≥ 0``
    with ``I_∞(x) ≥ x`` proves that no ``λ`` has ``λ > I(λ)`` (no finite power meets the targets).
    Divergent iterates concentrate on the users that cannot be separated: ``x`` is ``λ`` restricted
    to the users ``S`` whose ratio ``I_∞(λ)_k/λ_k`` is already ``≥ 1`` (up to ``_CW_TOL``).
    """
    ratio = _noise_free_ratio(g, lam, c)
    s = (ratio >= 1.0 - _CW_TOL) & (lam > 0)
    x = torch.where(s, lam, 0.0)
    return s.any(-1) & (_noise_free_ratio(g, x, c).amin(-1) >= 1.0 - _CW_TOL)


def _dual_powers(g: torch.Tensor, l: torch.Tensor, c: torch.Tensor, tol: float, max_iter: int):
    """Least fixed point of ``λ = c / diag(B(λ))`` per sample; returns ``λ`` ``[B, K]``, infeasible ``[B]``,
    iterations ``[B]``. Users with ``c_k = 0`` keep ``λ_k = 0``."""
    bsz, k = c.shape
    served = c > 0
    lam = torch.where(served, c / torch.diagonal(g, dim1=-2, dim2=-1).real.clamp_min(1e-300), 0.0)  # I(0)
    infeasible = torch.zeros(bsz, dtype=torch.bool, device=c.device)
    certified = torch.zeros_like(infeasible)  # a Newton step landed above the fixed point
    its = torch.zeros(bsz, dtype=torch.int64, device=c.device)
    eye = torch.eye(k, dtype=torch.float64, device=c.device)
    active = torch.arange(bsz, device=c.device)
    for _ in range(int(max_iter)):
        if active.numel() == 0:
            break
        la, ca, sa = lam[active], c[active], served[active]
        bmat = _coupling(l[active], la)  # [B', K, K]
        a = torch.diagonal(bmat, dim1=-2, dim2=-1).real.clamp_min(1e-300)
        plain = torch.where(sa, ca / a, 0.0)  # I(λ)
        f = la - plain
        conv = ((f.abs() <= tol * la) | ~sa).all(-1)
        # Newton: (I − D) δ = −F with D = ∂I/∂λ = diag(c/a²) |B|²
        d = (ca / a.square())[:, :, None] * (bmat.real.square() + bmat.imag.square())
        step, info = torch.linalg.solve_ex(eye - d, -f[..., None])
        newton = la + step[..., 0]
        good = (info == 0) & torch.isfinite(newton).all(-1) & ((newton > 0) | ~sa).all(-1)
        nxt = torch.where(good[:, None], torch.where(sa, newton, 0.0), plain)
        cert = certified[active] | good
        bad = torch.zeros_like(conv)
        unsure = ~cert & ~conv
        if bool(unsure.any()):  # only samples never certified feasible can be infeasible
            idx = torch.nonzero(unsure).flatten()  # [B_unsure]
            bad[idx] = _noise_free_infeasible(g[active[idx]], la[idx], ca[idx])
        bad |= ~cert & (nxt.sum(-1) > _DIVERGED)
        lam[active] = torch.where(conv[:, None], la, nxt)
        certified[active] = cert
        infeasible[active] = bad
        its[active] += (~conv).to(torch.int64)
        active = active[~(conv | bad)]
    return lam, infeasible, its


def _solve(hs: torch.Tensor, gamma: torch.Tensor, tol: float, max_iter: int):
    """QoS at unit noise on validated ``hs`` ``[B, K, N]`` (zero rows allowed), ``gamma`` ``[B, K]``.

    Returns ``w`` ``[B, N, K]`` complex128, ``power`` ``[B]`` (inf where infeasible), ``feasible``, ``its``.
    """
    k = hs.shape[-2]
    g = gram(hs)  # [B, K, K]
    served = gamma > 0
    dead = (served & (torch.diagonal(g, dim1=-2, dim2=-1).real <= 0)).any(-1)  # user with no channel left
    c = torch.where(served & ~dead[:, None], gamma / (1.0 + gamma), 0.0)
    l = _sqrtm_psd(g)
    lam, infeasible, its = _dual_powers(g, l, c, tol, max_iter)

    # beams Σ^{-1} H^H = H^H (I − Λ B): [B, N, K], unit-norm columns
    bmat = _coupling(l, lam)
    x = torch.eye(k, dtype=g.dtype, device=g.device) - lam.to(g.dtype)[:, :, None] * bmat
    wt = hs.mH @ x
    wt = wt / torch.linalg.vector_norm(wt, dim=-2, keepdim=True).clamp_min(1e-300)
    # downlink powers: (diag(T_kk/γ_k) − T_offdiag) p = 1 on served users; T_kj = |h_k^H w̃_j|²
    hw = hs @ wt  # [B, K, K]
    t = hw.real.square() + hw.imag.square()
    t_kk = torch.diagonal(t, dim1=-2, dim2=-1)
    m = torch.diag_embed(t_kk / gamma.clamp_min(1e-300) + t_kk) - t
    m = torch.where(served[:, :, None] & served[:, None, :], m, torch.diag_embed(torch.ones_like(t_kk)))
    p, info = torch.linalg.solve_ex(m, served.to(m.dtype)[..., None])
    p = torch.where(served, p[..., 0], 0.0)
    ok = ~infeasible & ~dead & (info == 0) & torch.isfinite(p).all(-1) & ((p > 0) | ~served).all(-1)
    p = torch.where(ok[:, None], p, 0.0)
    w = wt * torch.sqrt(p).to(wt.dtype)[:, None, :]
    power = torch.where(ok, fro2(w), torch.full_like(p[:, 0], float("inf")))
    return w, power, ok, its


def qos_power_min(
    h: torch.Tensor,
    rate_targets,
    noise_power: float = 1.0,
    *,
    tol: float = 1e-10,
    max_iter: int = 10000,
    max_power: float | None = None,
    on_infeasible: Literal["report", "raise"] = "report",
) -> QoSResult:
    """Least total transmit power meeting per-user rates ``rate_targets`` (bit/s/Hz).

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (row k is ``h_k^H``; normally SNR-scaled, so
            full power is 1). rate_targets: ``R_k`` broadcastable to ``[..., num_ue]``, finite, ≥ 0;
            users with ``R_k = 0`` get no power.
        noise_power: σ². tol: relative fixed-point tolerance on the dual powers. max_iter: most updates.
        max_power: budget for ``within_budget`` (None: no budget).
        on_infeasible: ``"report"`` (default: ``feasible=False``, ``power=inf``, ``w=0``) or ``"raise"``.
    Returns:
        :class:`QoSResult` with ``w`` ``[..., num_bs_ant, num_ue]`` (API dtype) reaching SINR exactly
        ``2^{R_k} − 1`` at noise σ², and ``power = ‖W‖_F²`` ``[...]``.
    """
    h64, _, noise_power, dtype = prepare(h, 1.0, noise_power)
    check_choice(on_infeasible, "on_infeasible", ("report", "raise"))
    if max_power is not None:
        max_power = float(check_positive(max_power, "max_power"))
    if not (tol > 0) or int(max_iter) < 1:
        raise MimofmInputError(f"`tol` must be > 0 and `max_iter` >= 1, got {tol!r}, {max_iter!r}")
    r = check_rates(rate_targets, h64).to(dtype=torch.float64, device=h64.device)
    k, n = h64.shape[-2:]
    batch = torch.broadcast_shapes(r.shape, h64.shape[:-1])[:-1]
    gamma = torch.expm1(r * torch.log(torch.tensor(2.0, dtype=torch.float64))).expand(batch + (k,))
    hs = snr_scaled(h64, 1.0, noise_power).expand(batch + (k, n))  # unit noise
    # [..., K, N] -> [B, K, N]
    w, power, ok, its = _solve(hs.reshape(-1, k, n), gamma.reshape(-1, k), tol, int(max_iter))
    if on_infeasible == "raise" and not bool(ok.all()):
        first = list(torch.unravel_index(torch.nonzero(~ok)[0, 0], batch)) if batch else []
        raise MimofmInputError(
            f"`rate_targets` are infeasible for sample {[int(i) for i in first]} "
            f"({int((~ok).sum())} sample(s) in all): no precoder reaches them at any power"
        )
    within = ok if max_power is None else ok & (power <= max_power * (1 + 1e-12))
    # [B, ...] -> [..., ...]
    return QoSResult(
        w=w.reshape(batch + (n, k)).to(dtype),  # [B_flat, N, K] -> batch + [N, K]
        power=power.reshape(batch),  # [B_flat] -> batch
        feasible=ok.reshape(batch),  # [B_flat] -> batch
        within_budget=within.reshape(batch),  # [B_flat] -> batch
        iterations=its.reshape(batch),  # [B_flat] -> batch
    )


@dataclass
class AntennaSelectionResult:
    """Output of :func:`greedy_antenna_selection`.

    Attributes:
        w: ``[..., num_bs_ant, num_ue]`` precoder (API dtype), zero rows on switched-off antennas.
        omega: ``[..., num_bs_ant]`` float64 antenna mask, exactly 0 or 1.
        gamma: ``[...]`` float64 power scale ``‖W‖_F² / max_power`` in [0, 1].
        energy_w: ``[...]`` float64 energy ``γ·P_TX + P_RF·Σω`` (eq. 4), watts.
        feasible: ``[...]`` bool, targets met within ``max_power`` with the returned ``w``.
    """

    w: torch.Tensor
    omega: torch.Tensor
    gamma: torch.Tensor
    energy_w: torch.Tensor
    feasible: torch.Tensor


def _pick(t: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """``t[b, j[b]]`` for ``t`` ``[B, N, ...]`` and ``j`` ``[B]``."""
    return t[torch.arange(t.shape[0], device=t.device), j]


def greedy_antenna_selection(
    h: torch.Tensor,
    rate_targets,
    *,
    p_tx_w: float,
    p_rf_w: float,
    noise_power: float = 1.0,
    max_power: float = 1.0,
) -> AntennaSelectionResult:
    """Switch antennas off greedily while the QoS targets stay reachable within ``max_power``.

    Starting from all antennas on, each round evaluates switching off every still-active antenna (the
    candidates are stacked along the batch so that one QoS solve evaluates all of them) and keeps the
    removal with the lowest energy ``E = γ·P_TX + P_RF·Σω`` (eq. 4, ``γ = power/max_power``) among
    those still feasible within ``max_power``; it stops when no removal lowers the energy.

    Complexity per sample: at most ``N − 1`` rounds, each one QoS solve on ``≤ N`` candidates of cost
    ``O(K²N + I·K³)`` (Gram matrix, then ``I`` Newton/fixed-point updates in user space), so
    ``O(N²(K²N + I·K³))`` in all. Greedy, hence not guaranteed optimal.

    Samples whose targets cannot be met within ``max_power`` even with every antenna on are reported
    ``feasible=False`` with ``omega`` all ones, ``gamma = 1``, ``w = 0`` and the full-array, full-power
    energy ``P_TX + N·P_RF`` (a pessimistic cost, so averages never reward failure).

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (normally SNR-scaled: full power = 1).
        rate_targets: ``[..., num_ue]`` (broadcastable) per-user rates in bit/s/Hz.
        p_tx_w, p_rf_w: P_TX and P_RF of eq. (4) in watts. noise_power: σ². max_power: power budget.
    Returns:
        :class:`AntennaSelectionResult` (``w`` ``[..., num_bs_ant, num_ue]``, ``omega`` ``[...,
        num_bs_ant]``).
    """
    h64, _, noise_power, dtype = prepare(h, 1.0, noise_power)
    check_positive(p_tx_w, "p_tx_w")
    check_positive(p_rf_w, "p_rf_w", allow_zero=True)
    max_power = float(check_positive(max_power, "max_power"))
    r = check_rates(rate_targets, h64).to(dtype=torch.float64, device=h64.device)
    k, n = h64.shape[-2:]
    batch = torch.broadcast_shapes(r.shape, h64.shape[:-1])[:-1]
    gamma_t = torch.expm1(r * torch.log(torch.tensor(2.0, dtype=torch.float64))).expand(batch + (k,))
    # [..., K, N] -> [B, K, N]
    hs = snr_scaled(h64, 1.0, noise_power).expand(batch + (k, n)).reshape(-1, k, n)
    gam = gamma_t.reshape(-1, k)  # batch + [K] -> [B_flat, K]
    bsz = hs.shape[0]
    tol, max_iter = 1e-10, 10000

    def energy_of(power: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return energy(omega, (power / max_power).clamp(0.0, 1.0), p_tx_w, p_rf_w)

    w, power, ok, _ = _solve(hs, gam, tol, max_iter)
    feasible = ok & (power <= max_power * (1 + 1e-12))
    omega = torch.ones(bsz, n, dtype=torch.float64, device=hs.device)
    cur_e = torch.where(feasible, energy_of(torch.where(feasible, power, 0.0), omega), float("inf"))
    improving = torch.nonzero(feasible).flatten()  # [B_improving]
    off = 1.0 - torch.eye(n, dtype=torch.float64, device=hs.device)  # row j: antenna j switched off
    while improving.numel() > 0:
        m = improving.numel()
        cand = omega[improving][:, None, :] * off  # [M, N(candidate), N(antenna)]
        hc = hs[improving][:, None] * cand[:, :, None, :].to(hs.dtype)  # [M, N, K, N]
        gc = gam[improving][:, None].expand(m, n, k)
        # [M, N, K, N] -> [M·N, K, N]
        wc, pc, okc, _ = _solve(hc.reshape(m * n, k, n), gc.reshape(m * n, k), tol, max_iter)
        # [M·N, N, K] -> [M, N, N, K]
        wc, pc, okc = wc.reshape(m, n, n, k), pc.reshape(m, n), okc.reshape(m, n)
        valid = okc & (pc <= max_power * (1 + 1e-12)) & (omega[improving] > 0) & (cand.sum(-1) > 0)
        e = torch.where(valid, energy_of(torch.where(valid, pc, 0.0), cand), float("inf"))
        e_min, j = e.min(-1)  # [M]
        better = e_min < cur_e[improving] * (1 - 1e-12)
        idx = improving[better]
        omega[idx] = _pick(cand, j)[better]
        w[idx] = _pick(wc, j)[better]
        power[idx] = _pick(pc, j)[better]
        cur_e[idx] = e_min[better]
        improving = idx

    gamma = torch.where(feasible, (power / max_power).clamp(0.0, 1.0), 1.0)
    w = torch.where(feasible[:, None, None], w, 0.0)
    # [B, ...] -> [..., ...]
    return AntennaSelectionResult(
        w=w.reshape(batch + (n, k)).to(dtype),  # [B_flat, N, K] -> batch + [N, K]
        omega=omega.reshape(batch + (n,)),  # [B_flat, N] -> batch + [N]
        gamma=gamma.reshape(batch),  # [B_flat] -> batch
        energy_w=energy(omega, gamma, p_tx_w, p_rf_w).reshape(batch),  # [B_flat] -> batch
        feasible=feasible.reshape(batch),  # [B_flat] -> batch
    )
