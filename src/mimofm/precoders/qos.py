"""QoS power minimization: the least total power meeting per-user rate targets, and a greedy
antenna switch-off on top of it (the classical baseline of fm's energy model, eq. 4).

``min Σ‖w_k‖²  s.t.  SINR_k ≥ γ_k = 2^{R_k} − 1`` is solved exactly through uplink-downlink duality
(Schubert & Boche 2004; Wiesel, Eldar & Shamai 2006):

1. dual uplink powers from the fixed point ``λ_k ← γ_k / ((1 + γ_k) · h_k^H Σ^{-1} h_k)``,
   ``Σ = σ²I + Σ_j λ_j h_j h_j^H`` (a standard interference function: it converges monotonically to
   the least solution when the targets are feasible and diverges otherwise);
2. beam directions ``w̃_k ∝ Σ^{-1} h_k`` (the uplink MMSE receivers);
3. downlink powers from the ``K × K`` linear system
   ``|h_k^H w̃_k|² p_k / γ_k − Σ_{j≠k} |h_k^H w̃_j|² p_j = σ²``.

All steps run in the user space with ``G = H H^H`` (``Σ^{-1} H^H = H^H (σ²I + Λ G)^{-1}``).
Infeasible targets (more users than the array can separate, users in the same direction) are
reported with ``feasible = False`` and ``power = inf`` (never NaN), or raise on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mimofm.core.energy import energy
from mimofm.core.validation import MimofmInputError, check_choice, check_rates
from mimofm.precoders._common import eye_like, gram, prepare, snr_scaled

__all__ = ["QoSResult", "AntennaSelectionResult", "qos_power_min", "greedy_antenna_selection"]

_DIVERGED = 1e12  # dual power (relative to the noise) beyond which targets are declared infeasible


@dataclass
class QoSResult:
    """``w`` ``[..., N, K]`` (zeros where infeasible), ``power`` ``[...]`` total power (``inf`` where
    infeasible), ``feasible`` / ``within_budget`` ``[...]`` bool, ``iterations`` ``[...]``."""

    w: torch.Tensor
    power: torch.Tensor
    feasible: torch.Tensor
    within_budget: torch.Tensor
    iterations: torch.Tensor


def qos_power_min(h: torch.Tensor, rate_targets, noise_power: float = 1.0, *, tol: float = 1e-12,
                  max_iter: int = 20000, max_power: float | None = None,
                  on_infeasible: Literal["report", "raise"] = "report") -> QoSResult:
    """Least total transmit power meeting per-user rates ``rate_targets`` (bit/s/Hz).

    Args:
        h: ``[..., K, N]`` complex channel. rate_targets: broadcastable to ``[..., K]``, finite, ≥ 0.
        noise_power: σ². max_power: budget for ``within_budget`` (None: no budget).
        on_infeasible: ``"report"`` (default) or ``"raise"``.
    """
    h64, _, noise_power, dtype = prepare(h, 1.0, noise_power)
    check_choice(on_infeasible, "on_infeasible", ("report", "raise"))
    r = check_rates(rate_targets, h64).to(torch.float64).to(h64.device)
    gamma = torch.expm1(r * torch.log(torch.tensor(2.0, dtype=torch.float64))).expand(h64.shape[:-1])
    hs = snr_scaled(h64, 1.0, noise_power)  # unit noise: powers are then in the units of σ²·(1/σ²)
    g = gram(hs)  # [..., K, K]
    k = g.shape[-1]
    eye = eye_like(k, g)
    want = gamma > 0

    lam = torch.zeros_like(gamma)
    its = torch.zeros(gamma.shape[:-1], dtype=torch.int64, device=g.device)
    active = torch.ones_like(its, dtype=torch.bool)
    for _ in range(max_iter):
        # a_k = h_k^H Σ^{-1} h_k = diag((I + G Λ)^{-1} G)
        a = torch.diagonal(torch.linalg.solve(eye + g * lam.to(g.dtype)[..., None, :], g), dim1=-2, dim2=-1).real
        new = torch.where(want, gamma / ((1.0 + gamma) * a.clamp_min(1e-300)), torch.zeros_like(gamma))
        change = ((new - lam).abs().sum(-1) <= tol * new.sum(-1).clamp_min(1e-300)) | (new.sum(-1) > _DIVERGED)
        lam = torch.where(active[..., None], new, lam)
        its += active.to(torch.int64)
        active = active & ~change
        if not bool(active.any()):
            break
    feasible = lam.sum(-1) <= _DIVERGED

    # beam directions: Σ^{-1} H^H = H^H (I + Λ G)^{-1}, unit-norm columns
    x = torch.linalg.solve(eye + lam.to(g.dtype)[..., :, None] * g, eye.expand_as(g))  # [..., K, K]
    wt = hs.mH @ x  # [..., N, K]
    wt = wt / wt.norm(dim=-2, keepdim=True).clamp_min(1e-300)
    t = (hs @ wt).abs().square()  # [..., K, K] |h_k^H w̃_j|²
    diag = torch.diagonal(t, dim1=-2, dim2=-1)
    m = -t + torch.diag_embed(diag / gamma.clamp_min(1e-300) + diag)  # rows k with γ_k > 0
    m = torch.where(want[..., :, None], m, eye.real)  # users with no target: p_k = 0
    rhs = want.to(torch.float64)
    p, info = torch.linalg.solve_ex(m, rhs[..., None])  # singular: the targets cannot be separated
    p = torch.where(want, p[..., 0], torch.zeros_like(rhs))
    ok = feasible & (info == 0) & torch.isfinite(p).all(-1) & ((p > 0) | ~want).all(-1)
    p = torch.where(ok[..., None], p.clamp_min(0.0), torch.zeros_like(p))
    w = wt * torch.sqrt(p)[..., None, :].to(wt.dtype)
    # (hs = h/σ, so w already meets SINR_k = |h_k^H w_k|²/(interference + σ²) ≥ γ_k in the original units)
    total = torch.where(ok, (w.real.square() + w.imag.square()).sum((-2, -1)), torch.full_like(p[..., 0], float("inf")))
    if on_infeasible == "raise" and not bool(ok.all()):
        first = torch.nonzero(~ok)[0].tolist()
        raise MimofmInputError(f"`rate_targets` are infeasible for sample {first} "
                               f"({int((~ok).sum())} sample(s) in all): no precoder reaches them")
    within = ok if max_power is None else ok & (total <= max_power * (1 + 1e-9))
    return QoSResult(w=w.to(dtype), power=total, feasible=ok, within_budget=within, iterations=its)


@dataclass
class AntennaSelectionResult:
    """``w`` ``[..., N, K]``, ``omega`` ``[..., N]`` (0/1), ``gamma`` ``[...]`` = power/max_power,
    ``energy_w`` ``[...]`` = ``γ·P_TX + P_RF·Σω`` (watts), ``feasible`` ``[...]``."""

    w: torch.Tensor
    omega: torch.Tensor
    gamma: torch.Tensor
    energy_w: torch.Tensor
    feasible: torch.Tensor


def greedy_antenna_selection(h: torch.Tensor, rate_targets, *, p_tx_w: float, p_rf_w: float,
                             noise_power: float = 1.0, max_power: float = 1.0) -> AntennaSelectionResult:
    """Switch antennas off greedily while the QoS targets stay reachable within ``max_power``.

    Starting from all antennas on, each round evaluates switching off every active antenna (one
    batched :func:`qos_power_min` call over the candidates) and keeps the removal with the lowest
    energy ``E = γ·P_TX + P_RF·Σω`` (eq. 4, ``γ = power/max_power``); it stops when no removal lowers
    the energy. Cost: at most ``N`` rounds of ``N`` QoS solves. Samples whose targets are infeasible
    with every antenna on are reported ``feasible=False`` with all antennas on and ``γ = 1``.
    ``h`` ``[..., K, N]``; the power units are those of ``max_power`` (1 for an SNR-scaled channel).
    """
    h64, _, noise_power, dtype = prepare(h, 1.0, noise_power)
    n = h64.shape[-1]
    batch = h64.shape[:-2]
    rates = check_rates(rate_targets, h64).to(torch.float64)

    def energy_of(power: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        gam = (power / max_power).clamp(0.0, 1.0)
        return energy(omega, gam, p_tx_w, p_rf_w)

    omega = torch.ones(batch + (n,), dtype=torch.float64, device=h64.device)
    best = qos_power_min(h64, rates, noise_power, max_power=max_power)
    feasible = best.within_budget
    cur_e = torch.where(feasible, energy_of(torch.where(feasible, best.power, 0.0), omega),
                        torch.full(batch, float("inf"), dtype=torch.float64, device=h64.device))
    w = best.w
    improving = feasible.clone()
    eye = torch.eye(n, dtype=torch.float64, device=h64.device)
    while bool(improving.any()):
        # candidates: switch off antenna j (one at a time): [N, ..., N] masks
        cand = omega[None] * (1.0 - eye).reshape((n,) + (1,) * len(batch) + (n,))
        valid = omega.movedim(-1, 0) > 0  # [N, ...] only antennas that are still on
        hc = h64[None] * cand[..., None, :].to(h64.dtype)  # [N, ..., K, N]
        nonzero = hc.abs().amax(-1).amin(-1) > 0  # a user left with no active antenna is infeasible
        hc = torch.where(nonzero[..., None, None], hc, h64[None].expand_as(hc))  # placeholder, masked below
        res = qos_power_min(hc, rates, noise_power, max_power=max_power)
        ok = res.within_budget & valid & nonzero & (cand.sum(-1) > 0)
        e = torch.where(ok, energy_of(torch.where(ok, res.power, 0.0), cand), torch.full_like(res.power, float("inf")))
        e_min, j = e.min(0)  # [...]
        better = improving & (e_min < cur_e * (1 - 1e-12))
        pick = lambda t: torch.gather(t, 0, j[None].reshape((1,) + j.shape + (1,) * (t.dim() - 1 - j.dim())).expand((1,) + t.shape[1:]))[0]  # noqa: E731
        omega = torch.where(better[..., None], pick(cand), omega)
        w = torch.where(better[..., None, None], pick(res.w), w)
        cur_e = torch.where(better, e_min, cur_e)
        improving = better
    power = (w.real.square() + w.imag.square()).sum((-2, -1)).to(torch.float64)
    gam = torch.where(feasible, (power / max_power).clamp(0.0, 1.0), torch.ones_like(power))
    return AntennaSelectionResult(w=w.to(dtype), omega=omega, gamma=gam,
                                  energy_w=energy(omega, gam, p_tx_w, p_rf_w), feasible=feasible)
