"""A classical hybrid (analog + digital) precoder: phase extraction, then an optimal digital stage.

``W = F_RF · W_BB`` with ``F_RF`` ``[N, N_RF]`` unit-modulus (one phase shifter per antenna and RF chain)
and ``W_BB`` ``[N_RF, K]`` digital, ``‖F_RF W_BB‖_F² = P``:

* analog: the phases of the fully digital WMMSE precoder's columns for the first ``K`` RF chains; extra
  RF chains (``N_RF > K``) take the phases of the users' matched filters ``h_k^H`` (chain ``K + i`` serves
  user ``i mod K``) — the phase-extraction baseline of the hybrid papp papers;
* digital: WMMSE (or ZF) on the effective channel, exactly under the total-power constraint: with
  ``F_RF = U S Vᴴ`` (thin SVD), ``F_RF W_BB = U W̃`` for ``W_BB = V S⁻¹ W̃``, so the digital stage solves
  the ``N_RF``-antenna problem on ``H U`` with ``‖W̃‖ = ‖F_RF W_BB‖``; directions of a (numerically)
  zero singular value — repeated phase columns — are dropped. A user WMMSE switches off gets a
  matched-filter chain instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mimofm.core.validation import MimofmInputError

__all__ = ["HybridPrecoder", "phase_extraction_hybrid"]


@dataclass
class HybridPrecoder:
    """``w`` ``[..., N, K]`` = ``analog`` ``[..., N, N_RF]`` (unit modulus) @ ``digital`` ``[...,
    N_RF, K]``."""

    w: torch.Tensor
    analog: torch.Tensor
    digital: torch.Tensor


def phase_extraction_hybrid(
    h: torch.Tensor, num_rf: int, digital: str = "wmmse", power: float = 1.0
) -> HybridPrecoder:
    """Hybrid precoder for the SNR-scaled channel ``h`` ``[..., K, N]`` with ``num_rf`` RF chains
    (``K ≤ N_RF ≤ N``)."""
    from mimofm.precoders.linear import zf
    from mimofm.precoders.wmmse import wmmse

    k, n = h.shape[-2], h.shape[-1]
    if not k <= num_rf <= n:
        raise MimofmInputError(
            f"`num_rf` must be between the number of users ({k}) and of antennas ({n}), got {num_rf}"
        )
    if digital not in ("wmmse", "zf"):
        raise MimofmInputError(f"`digital` must be 'wmmse' or 'zf', got {digital!r}")
    h64 = h.to(torch.complex128)
    w_fd = wmmse(h64, power).w  # [..., N, K]
    mf = h64.mH  # matched filters [..., N, K]
    off = (
        w_fd.abs().amax(-2, keepdim=True) == 0
    )  # users WMMSE switched off: their chain steers a matched filter
    w_fd = torch.where(off, mf, w_fd)
    cols = torch.cat([w_fd] + [mf[..., :, i % k, None] for i in range(num_rf - k)], -1)  # [..., N, N_RF]
    analog = torch.exp(1j * torch.angle(cols))
    # analog = U S Vᴴ; directions with a negligible singular value are dropped (repeated phase columns)
    u, sv, vh = torch.linalg.svd(analog, full_matrices=False)
    keep = sv > sv[..., :1] * 1e-9
    q = u * keep[..., None, :].to(u.dtype)  # orthonormal on the kept directions, zero elsewhere
    h_eff = h64 @ q  # [..., K, N_RF]
    w_t = wmmse(h_eff, power).w if digital == "wmmse" else zf(h_eff, power)
    s_inv = torch.where(keep, 1.0 / sv.clamp_min(1e-300), torch.zeros_like(sv))
    w_bb = vh.mH @ (s_inv[..., :, None].to(w_t.dtype) * w_t)  # analog @ w_bb = q @ w_t
    dtype = h.dtype if h.is_complex() else torch.complex128
    return HybridPrecoder(w=(analog @ w_bb).to(dtype), analog=analog.to(dtype), digital=w_bb.to(dtype))
