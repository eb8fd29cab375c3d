"""WMMSE sum-rate maximization (Shi, Razaviyayn, Luo, He 2011) under the exact total-power constraint.

Two forms of the same iteration, which agree to numerical precision:

* ``form="antenna"``: the textbook ``N_T``-dimensional update
  ``W = (H^H D H + μ I)^{-1} H^H diag(u v)``, ``D = diag(v |u|²)``, with μ found by bisection on the
  eigendecomposition of the ``N_T × N_T`` matrix ``H^H D H``. This is what the papers' complexity
  formulas count.
* ``form="user"`` (default, what mimofm runs): the ``N_U``-dimensional form ``W = H^H X``
  (R-WMMSE, Zhao, Lu, Shi, Luo 2023). By the push-through identity
  ``X = D^{1/2} (M + μ I)^{-1} D^{-1/2} diag(u v)`` with ``M = D^{1/2} H H^H D^{1/2}`` (``K × K``),
  so μ is found by bisection on the eigendecomposition of ``M``. After ``H H^H`` is formed once,
  every iteration costs ``O(K³)`` instead of ``O(N_T³)``.

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
from mimofm.precoders._common import eye_like, fro2, gram, prepare, snr_scaled
from mimofm.precoders.linear import zf_wf

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

_BISECTION_STEPS = 64  # halvings of [0, μ_max]: μ is exact to double precision


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


def _bisect_mu(lam: torch.Tensor, num: torch.Tensor, power: float) -> torch.Tensor:
    """Smallest μ ≥ 0 with ``f(μ) = Σ_i a_i / (λ_i + μ)² ≤ power`` (batched).

    ``lam``/``num``: ``[..., M]`` eigenvalues (numerical null space set to 0, ignored) and
    numerators ``a_i ≥ 0``. ``f`` is decreasing in μ, so bisection on ``[0, sqrt(Σ a / power)]``
    (where ``f ≤ power`` holds) converges to the exact multiplier.
    """
    safe = lam > 0

    def f(mu: torch.Tensor) -> torch.Tensor:
        den = (lam + mu[..., None]).square()
        return torch.where(safe, num / torch.where(safe, den, torch.ones_like(den)), 0.0).sum(-1)

    zero = torch.zeros(lam.shape[:-1], dtype=lam.dtype, device=lam.device)
    need = f(zero) > power
    hi = torch.sqrt(torch.where(safe, num, 0.0).sum(-1) / power)  # f(hi) <= Σa/hi² = power
    lo = zero.clone()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        over = f(mid) > power
        lo = torch.where(over, mid, lo)
        hi = torch.where(over, hi, mid)
    return torch.where(need, hi, zero)


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


def _update_user(g: torch.Tensor, x: torch.Tensor, power: float) -> torch.Tensor:
    """User-space WMMSE update ``X -> X'`` with ``W = H^H X`` and ``G = H H^H`` (all ``[..., K, K]``)."""
    u, v = wmmse_receivers(g @ x)
    u = _switch_off_starved(u, v)
    d, c = _phase_weights(u, v)
    sd = torch.sqrt(d).to(g.dtype)  # [..., K]
    m = sd[..., :, None] * g * sd[..., None, :]  # D^{1/2} G D^{1/2}
    lam, q = torch.linalg.eigh(m)  # [..., K], [..., K, K]
    lam = _eig_mask(lam)
    phi = q.mH * c[..., None, :]  # Q^H diag(c): [..., K, K]
    pw = (phi.real.square() + phi.imag.square()).sum(-1)  # [..., K]
    mu = _bisect_mu(lam, lam * pw, power)  # ‖W‖² = Σ λ_i p_i / (λ_i + μ)²
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
    mu = _bisect_mu(lam, pw, power)  # ‖W‖² = Σ_i ‖b_i‖² / (λ_i + μ)²
    inv = torch.where(lam > 0, 1.0 / torch.where(lam > 0, lam + mu[..., None], torch.ones_like(lam)), 0.0)
    return e @ (inv.to(b.dtype)[..., :, None] * b)


# --------------------------------------------------------------------------------------------
# Starts and the iteration driver
# --------------------------------------------------------------------------------------------


def _starts_user(hs: torch.Tensor, g: torch.Tensor, setting: WMMSESetting, seed: int) -> list[torch.Tensor]:
    """Starting points as ``X`` (``W = H^H X``), each ``[..., K, K]``, at unit power/noise."""
    k, n = hs.shape[-2], hs.shape[-1]
    starts = []
    if k <= n:
        wz = zf_wf(hs)  # in the row space of H: recover X by least squares through G
        starts.append(torch.linalg.pinv(g) @ (hs @ wz))
    starts.append(torch.linalg.solve(g + k * eye_like(k, g), eye_like(k, g).expand_as(g)))  # RZF, α = K
    starts.append(eye_like(k, g).expand_as(g).clone())  # MRT
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(setting.random_starts):
        re = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        im = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        starts.append(torch.complex(re, im).to(g.device))
    return [_normalize_x(g, x) for x in starts]


def _normalize_x(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    p = torch.einsum("...ik,...ij,...jk->...", x.conj(), g, x).real  # tr(X^H G X) = ‖H^H X‖²
    return x * torch.where(p > 0, torch.rsqrt(p.clamp_min(1e-300)), torch.zeros_like(p))[..., None, None]


def _iterate(step, rate_of, x0, setting: WMMSESetting, max_iter: int, tol: float, keep_history: bool):
    """Run ``x -> step(x)`` per sample until the relative sum-rate change is below ``tol``.

    Returns best iterate, its sum rate, iterations run, start rate, converged flag, history.
    """
    x = x0
    r = rate_of(x)
    r0 = r.clone()
    best_x, best_r = x.clone(), r.clone()
    its = torch.zeros_like(r, dtype=torch.int64)
    active = torch.ones_like(r, dtype=torch.bool)
    converged = torch.zeros_like(active)
    hist = [r.clone()] if keep_history else None
    for _ in range(max_iter):
        xn = step(x)
        rn = rate_of(xn)
        # defensive: a sample whose update is not finite keeps its last iterate and stops
        bad = ~(torch.isfinite(xn).flatten(-2).all(-1) & torch.isfinite(rn))
        xn = torch.where(bad[..., None, None], x, xn)
        rn = torch.where(bad, r, rn)
        its += active.to(torch.int64)
        conv = bad | ((rn - r).abs() <= tol * r.abs().clamp_min(1e-12))
        sel = active[..., None, None]
        x = torch.where(sel, xn, x)
        r = torch.where(active, rn, r)
        better = active & (r > best_r)
        best_x = torch.where(better[..., None, None], x, best_x)
        best_r = torch.where(better, r, best_r)
        converged |= active & conv
        active = active & ~conv
        if keep_history:
            hist.append(r.clone())
        if not bool(active.any()):
            break
    history = torch.stack(hist) if keep_history else None
    return best_x, best_r, its, r0, converged, history


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
) -> WMMSEResult:
    """WMMSE precoder for sum-rate maximization under ``‖W‖_F² ≤ power``.

    Args:
        h: ``[..., num_ue, num_bs_ant]`` complex channel (row u is ``h_u^H``).
        power: total transmit power P. noise_power: σ².
        setting: ``"paper"``, ``"reference"`` or a :class:`WMMSESetting`.
        form: ``"user"`` (``N_U``-dimensional, default) or ``"antenna"`` (textbook ``N_T``-dimensional).
        max_iter, tol: override the setting's stopping rule.
        seed: seed of the random starts (``reference`` setting).
        return_history: keep the per-iteration sum rate (single-start settings only).
    Returns:
        :class:`WMMSEResult` with ``w`` ``[..., num_bs_ant, num_ue]`` in the API dtype.
    """
    h64, power, noise_power, dtype = prepare(h, power, noise_power)
    if isinstance(setting, str):
        setting = SETTINGS[check_choice(setting, "WMMSE setting", tuple(SETTINGS))]
    check_choice(form, "WMMSE form", ("user", "antenna"))
    max_iter = setting.max_iter if max_iter is None else int(max_iter)
    tol = setting.tol if tol is None else float(tol)
    if max_iter < 0 or not tol >= 0:
        raise MimofmInputError(f"`max_iter` must be >= 0 and `tol` >= 0, got {max_iter}, {tol}")
    if return_history and setting.multi_start:
        raise MimofmInputError("`return_history` needs a single-start setting (e.g. 'paper')")

    hs = snr_scaled(h64, power, noise_power)  # unit power, unit noise from here on
    g = gram(hs)  # [..., K, K]
    x_starts = _starts_user(hs, g, setting, seed)

    if form == "user":
        step = lambda x: _update_user(g, x, 1.0)  # noqa: E731
        rate_of = lambda x: rates_from_hw(g @ x).sum(-1)  # noqa: E731
        to_w = lambda x: hs.mH @ x  # noqa: E731
        starts = x_starts
    else:
        step = lambda w: _update_antenna(hs, w, 1.0)  # noqa: E731
        rate_of = lambda w: rates_from_hw(hs @ w).sum(-1)  # noqa: E731
        to_w = lambda w: w  # noqa: E731
        starts = [hs.mH @ x for x in x_starts]

    if not setting.multi_start:
        rates0 = torch.stack([rate_of(s) for s in starts])  # [S, ...]
        pick = rates0.argmax(0)  # best start per sample
        s = torch.stack(starts)  # [S, ..., a, b]
        idx = pick[None, ..., None, None].expand((1,) + s.shape[1:])
        starts = [torch.gather(s, 0, idx)[0]]

    best = None
    for s0 in starts:
        out = _iterate(step, rate_of, s0, setting, max_iter, tol, return_history)
        if best is None:
            best = list(out)
            continue
        better = out[1] > best[1]
        best[0] = torch.where(better[..., None, None], out[0], best[0])
        for i in (1, 2, 3, 4):
            best[i] = torch.where(better, out[i], best[i])
    x, r, its, r0, conv, hist = best

    w = to_w(x)
    # full power can only raise every SINR (unit noise); ‖W‖ < 1 happens when μ = 0
    p = fro2(w)
    w = w * torch.where(p > 0, torch.rsqrt(p.clamp_min(1e-300)), torch.zeros_like(p))[..., None, None]
    r = rates_from_hw(hs @ w).sum(-1)
    w = w * (power**0.5)
    return WMMSEResult(
        w=w.to(dtype), sum_rate=r, iterations=its, start_sum_rate=r0, converged=conv, history=hist
    )
