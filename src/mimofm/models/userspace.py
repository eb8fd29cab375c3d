"""User-space features: what fm and papp see of a channel when they serve any K and any N_t.

Every linear precoder of the optimal structure is ``W = H^H M`` with ``M ∈ C^{K×K}``
(:func:`mimofm.precoders.structured.structured_precoder`), and its rates depend on the channel only
through the Gram matrix ``G = H H^H`` (``H W = G M``, ``‖W‖_F² = tr(M^H G M)``). So a network that reads
``G`` — never the ``N_t``-dimensional channel itself — loses nothing a structured precoder could use, and
does not depend on the number of antennas. Features are per user, per pair of users and (for the antenna
mask of fm) per antenna; the network pools over users and antennas, so it does not depend on ``K`` or
``N_t`` either, and it is permutation equivariant over users.

Shapes (``h`` ``[B, K, N]`` SNR-scaled, unit noise; all outputs float32):

* :func:`user_features` ``[B, K, F_U]`` with ``F_U = 8``: the user's SNR ``log10(g_u)/3``
  (``g_u = ‖h_u‖²``), its SNR relative to the mean of the users, the mean and max of ``|ρ_uv|²`` over the
  other users (``ρ`` the normalized Gram matrix), its orthogonality ``1/[(Ĝ + δI)^{-1}]_uu`` (the share of
  its gain that zero forcing keeps), its rate under RZF with equal powers ``log2(1 + SINR)/8``, and
  ``log2 K / 4``, ``log2 N / 8``.
* :func:`pair_features` ``[B, K, K, F_P]`` with ``F_P = 3``: ``|ρ_uv|²``, ``(s_v − s_u)``, ``1[u = v]``.
* :func:`antenna_features` ``[B, N, F_A]`` with ``F_A = 3``: the log-share of antenna ``n`` in the
  equal-power RZF precoder's energy and in the channel's energy (both ``log10(N·share)/2``), ``log2 N/8``.

The Gram algebra runs in complex128 (the ray-traced channels span 70 dB); only the features are float32.
"""

from __future__ import annotations

import math

import torch

__all__ = ["F_A", "F_P", "F_U", "GramView", "antenna_features", "pair_features", "user_features"]

F_U, F_P, F_A = 8, 3, 3
_DELTA = 1e-3  # ridge on the normalized Gram matrix for the orthogonality feature


class GramView:
    """The user-space quantities of one batch, computed once: ``g`` ``[B, K]`` float64 user gains,
    ``rho`` ``[B, K, K]`` complex128 normalized Gram matrix, ``m0`` ``[B, K, K]`` complex128 the
    equal-power RZF precoder's user-space coefficients (``W₀ = H^H m0``, unit total power)."""

    def __init__(self, h: torch.Tensor):
        h64 = h.to(torch.complex128)
        k = h.shape[-2]
        gram = h64 @ h64.mH  # [B, K, K]
        self.g = gram.diagonal(dim1=-2, dim2=-1).real.clamp_min(1e-30)  # [B, K]
        inv_sqrt = torch.rsqrt(self.g)
        self.rho = gram * inv_sqrt[..., :, None] * inv_sqrt[..., None, :]  # [B, K, K]
        self.gram = gram
        eye = torch.eye(k, dtype=gram.dtype, device=h.device)
        m = torch.linalg.solve(eye + gram / k, eye.expand_as(gram))  # (I + G/K)^{-1}  [B, K, K]
        col = (m.mH @ gram @ m).diagonal(dim1=-2, dim2=-1).real.clamp_min(1e-300)  # ‖H^H m_u‖²  [B, K]
        self.m0 = m * torch.rsqrt(col * k)[..., None, :]  # unit-norm columns, power 1/K each
        self.k, self.n = k, h.shape[-1]
        self.user_features: torch.Tensor | None = None  # filled by user_features() on first use

    def rzf_sinr(self) -> torch.Tensor:
        """``[B, K]`` SINR of each user under equal-power RZF (unit noise)."""
        hw = self.gram @ self.m0  # H W₀ = G m0  [B, K(user), K(stream)]
        p = hw.abs().square()
        sig = p.diagonal(dim1=-2, dim2=-1)
        return sig / (p.sum(-1) - sig + 1.0)


def _log_snr(view: GramView) -> torch.Tensor:
    return torch.log10(view.g) / 3.0  # [B, K]


def user_features(h: torch.Tensor, view: GramView | None = None) -> torch.Tensor:
    """``h`` ``[B, K, N]`` -> ``[B, K, F_U]`` float32 (module docstring); computed once per ``view`` (the
    extractor and papp's student both read them)."""
    v = view or GramView(h)
    if v.user_features is None:
        v.user_features = _user_features(v)
    return v.user_features


def _user_features(v: GramView) -> torch.Tensor:
    k = v.k
    s = _log_snr(v)
    r2 = v.rho.abs().square()
    off = r2 * (1.0 - torch.eye(k, dtype=r2.dtype, device=r2.device))  # [B, K, K], diagonal zeroed
    mean_off = off.sum(-1) / max(k - 1, 1)
    max_off = off.amax(-1)
    eye = torch.eye(k, dtype=v.rho.dtype, device=v.rho.device)
    inv = torch.linalg.solve(v.rho + _DELTA * eye, eye.expand_as(v.rho))
    orth = 1.0 / inv.diagonal(dim1=-2, dim2=-1).real.clamp_min(1.0)
    rate = torch.log2(1.0 + v.rzf_sinr()) / 8.0
    const = torch.ones_like(s)
    feats = [s, s - s.mean(-1, keepdim=True), mean_off, max_off, orth, rate]
    feats += [const * (math.log2(k) / 4.0), const * (math.log2(v.n) / 8.0)]
    return torch.stack(feats, dim=-1).float()  # [B, K, F_U]


def pair_features(h: torch.Tensor, view: GramView | None = None) -> torch.Tensor:
    """``h`` ``[B, K, N]`` -> ``[B, K, K, F_P]`` float32: ``|ρ_uv|²``, ``s_v − s_u``, ``1[u = v]``."""
    v = view or GramView(h)
    s = _log_snr(v)
    eye = torch.eye(v.k, dtype=torch.float64, device=s.device).expand(s.shape[0], v.k, v.k)
    rel = s[..., None, :] - s[..., :, None]  # [B, K(u), K(v)]: s_v - s_u
    return torch.stack([v.rho.abs().square(), rel, eye], dim=-1).float()


def antenna_features(h: torch.Tensor, view: GramView | None = None) -> torch.Tensor:
    """``h`` ``[B, K, N]`` -> ``[B, N, F_A]`` float32: antenna ``n``'s log-share of the equal-power RZF
    precoder's energy and of the channel's energy (``log10(N·share)/2``), and ``log2 N / 8``."""
    v = view or GramView(h)
    h64 = h.to(torch.complex128)
    n = h.shape[-1]
    w0 = h64.mH @ v.m0  # [B, N, K], unit total power
    w_share = w0.abs().square().sum(-1)  # [B, N], sums to 1
    h_pow = h64.abs().square().sum(-2)  # [B, N]
    h_share = h_pow / h_pow.sum(-1, keepdim=True).clamp_min(1e-300)
    feats = [
        torch.log10(n * w_share + 1e-6) / 2.0,
        torch.log10(n * h_share + 1e-6) / 2.0,
        torch.full_like(w_share, math.log2(n) / 8.0),
    ]
    return torch.stack(feats, dim=-1).float()
