"""WMMSE sum-rate maximization (Shi, Razaviyayn, Luo, He 2011) under the exact total-power constraint.

Two forms of the same iteration, which agree to numerical precision:

* ``form="antenna"``: the textbook ``N_T``-dimensional update
  ``W = (H^H D H + μ I)^{-1} H^H diag(u v)``, ``D = diag(v |u|²)``, with μ found on the
  eigendecomposition of the ``N_T × N_T`` matrix ``H^H D H``. This is what the papers' complexity
  formulas count.
* ``form="user"`` (default, what mimofm runs): the ``N_U``-dimensional form ``W = H^H X``
  (R-WMMSE, Zhao, Lu, Shi, Luo 2023). By the push-through identity
  ``X = D^{1/2} (M + μ I)^{-1} D^{-1/2} diag(u v)`` with ``M = D^{1/2} H H^H D^{1/2}`` (``K × K``),
  so μ is found on the eigendecomposition of ``M``. After ``H H^H`` is formed once, every iteration
  costs ``O(K³)`` instead of ``O(N_T³)``.

μ solves the secular equation ``Σ a_i/(λ_i + μ)² = P`` by Newton's method on its ``-1/2`` power
(:func:`_solve_mu`): monotone from μ = 0 and exact to double precision in a few steps. Every sample stops
on its own: samples that meet the stopping rule are retired from the batch, so a batch costs the sum of
its samples' iterations, not its slowest sample's.

All iterations run in float64/complex128 on the SNR-scaled channel (unit power, unit noise), so the
algorithm is finite and exact for raw ray-traced gains (1e-4 ... 1e-14) and SNRs from -10 to 70 dB.

Settings: ``paper`` stops at a relative sum-rate change below 1e-3 or 100 iterations, from the best of
ZF-WF/RZF/MRT; ``reference`` stops at 1e-7 or 500 iterations and keeps the best of ZF-WF, RZF, MRT
and random starts. The result is never worse than its start (the best iterate is returned) and is
scaled to full power at the end, which can only raise every SINR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from mimofm.core.rates import rates_from_hw
from mimofm.core.validation import MimofmInputError, check_choice
from mimofm.precoders._common import (
    Precision,
    eye_like,
    fro2,
    gram,
    precoder_from_x,
    prepare,
    regularized_inverse,
    snr_scaled,
)
from mimofm.precoders.linear import water_filling

__all__ = [
    "SETTINGS",
    "WMMSEResult",
    "WMMSESetting",
    "wmmse",
    "wmmse_precoder",
    "wmmse_receivers",
]

Form = Literal["user", "antenna"]


@dataclass(frozen=True)
class WMMSESetting:
    """Stopping rule and starts of one WMMSE setting."""

    tol: float
    max_iter: int
    random_starts: int = 0
    multi_start: bool = False  # False: start from the best of ZF-WF/RZF/MRT; True: run from each


SETTINGS: dict[str, WMMSESetting] = {
    "paper": WMMSESetting(tol=1e-3, max_iter=100),
    "reference": WMMSESetting(tol=1e-7, max_iter=500, random_starts=3, multi_start=True),
}


@dataclass
class WMMSEResult:
    """Output of :func:`wmmse`.

    Attributes:
        w: ``[..., num_bs_ant, num_ue]`` precoder (API dtype), ``‖W‖_F² = power``.
        sum_rate: ``[...]`` sum rate in bit/s/Hz (float64).
        iterations: ``[...]`` WMMSE updates run for the returned start (int64).
        start_sum_rate: ``[...]`` sum rate of the (best) starting point.
        converged: ``[...]`` stopping tolerance reached before ``max_iter``.
        history: per-iteration sum rate ``[iters+1, ...]`` when requested (single start only).
    """

    w: torch.Tensor
    sum_rate: torch.Tensor
    iterations: torch.Tensor
    start_sum_rate: torch.Tensor
    converged: torch.Tensor
    history: torch.Tensor | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------------
# One WMMSE step, usable on its own (the papp teacher builds on these two functions)
# --------------------------------------------------------------------------------------------


def wmmse_receivers(
    hw: torch.Tensor, noise_power: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """MMSE receivers ``u`` and MSE weights ``v = 1/e`` from ``G = H W`` ``[..., K, K]``.

    ``u_k = g_kk / (Σ_j |g_kj|² + σ²)``, ``v_k = (Σ_j |g_kj|² + σ²) / (Σ_{j≠k} |g_kj|² + σ²)``.
    Returns ``u`` ``[..., K]`` complex and ``v`` ``[..., K]`` real (``v ≥ 1``).
    """
    p = hw.real.square() + hw.imag.square()
    diag = torch.diagonal(hw, dim1=-2, dim2=-1)  # [..., K]
    s = torch.diagonal(p, dim1=-2, dim2=-1)
    if isinstance(noise_power, torch.Tensor):
        noise_power = noise_power[..., None]
    interf = (p.sum(-1) - s).clamp_min(0.0) + noise_power  # [..., K], >= σ²
    tot = interf + s
    return diag / tot, tot / interf


def wmmse_precoder(
    h: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mu: torch.Tensor | float
) -> torch.Tensor:
    """One WMMSE transmitter update for a *given* multiplier μ > 0 (differentiable).

    ``W = (H^H D H + μ I)^{-1} H^H diag(u v) = H^H (D H H^H + μ I)^{-1} diag(u v)``.

    Args:
        h: ``[..., K, N]`` complex channel (unit-noise scaling).
        u: ``[..., K]`` complex receivers. v: ``[..., K]`` real positive weights. mu: ``[...]`` or scalar > 0.
    Returns:
        ``[..., N, K]`` precoder (not power normalized).
    """
    g = gram(h)  # [..., K, K]
    d = (v * (u.real.square() + u.imag.square())).to(g.dtype)  # [..., K]
    mu_t = torch.as_tensor(mu, dtype=g.real.dtype, device=g.device)
    a = d[..., :, None] * g + mu_t[..., None, None] * eye_like(g.shape[-1], g)  # [..., K, K]
    x = torch.linalg.solve(a, torch.diag_embed((u * v).to(g.dtype)))  # [..., K, K]
    return h.mH @ x


# --------------------------------------------------------------------------------------------
# Transmitter update with the exact power constraint, both forms
# --------------------------------------------------------------------------------------------


_MU_STEPS = 40  # most Newton steps for μ; from the left they converge monotonically, quadratically near μ*


def _solve_mu(lam: torch.Tensor, num: torch.Tensor, power: float) -> torch.Tensor:
    """Smallest μ ≥ 0 with ``f(μ) = Σ_i a_i / (λ_i + μ)² ≤ power`` (batched).

    ``lam``/``num``: ``[B, M]`` eigenvalues (numerical null space set to 0, ignored) and numerators
    ``a_i ≥ 0``. Newton's method on ``φ(μ) = f(μ)^{-1/2}`` (the secular-equation form of Moré and
    Sorensen's trust-region solver): ``φ`` is increasing and concave, exactly linear for one term, so from
    ``μ = 0`` the iterates rise monotonically to the root, never past it, and converge quadratically. A
    sample stops when ``f`` is within 1e-13 of ``power``; the result is exact to double precision in a
    handful of steps where bisection needs 64.
    """
    safe = lam > 0
    num = torch.where(safe, num, 0.0)
    lam = torch.where(safe, lam, 1.0)  # masked terms have num = 0
    mu = torch.zeros(lam.shape[:-1], dtype=lam.dtype, device=lam.device)
    inv = 1.0 / lam
    t = num * inv.square()  # a_i / (λ_i + μ)²  [B, M]
    f = t.sum(-1)
    act = torch.nonzero(f > power * (1 + 1e-13)).flatten()  # samples with μ* > 0
    for _ in range(_MU_STEPS):
        if act.numel() == 0:
            break
        fa, ta, inva = f[act], t[act], inv[act]
        # μ += f (√(f/P) − 1) / Σ a_i/(λ_i+μ)³  (Newton on f^{-1/2})
        step = fa * (torch.sqrt(fa / power) - 1.0) / (ta * inva).sum(-1)
        mu_a = mu[act] + step
        mu[act] = mu_a
        inva = 1.0 / (lam[act] + mu_a[:, None])
        ta = num[act] * inva.square()
        fa = ta.sum(-1)
        f[act], t[act], inv[act] = fa, ta, inva
        act = act[fa > power * (1 + 1e-13)]
    return mu


def _eig_mask(lam: torch.Tensor) -> torch.Tensor:
    """Eigenvalues treated as zero (numerical null space): relative threshold on the largest."""
    lam = lam.clamp_min(0.0)
    thr = lam.amax(-1, keepdim=True) * (lam.shape[-1] * 1e-13)
    return torch.where(lam > thr, lam, torch.zeros_like(lam))


_OFF = 1e-30  # a user whose weight v|u|² falls below this fraction of the largest is switched off


def _switch_off_starved(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Set ``u_k = 0`` exactly for users WMMSE has starved (``v|u|²`` negligible).

    Such users carry sub-normal numbers (``|u| ~ 1e-300``) that would otherwise turn into Inf/NaN
    in the next update; ``u_k = 0`` is the same fixed point (the user gets no power), cleanly.
    """
    d = v * u.abs().square()
    off = d <= _OFF * d.amax(-1, keepdim=True)
    return torch.where(off, torch.zeros_like(u), u)


def _phase_weights(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``d = v|u|²`` and ``c = D^{-1/2} (u v) = √v · u/|u|`` (0 where u = 0)."""
    d = v * u.abs().square()
    return d, torch.sqrt(v) * torch.sgn(u)


def _update_user(g: torch.Tensor, x: torch.Tensor, e: torch.Tensor, power: float) -> torch.Tensor:
    """User-space WMMSE update ``X -> X'`` with ``W = H^H X``, ``G = H H^H`` and ``E = G X`` (all
    ``[B, K, K]``)."""
    u, v = wmmse_receivers(e)
    u = _switch_off_starved(u, v)
    d, c = _phase_weights(u, v)
    sd = torch.sqrt(d).to(g.dtype)  # [B, K]
    m = sd[..., :, None] * g * sd[..., None, :]  # D^{1/2} G D^{1/2}
    lam, q = torch.linalg.eigh(m)  # [B, K], [B, K, K]
    lam = _eig_mask(lam)
    phi = q.mH * c[..., None, :]  # Q^H diag(c): [B, K, K]
    pw = (phi.real.square() + phi.imag.square()).sum(-1)  # [B, K]
    mu = _solve_mu(lam, lam * pw, power)  # ‖W‖² = Σ λ_i p_i / (λ_i + μ)²
    inv = torch.where(lam > 0, 1.0 / torch.where(lam > 0, lam + mu[..., None], torch.ones_like(lam)), 0.0)
    # X = D^{1/2} Q diag(1/(λ+μ)) Q^H diag(c)
    return sd[..., :, None] * (q * inv.to(q.dtype)[..., None, :]) @ phi


def _update_antenna(h: torch.Tensor, w: torch.Tensor, power: float) -> torch.Tensor:
    """Textbook ``N_T``-dimensional WMMSE update ``W -> W'`` (``h`` ``[..., K, N]``, ``w`` ``[...,
    N, K]``)."""
    u, v = wmmse_receivers(h @ w)
    u = _switch_off_starved(u, v)
    d = (v * u.abs().square()).to(h.dtype)
    a = h.mH @ (d[..., :, None] * h)  # H^H D H: [..., N, N]
    lam, e = torch.linalg.eigh(a)
    lam = _eig_mask(lam)
    b = e.mH @ (h.mH * (u * v)[..., None, :])  # E^H H^H diag(uv): [..., N, K]
    pw = (b.real.square() + b.imag.square()).sum(-1)  # [..., N]
    mu = _solve_mu(lam, pw, power)  # ‖W‖² = Σ_i ‖b_i‖² / (λ_i + μ)²
    inv = torch.where(lam > 0, 1.0 / torch.where(lam > 0, lam + mu[..., None], torch.ones_like(lam)), 0.0)
    return e @ (inv.to(b.dtype)[..., :, None] * b)


# --------------------------------------------------------------------------------------------
# Starts and the iteration driver
# --------------------------------------------------------------------------------------------


def _starts_user(
    hs: torch.Tensor, g: torch.Tensor, setting: WMMSESetting, seed: int, precision: Precision
) -> list[torch.Tensor]:
    """Starting points as ``X`` (``W = H^H X``), each ``[B, K, K]`` complex128, at unit power/noise: ZF-WF
    (``K <= N``), RZF (α = K), MRT and the setting's random starts, all formed in the user space."""
    k, n = hs.shape[-2], hs.shape[-1]
    eye = eye_like(k, g).expand_as(g)
    starts = []
    if k <= n:  # ZF-WF: X = G^{-1} diag(√p), water-filling on the floors c_k = [G^{-1}]_kk
        x, c = regularized_inverse(hs, g.to(hs.dtype), 0.0, precision)
        q = water_filling(c.double(), 1.0)
        starts.append(x.to(g.dtype) * torch.sqrt(q / c.double())[..., None, :])
    starts.append(regularized_inverse(hs, g.to(hs.dtype), float(k), precision)[0].to(g.dtype))  # RZF, α = K
    starts.append(eye.clone())  # MRT
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(setting.random_starts):
        re = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        im = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        starts.append(torch.complex(re, im).to(g.device))
    return [_normalize_x(g, x) for x in starts]


def _start_from_w(hs: torch.Tensor, g: torch.Tensor, w: torch.Tensor, precision: Precision) -> torch.Tensor:
    """A given precoder ``w`` ``[..., N, K]`` as a user-space start ``X = G^{-1} H W`` ``[B, K, K]``
    (complex128, unit power): ``H H^H X = H W``, so every rate is kept while the power spent outside the
    users' row space is dropped."""
    k, n = hs.shape[-2], hs.shape[-1]
    if w.shape[-2:] != (n, k) or w.numel() != hs.shape[0] * n * k:
        raise MimofmInputError(
            f"`start` must be [..., {n}, {k}] like the channel's batch, got {tuple(w.shape)}"
        )
    w = w.reshape(-1, n, k).to(device=hs.device, dtype=torch.complex128)  # [..., N, K] -> [B, N, K]
    ginv = regularized_inverse(hs, g.to(hs.dtype), 0.0, precision)[0].to(torch.complex128)
    return _normalize_x(g, ginv @ (hs.to(torch.complex128) @ w))


def _normalize_x(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    gx = g @ x  # [B, K, K]
    p = (gx.real * x.real + gx.imag * x.imag).sum((-2, -1))  # Re tr(X^H G X) = ‖H^H X‖²  [B]
    return x * torch.where(p > 0, torch.rsqrt(p.clamp_min(1e-300)), torch.zeros_like(p))[..., None, None]


@dataclass
class _Run:
    """The outcome of :func:`_iterate` for a batch ``[B]``: best iterate ``[B, ...]``, its sum rate, the
    updates run, the start's rate, the converged flags and the optional history ``[iters+1, B]``."""

    x: torch.Tensor
    rate: torch.Tensor
    iterations: torch.Tensor
    start_rate: torch.Tensor
    converged: torch.Tensor
    history: torch.Tensor | None


def _iterate(
    step, ctx: torch.Tensor, x0: torch.Tensor, max_iter: int, tol: float, keep_history: bool
) -> _Run:
    """Run ``(x, r) -> step(ctx, x)`` per sample until its relative sum-rate change is below ``tol``.

    ``ctx`` ``[B, ...]`` is the per-sample constant (``G`` or ``H``), ``x0`` ``[B, a, b]`` the start;
    ``step(ctx, x)`` returns the next iterate and its sum rate ``[B']`` for any subset. A sample that
    meets the stopping rule is *retired*: later updates run on the still-active samples only, so a batch
    costs the sum of its samples' iterations rather than its slowest sample's times the batch.
    """
    x, r = x0, step.rate(ctx, x0)
    r0 = r.clone()
    best_x, best_r = x.clone(), r.clone()
    its = torch.zeros_like(r, dtype=torch.int64)
    converged = torch.zeros_like(r, dtype=torch.bool)
    hist = [r.clone()] if keep_history else None
    current = r.clone() if keep_history else None
    act = torch.arange(r.shape[0], device=r.device)  # indices of the active samples
    ca, xa, ra, bxa, bra = ctx, x, r, best_x.clone(), best_r.clone()
    for _ in range(max_iter):
        if act.numel() == 0:
            break
        xn, rn = step(ca, xa)
        # defensive: a sample whose update is not finite keeps its last iterate and stops
        bad = ~(torch.isfinite(xn).flatten(-2).all(-1) & torch.isfinite(rn))
        if bool(bad.any()):
            xn = torch.where(bad[:, None, None], xa, xn)
            rn = torch.where(bad, ra, rn)
        its[act] += 1
        conv = bad | ((rn - ra).abs() <= tol * ra.abs().clamp_min(1e-12))
        better = rn > bra
        bxa = torch.where(better[:, None, None], xn, bxa)
        bra = torch.where(better, rn, bra)
        if keep_history:
            current[act] = rn
            hist.append(current.clone())
        if bool(conv.any()):  # retire: write the finished samples back, keep the rest
            done, keep = act[conv], ~conv
            best_x[done], best_r[done], converged[done] = bxa[conv], bra[conv], True
            act, ca, xa, ra, bxa, bra = act[keep], ca[keep], xn[keep], rn[keep], bxa[keep], bra[keep]
        else:
            xa, ra = xn, rn
    best_x[act], best_r[act] = bxa, bra  # samples stopped by max_iter
    history = torch.stack(hist) if keep_history else None
    return _Run(best_x, best_r, its, r0, converged, history)


class _UserStep:
    """One user-space update on a subset: ``(G, X) -> (X', sum rate of X')``."""

    @staticmethod
    def rate(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return rates_from_hw(g @ x).sum(-1)

    def __call__(self, g: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xn = _update_user(g, x, g @ x, 1.0)
        return xn, self.rate(g, xn)


class _AntennaStep:
    """One textbook ``N_T``-dimensional update on a subset: ``(H, W) -> (W', sum rate of W')``."""

    @staticmethod
    def rate(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return rates_from_hw(h @ w).sum(-1)

    def __call__(self, h: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wn = _update_antenna(h, w, 1.0)
        return wn, self.rate(h, wn)


def wmmse(
    h: torch.Tensor,
    power: float = 1.0,
    noise_power: float = 1.0,
    *,
    setting: str | WMMSESetting = "paper",
    form: Form = "user",
    max_iter: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    return_history: bool = False,
    precision: Precision = "double",
    start: torch.Tensor | None = None,
    start_only: bool = True,
) -> WMMSEResult:
    """WMMSE precoder for sum-rate maximization under ``‖W‖_F² ≤ power``.

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (row u is ``h_u^H``).
        power: total transmit power P. noise_power: σ².
        setting: ``"paper"``, ``"reference"`` or a :class:`WMMSESetting`.
        form: ``"user"`` (``N_U``-dimensional, default) or ``"antenna"`` (textbook ``N_T``-dimensional).
        max_iter, tol: override the setting's stopping rule (``tol=0`` with ``max_iter=i``: exactly ``i``
            updates, the truncated WMMSE).
        seed: seed of the random starts (``reference`` setting).
        return_history: keep the per-iteration sum rate (single-start settings only).
        precision: arithmetic of the ``N``-dimensional products (``H H^H``, ``W = H^H X``; user form):
            ``double`` (default) or ``single``. The ``K × K`` iterations always run in double.
        start: ``[..., num_bs_ant, num_ue]`` a precoder to start from instead of the setting's starts
            (e.g. a network's output: ``wmmse(h, start=w, max_iter=1, tol=0)`` is one WMMSE update on
            it). Any scale; it enters as its projection ``H^H G^{-1} H W`` on the users' row space, which
            keeps every ``h_u^H w_k`` and so every rate, at full power. The result is never worse than
            the start (single-start settings only).
        start_only: with ``start``: iterate from it alone (default), or from the best (by sum rate) of it
            and the setting's ZF-WF/RZF/MRT starts, so that the result is never below any of them.
    Returns:
        :class:`WMMSEResult` with ``w`` ``[..., num_bs_ant, num_ue]`` in the API dtype.
    """
    hc, power, noise_power, dtype = prepare(h, power, noise_power, precision)
    if isinstance(setting, str):
        setting = SETTINGS[check_choice(setting, "WMMSE setting", tuple(SETTINGS))]
    check_choice(form, "WMMSE form", ("user", "antenna"))
    max_iter = setting.max_iter if max_iter is None else int(max_iter)
    tol = setting.tol if tol is None else float(tol)
    if max_iter < 0 or not tol >= 0:
        raise MimofmInputError(f"`max_iter` must be >= 0 and `tol` >= 0, got {max_iter}, {tol}")
    if (return_history or start is not None) and setting.multi_start:
        raise MimofmInputError("`return_history` and `start` need a single-start setting (e.g. 'paper')")

    batch, k, n = hc.shape[:-2], hc.shape[-2], hc.shape[-1]
    hs = snr_scaled(hc, power, noise_power).reshape(-1, k, n)  # [..., K, N] -> [B, K, N], unit power/noise
    g = gram(hs).to(torch.complex128)  # [B, K, K]
    x_starts = [] if start is not None and start_only else _starts_user(hs, g, setting, seed, precision)
    if start is not None:
        x_starts.insert(0, _start_from_w(hs, g, start, precision))  # first: wins the ties

    if form == "user":
        step, ctx, starts = _UserStep(), g, x_starts
    else:
        h128 = hs.to(torch.complex128)
        step, ctx, starts = _AntennaStep(), h128, [h128.mH @ x for x in x_starts]

    if not setting.multi_start:
        rates0 = torch.stack([step.rate(ctx, s) for s in starts])  # [S, B]
        pick = rates0.argmax(0)  # best start per sample
        s = torch.stack(starts)  # [S, B, a, b]
        starts = [s[pick, torch.arange(s.shape[1], device=s.device)]]

    best: _Run | None = None
    for s0 in starts:
        out = _iterate(step, ctx, s0, max_iter, tol, return_history)
        if best is None:
            best = out
            continue
        better = out.rate > best.rate
        best.x = torch.where(better[:, None, None], out.x, best.x)
        for f in ("rate", "iterations", "start_rate", "converged"):
            setattr(best, f, torch.where(better, getattr(out, f), getattr(best, f)))

    # full power can only raise every SINR (unit noise); ‖W‖ < 1 happens when μ = 0
    if form == "user":
        x = _normalize_x(g, best.x)
        r = step.rate(g, x)
        w = precoder_from_x(hs, x.to(hs.dtype))
    else:
        p = fro2(best.x)
        w = best.x * torch.where(p > 0, torch.rsqrt(p.clamp_min(1e-300)), torch.zeros_like(p))[:, None, None]
        r = step.rate(ctx, w)
    w = (w * (power**0.5)).reshape(*batch, n, k)  # [B, N, K] -> [..., N, K]
    hist = None if best.history is None else best.history.reshape(-1, *batch)  # [T, B] -> [T, ...]
    return WMMSEResult(
        w=w.to(dtype),
        sum_rate=r.reshape(batch),  # [B] -> [...]
        iterations=best.iterations.reshape(batch),
        start_sum_rate=best.start_rate.reshape(batch),
        converged=best.converged.reshape(batch),
        history=hist,
    )
