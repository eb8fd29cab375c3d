"""Structured linear precoders: the user-space parameterizations the neural precoders output, and the
exact power and antenna steps applied to their beams (pure batched functions).

Shapes (DESIGN.md): the SNR-scaled channel ``h`` is complex ``[B, K, N]`` (row ``u`` is ``h_u^H``, unit
noise), a precoder ``w`` is complex ``[B, N, K]`` with total power ``‖W‖_F² ≤ 1``; per-user parameters
are real ``[B, K]``, an antenna mask ``[B, N]``, a power scale ``[B]``. Rates are in bit/s/Hz, powers in
units of the total power budget, energies in W.

* :func:`structured_precoder`: the optimal linear-beamforming structure from ``2K`` parameters ``(λ, p)``
  (fm's and papp's heads); :func:`rzf_directions` its ``λ = 1/K`` basis (fm's ``rzf-mix`` head);
  :func:`structured_precoder_real` the same map in real arithmetic (the ONNX graphs' form).
* :func:`hybrid_structure`: a hybrid (analog × digital) precoder from ``3K`` parameters (papp's hybrid
  student).
* :func:`transmit`: mask, normalize and scale a beam matrix (fm's output layer).
* :func:`exact_rate_powers`, :func:`prune_antennas`, :func:`exact_rates_or_keep`: fm's rate-target mode
  on fixed beams (least powers meeting the requests, greedy antenna switch-off, the QoS beams where the
  network's cannot meet feasible requests).
"""

from __future__ import annotations

import math

import torch

from mimofm.precoders._common import column_energies, precoder_from_x
from mimofm.precoders.qos import qos_power_min

__all__ = [
    "SERVED_ALL_ANTENNAS",
    "SERVED_MASKED",
    "SERVED_OWN",
    "SERVED_QOS",
    "exact_rate_powers",
    "exact_rates_or_keep",
    "hybrid_structure",
    "prune_antennas",
    "rzf_directions",
    "structured_precoder",
    "structured_precoder_real",
    "transmit",
]


def _unit_columns(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``X`` ``[B, K, K]`` with columns scaled so that ``H^H X`` has unit-norm columns, from ``G = H H^H``:
    ``‖H^H x_k‖² = x_k^H G x_k``, all in the user space."""
    c = column_energies(g, x)  # [B, K]
    return x * torch.rsqrt(c.clamp_min(1e-300))[..., None, :].to(x.dtype)


def rzf_directions(h: torch.Tensor) -> torch.Tensor:
    """Regularized-ZF columns ``H^H (H H^H + K I)^{-1}`` with unit norm: ``h`` ``[B, K, N]`` -> ``[B, N, K]``.

    ``h`` is the SNR-scaled channel (unit noise and power), so ``K`` is the MMSE regularization.
    Computed in complex128 (raw ray-traced SNRs span many decades), returned as complex64.
    """
    h64 = h.to(torch.complex128)
    k = h.shape[-2]
    eye = torch.eye(k, dtype=h64.dtype, device=h.device)
    g = h64 @ h64.mH  # [B, K, K]
    x = torch.linalg.solve(g + k * eye, eye.expand(h64.shape[:-2] + (k, k)))  # [B, K, K]
    return precoder_from_x(h64, _unit_columns(g, x)).to(torch.complex64)  # [B, N, K]


def structured_precoder(h: torch.Tensor, lam: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The optimal linear-beamforming structure: ``w_k = √p_k · v_k/‖v_k‖`` with
    ``v_k = (I + Σ_i λ_i h_i^H h_i)^{-1} h_k^H``.

    ``h`` ``[B, K, N]`` SNR-scaled channel, ``lam`` ``[B, K]`` virtual uplink powers (``Σ λ = 1`` is the
    total-power constraint in these units), ``p`` ``[B, K]`` downlink power fractions -> ``[B, N, K]``
    (total power ``Σ p``). Every sum-rate-optimal precoder has this form for some ``(λ, p)`` (Björnson,
    Bengtsson & Ottersten, IEEE Signal Process. Mag. 31(4), 2014); ``λ = p = 1/K`` is RZF with equal powers.
    Computed in the user space, ``V = H^H (I + Λ H H^H)^{-1}`` (one ``K × K`` solve), in complex128,
    returned as complex64. Differentiable in ``h``, ``lam`` and ``p``.
    """
    h64 = h.to(torch.complex128)
    k = h.shape[-2]
    eye = torch.eye(k, dtype=h64.dtype, device=h.device).expand(h64.shape[:-2] + (k, k))
    g = h64 @ h64.mH  # [B, K, K]
    m = eye + lam.to(torch.float64)[..., :, None] * g  # I + Λ H H^H  [B, K, K]
    x = _unit_columns(g, torch.linalg.solve(m, eye))  # V = H^H X with unit columns
    # a softmax share can underflow to exactly 0: √0 has an infinite derivative (0·∞ = NaN in backward)
    x = x * torch.sqrt(p.to(torch.float64).clamp_min(1e-300))[..., None, :].to(x.dtype)
    return precoder_from_x(h64, x).to(torch.complex64)  # [B, N, K]


def structured_precoder_real(
    h_re: torch.Tensor, h_im: torch.Tensor, lam: torch.Tensor, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`structured_precoder` in real arithmetic, in the inputs' dtype: ``(W_re, W_im)`` ``[B, N, K]``.

    ``h_re``, ``h_im`` ``[B, K, N]`` the SNR-scaled channel's real and imaginary parts, ``lam``, ``p``
    ``[B, K]`` as :func:`structured_precoder` (total power ``Σ p``). The complex ``K × K`` system
    ``M = I + Λ H H^H`` is inverted through its real ``2K × 2K`` embedding ``[[M_re, -M_im], [M_im, M_re]]``,
    whose inverse is ``[[X_re, -X_im], [X_im, X_re]]`` with ``X = M^{-1}``; one ``torch.linalg.inv_ex`` (no
    error-check side effect, so that it exports to ONNX as one ``Inverse``). For graphs without complex
    tensors (ONNX); in float32 its error grows with the conditioning of ``M`` (docs/fm.md, "Export").
    """
    k = h_re.shape[-2]
    h_re_t, h_im_t = h_re.transpose(-2, -1), h_im.transpose(-2, -1)  # [B, K, N] -> [B, N, K]
    # G = H H^H = (A + iB)(Aᵀ - iBᵀ): re = A Aᵀ + B Bᵀ, im = B Aᵀ - A Bᵀ  [B, K, K]
    g_re = h_re @ h_re_t + h_im @ h_im_t
    g_im = h_im @ h_re_t - h_re @ h_im_t
    eye = torch.eye(k, dtype=h_re.dtype, device=h_re.device)
    m_re, m_im = eye + lam[..., :, None] * g_re, lam[..., :, None] * g_im  # I + Λ G  [B, K, K]
    # real embedding [B, 2K, 2K]: rows [M_re, -M_im] over [M_im, M_re]
    emb = torch.cat([torch.cat([m_re, -m_im], -1), torch.cat([m_im, m_re], -1)], -2)
    inv = torch.linalg.inv_ex(emb)[0]  # [B, 2K, 2K]
    x_re, x_im = inv[..., :k, :k], inv[..., k:, :k]  # M^{-1} = X_re + i X_im  [B, K, K]
    # V = H^H X = (Aᵀ - iBᵀ)(X_re + i X_im)  [B, N, K]
    v_re = h_re_t @ x_re + h_im_t @ x_im
    v_im = h_re_t @ x_im - h_im_t @ x_re
    norm = torch.sqrt((v_re.square() + v_im.square()).sum(-2, keepdim=True).clamp_min(1e-30))  # [B, 1, K]
    scale = torch.sqrt(p)[..., None, :] / norm  # [B, 1, K]
    return v_re * scale, v_im * scale


def hybrid_structure(
    h: torch.Tensor, lam_a: torch.Tensor, lam_d: torch.Tensor, p: torch.Tensor, num_rf: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A hybrid precoder from ``3K`` per-user parameters, differentiable: ``(A, W_dp)``, complex128.

    ``h`` ``[B, K, N]``; ``lam_a`` ``[B, K]`` shapes the analog beams (chain ``k < K``: the phases of
    column ``k`` of :func:`structured_precoder` ``(h, λ_a)``; chain ``K + i``: the phases of user
    ``i mod K``'s matched filter ``h^H``); ``(lam_d, p)`` ``[B, K]`` the digital stage, the structured
    precoder on the whitened effective channel ``H Q``, ``Q = A L^{-H}``, ``L Lᴴ = AᴴA``. Returns the analog
    ``A`` ``[B, N, N_RF]`` (unit modulus) and the digital ``W_dp`` ``[B, N_RF, K]``, ``N_RF = num_rf``
    (``K ≤ num_rf ≤ N``). Then ``A W_dp = Q W̃`` with ``Qᴴ Q = I``: the power of ``W̃`` (``Σ p``) is the
    transmitted power.
    """
    k, n = h.shape[-2], h.shape[-1]
    h64 = h.to(torch.complex128)
    proto = structured_precoder(h64, lam_a, torch.ones_like(lam_a)).to(torch.complex128)  # [B, N, K]
    mf = h64.mH  # [B, K, N] -> [B, N, K]
    cols = torch.cat([proto] + [mf[..., i % k, None] for i in range(num_rf - k)], -1)  # [B, N, N_RF]
    a = cols / cols.abs().clamp_min(1e-30)  # e^{jθ}
    eye = torch.eye(num_rf, dtype=a.dtype, device=a.device)
    chol = torch.linalg.cholesky(a.mH @ a + 1e-6 * n * eye)  # ridge: repeated phase columns stay invertible
    # L^{-1} Aᴴ [B, N_RF, N] -> transposed: A L^{-H}  [B, N, N_RF]
    q = torch.linalg.solve_triangular(chol, a.mH, upper=False).mH
    w_t = structured_precoder(h64 @ q, lam_d, p).to(torch.complex128)  # [B, N_RF, K]
    # L^{-H} W̃: [B, N_RF, N_RF] \ [B, N_RF, K] -> W_dp [B, N_RF, K]
    return a, torch.linalg.solve_triangular(chol.mH, w_t, upper=True)


def transmit(w: torch.Tensor, omega: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``√γ·(Ω ⊙ W)/‖Ω ⊙ W‖_F``: ``w`` ``[B, N, K]``, ``omega`` ``[B, N]`` 0/1, ``gamma`` ``[B]``
    -> ``[B, N, K]``.

    The total power is exactly ``γ`` (in units of the budget); differentiable.
    """
    wm = w * omega[:, :, None].to(w.dtype)
    norm = torch.sqrt((wm.real.square() + wm.imag.square()).sum((-2, -1)).clamp_min(1e-12))
    return wm / norm[:, None, None] * torch.sqrt(gamma)[:, None, None]


def exact_rate_powers(
    h: torch.Tensor, w: torch.Tensor, rates: torch.Tensor, max_power: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The least per-user powers that meet ``rates`` exactly with the beam directions of ``w``.

    ``h`` ``[B, K, N]`` SNR-scaled channel (unit noise), ``w`` ``[B, N, K]`` precoder (only its column
    directions matter), ``rates`` ``[B, K]`` bit/s/Hz, ``max_power`` the budget. With unit directions
    ``d_j`` and gains ``g_uj = |h_u d_j|²``, user ``u`` meets ``t_u = 2^{R_u} − 1`` iff
    ``q_u g_uu ≥ t_u (Σ_{j≠u} q_j g_uj + 1)``; equality for every user is the ``K × K`` linear system
    ``(diag(g) − diag(t) G_off) q = t`` (powers for fixed beams: Zander's power control). Returns
    ``(W', ok)``: ``W' = [√q_j d_j]`` ``[B, N, K]`` in ``w``'s dtype and ``ok`` ``[B]`` bool where the
    solution is non-negative and ``Σ q ≤ max_power`` (the directions can meet the requests within the
    budget); where not ``ok`` ``W'`` is zero and the caller keeps its own precoder. Computed in
    complex128/float64.
    """
    h64, w64 = h.to(torch.complex128), w.to(torch.complex128)
    col = torch.linalg.vector_norm(w64, dim=-2, keepdim=True)  # [B, 1, K]
    d = w64 / col.clamp_min(1e-300)
    g = (h64 @ d).abs().square()  # [B, K(user), K(stream)]
    t = torch.expm1(rates.double() * math.log(2.0))  # 2^R − 1
    diag = torch.diagonal(g, dim1=-2, dim2=-1)
    a = torch.diag_embed(diag) - t[..., :, None] * (g - torch.diag_embed(diag))
    q, info = torch.linalg.solve_ex(a, t)
    total = q.sum(-1)
    ok = (info == 0) & torch.isfinite(q).all(-1) & (q >= -1e-12).all(-1) & (total <= max_power * (1 + 1e-9))
    ok = ok & ((col[:, 0] > 0) | (t == 0)).all(-1)
    q = torch.where(ok[:, None], q.clamp_min(0), torch.zeros_like(q))
    # within the tolerance: onto the budget
    q = q * (max_power / total.clamp_min(max_power)).clamp(max=1.0)[:, None]
    return (d * q.sqrt()[:, None, :]).to(w.dtype), ok


def prune_antennas(
    h: torch.Tensor,
    w: torch.Tensor,
    omega: torch.Tensor,
    rates: torch.Tensor,
    ok: torch.Tensor,
    p_tx_w: float,
    p_rf_w: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy antenna switch-off on fixed beams: ``(W, Ω)`` with the energy ``P_TX·‖W‖² + P_RF·Σω`` lowered.

    ``h`` ``[B, K, N]``, ``w`` ``[B, N, K]`` meeting ``rates`` ``[B, K]`` (bit/s/Hz) exactly where ``ok``
    ``[B]``, ``omega`` ``[B, N]`` its 0/1 antenna mask; ``p_tx_w``, ``p_rf_w`` in W (eq. 4 of the fm
    paper). For the samples ``ok``, repeatedly switch off the active antenna that carries the least beam
    energy, re-solve the exact powers (:func:`exact_rate_powers`) on the remaining rows of the beams, and
    keep the step while the requests stay reachable within the budget and the energy falls. One ``K × K``
    solve per step and at most ``N − 1`` steps: far cheaper than the classical greedy switch-off, which
    re-optimizes the beams with a QoS solve for every candidate antenna. Returns ``W`` ``[B, N, K]`` and
    ``Ω`` ``[B, N]`` in the input dtypes.
    """
    cur_w, cur_om = w.to(torch.complex128), omega.to(torch.float64).clone()
    cur_e = p_tx_w * cur_w.abs().square().sum((-2, -1)) + p_rf_w * cur_om.sum(-1)
    active, rows = ok.clone(), torch.arange(h.shape[0], device=h.device)
    for _ in range(h.shape[-1] - 1):
        if not bool(active.any()):
            break
        load = cur_w.abs().square().sum(-1)  # [B, N] beam energy per antenna
        weakest = torch.where(cur_om > 0, load, torch.full_like(load, float("inf"))).argmin(-1)
        cand = cur_om.clone()
        cand[rows, weakest] = 0.0
        w_c, ok_c = exact_rate_powers(h, cur_w * cand[:, :, None], rates)
        w_c = w_c.to(torch.complex128)
        e_c = p_tx_w * w_c.abs().square().sum((-2, -1)) + p_rf_w * cand.sum(-1)
        take = active & ok_c & (e_c < cur_e)
        cur_w = torch.where(take[:, None, None], w_c, cur_w)
        cur_om = torch.where(take[:, None], cand, cur_om)
        cur_e, active = torch.where(take, e_c, cur_e), take
    return cur_w.to(w.dtype), cur_om.to(omega.dtype)


# how each sample of :func:`exact_rates_or_keep` was served
SERVED_MASKED, SERVED_ALL_ANTENNAS, SERVED_QOS, SERVED_OWN = 0, 1, 2, 3


def exact_rates_or_keep(
    h: torch.Tensor,
    w_raw: torch.Tensor,
    omega: torch.Tensor,
    gamma: torch.Tensor,
    rates: torch.Tensor,
    energy_w: tuple[float, float] | None = None,
    qos_fallback: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rate-target mode with exact powers: ``(W, Ω, γ, served)`` from a head's beams, mask and power.

    ``h`` ``[B, K, N]``, ``w_raw`` ``[B, N, K]`` (un-normalized beams), ``omega`` ``[B, N]``, ``gamma``
    ``[B]``, ``rates`` ``[B, K]`` bit/s/Hz -> ``W`` ``[B, N, K]``, ``Ω`` ``[B, N]``, ``γ`` ``[B]``,
    ``served`` ``[B]`` int64 (:data:`SERVED_MASKED` … :data:`SERVED_OWN`). Per sample, in order:

    0. the masked beams with :func:`exact_rate_powers` if they can meet ``rates`` within the budget;
    1. else the same beams with every antenna on (meeting the requests comes before saving RF power, as in
       the paper's loss with ``μ`` near 1);
    2. else, with ``qos_fallback``, the QoS power-minimizing beams
       (:func:`mimofm.precoders.qos.qos_power_min`, every antenna on) when the requests are feasible within
       the budget at all: the network's beams cannot meet requests that other beams can;
    3. else (no beams can meet them within the budget) the head's own precoder ``√γ·(Ω ⊙ W)``.

    Giving every user the same largest feasible fraction of its request instead of 3 was tried on the
    validation sites and rejected: it cut the sum rate delivered and raised the mean error over all
    requests (e.g. 37% → 52% at 10 dB, β = 0.8). ``energy_w = (P_TX, P_RF)`` in W: then
    :func:`prune_antennas` lowers the energy of the exact solutions (0–2) further. ``γ`` is the power
    transmitted. No gradient flows through the choice.
    """
    w = transmit(w_raw, omega, gamma)
    with torch.no_grad():
        w_m, ok_m = exact_rate_powers(h, w, rates)
        ones = torch.ones_like(omega)
        beams = transmit(w_raw, ones, torch.ones_like(gamma))
        w_a, ok_a = exact_rate_powers(h, beams, rates)
    use_a = ok_a & ~ok_m
    w = torch.where(
        ok_m[:, None, None], w_m.to(w.dtype), torch.where(use_a[:, None, None], w_a.to(w.dtype), w)
    )
    served = torch.where(ok_m, SERVED_MASKED, torch.where(use_a, SERVED_ALL_ANTENNAS, SERVED_OWN))
    rest = torch.nonzero(served == SERVED_OWN).flatten()  # [B_rest]
    if qos_fallback and rest.numel():
        with torch.no_grad():
            q = qos_power_min(h[rest], rates[rest].double(), max_power=1.0)
        take = rest[q.within_budget]
        if take.numel():
            w, served = w.clone(), served.clone()
            w[take] = q.w[q.within_budget].to(w.dtype)
            served[take] = SERVED_QOS
    on_all = (served == SERVED_ALL_ANTENNAS) | (served == SERVED_QOS)
    omega = torch.where(on_all[:, None], ones, omega)
    met = served != SERVED_OWN
    if energy_w is not None:
        with torch.no_grad():
            w_p, om_p = prune_antennas(h, w, omega, rates, met, *energy_w)
        w, omega = w_p.to(w.dtype), om_p
    power = w.abs().square().sum((-2, -1)).to(gamma.dtype).clamp(max=1.0)  # float32 rounding of Σq ≤ 1
    return w, omega, torch.where(met, power, gamma), served
