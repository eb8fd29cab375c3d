"""Helpers shared by the classical precoders (internal). Channels ``[..., K, N]``, precoders
``[..., N, K]``; powers in the caller's units."""

from __future__ import annotations

from typing import Literal

import torch

from mimofm.core.validation import check_channel, check_choice, check_positive

Precision = Literal["double", "single"]
"""Arithmetic of a classical kernel: ``double`` (complex128, the default and the reference) or ``single``
(complex64: about twice the throughput; ill-conditioned samples are redone in double)."""

COMPUTE_DTYPE = {"double": torch.complex128, "single": torch.complex64}

# largest estimated condition number of a K x K Gram matrix whose Cholesky inverse is trusted: beyond it
# the error κ·ε of the normal equations shows (1e-8 relative in double, 6e-4 in single), so the sample
# is redone in double, or through the SVD pseudo-inverse of H when even double cannot resolve it
MAX_CONDITION = {"double": 1e8, "single": 1e4}


def prepare(
    h: torch.Tensor, power, noise_power, precision: Precision = "double"
) -> tuple[torch.Tensor, float, float, torch.dtype]:
    """Validate ``h`` ``[..., K, N]`` and bring it to the compute dtype of ``precision``; returns (h in that
    dtype, power, noise, api dtype) with ``power`` and ``noise_power`` as floats (same units, e.g. W)."""
    check_channel(h, "h")
    check_choice(precision, "precision", tuple(COMPUTE_DTYPE))
    power = float(check_positive(power, "power"))
    noise_power = float(check_positive(noise_power, "noise_power"))
    return h.to(COMPUTE_DTYPE[precision]), power, noise_power, h.dtype


def _trace(a: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(a, dim1=-2, dim2=-1).real.sum(-1)


def _cholesky_inverse(low: torch.Tensor, info: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L L^H)^{-1}`` ``[B, K, K]`` and the samples whose factorization failed (``info != 0`` or a zero
    pivot) ``[B]``: those get the identity, for the caller to redo."""
    failed = (info != 0) | (torch.diagonal(low, dim1=-2, dim2=-1).abs().amin(-1) == 0)
    if bool(failed.any()):
        low = torch.where(failed[:, None, None], eye_like(low.shape[-1], low), low)
    return torch.cholesky_inverse(low), failed


def regularized_inverse(
    h: torch.Tensor, g: torch.Tensor, alpha: float, precision: Precision = "double"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``X = (G + α I)^{-1}`` ``[B, K, K]`` (so ``W = H^H X`` is regularized ZF) and the column energies
    ``‖H^H X e_k‖²`` ``[B, K]`` (real), from ``h`` ``[B, K, N]`` and its Gram matrix ``g = H H^H``.

    One batched Cholesky inverse in ``g``'s dtype. Samples whose estimated condition number
    ``tr(A)·tr(A^{-1})`` (within a factor ``K²`` of the true one) exceeds :data:`MAX_CONDITION` of
    ``precision`` are redone from ``h`` in double, and those beyond double's own limit with the
    pseudo-inverse (``α = 0``: ``H^H G^+ = H^+``, finite for rank-deficient channels).
    """
    k = g.shape[-1]
    a = g + alpha * eye_like(k, g) if alpha else g
    low, info = torch.linalg.cholesky_ex(a)
    x, failed = _cholesky_inverse(low, info)  # [B, K, K], [B]
    bad = failed | ~(_trace(a) * _trace(x) <= MAX_CONDITION[precision])  # [B]; NaN counts as bad
    # ‖H^H X e_k‖² = [X^H G X]_kk as a sum of products (X - αX² would cancel when α ≫ ‖G‖)
    c = column_energies(g, x)
    if bool(bad.any()):
        idx = torch.nonzero(bad).flatten()  # [B] -> [B_bad]
        fix, c_fix = _double_inverse(h[idx].to(torch.complex128), alpha)
        x, c = x.clone(), c.clone()
        x[idx], c[idx] = fix.to(x.dtype), c_fix.to(c.dtype)
    return x, c


def _double_inverse(h: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The fallback of :func:`regularized_inverse` in complex128 (``h`` ``[B', K, N]`` complex128)."""
    k, n = h.shape[-2], h.shape[-1]
    g = gram(h)
    a = g + alpha * eye_like(k, g) if alpha else g
    low, info = torch.linalg.cholesky_ex(a)
    x, failed = _cholesky_inverse(low, info)
    worse = failed | ~(_trace(a) * _trace(x) <= MAX_CONDITION["double"])
    if bool(worse.any()):
        idx = torch.nonzero(worse).flatten()  # [B] -> [B_worse]
        # the pseudo-inverse drops the directions round-off cannot resolve (λ < max(K, N)·ε·λ_max)
        rtol = max(k, n) * torch.finfo(torch.float64).eps
        x[idx] = torch.linalg.pinv(a[idx], rtol=rtol, hermitian=True)
    # the K x K identity ‖H^H X e_k‖² = [X^H G X]_kk loses digits at these condition numbers: measure the
    # columns of H^H X itself  ([B', N, K, 2] -> [B', K])
    return x, torch.view_as_real(precoder_from_x(h, x)).square().sum(dim=(-3, -1))


def column_energies(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``‖H^H X e_k‖² = [X^H G X]_kk`` from ``G = H H^H`` and ``X`` (both ``[..., K, K]``) -> ``[..., K]``."""
    return (x.conj() * (g @ x)).sum(-2).real


def precoder_from_x(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``W = H^H X``: ``h`` ``[..., K, N]``, ``x`` ``[..., K, K]`` -> ``[..., N, K]`` (a transposed view).

    Computed as ``(X^T conj(H))^T``, one contiguous ``K × N`` product, the fastest layout for PyTorch's
    batched complex matmul.
    """
    # [..., K, K] @ [..., K, N] -> [..., K, N] -> [..., N, K]
    return (x.mT.contiguous() @ h.conj().resolve_conj()).mT


def snr_scaled(h: torch.Tensor, power: float, noise_power: float) -> torch.Tensor:
    """Fold power and noise into the channel ``[..., K, N]`` (same shape out) so the maths runs at unit
    power and unit noise: ``h · √(P/σ²)``."""
    return h * (power / noise_power) ** 0.5


def gram(h: torch.Tensor) -> torch.Tensor:
    """``H H^H``: ``[..., K, N]`` -> ``[..., K, K]`` Hermitian."""
    # [..., K, N] @ [..., N, K] -> [..., K, K]
    return h @ h.mH


def eye_like(k: int, ref: torch.Tensor) -> torch.Tensor:
    """``I_k`` ``[k, k]`` in ``ref``'s dtype and device."""
    return torch.eye(k, dtype=ref.dtype, device=ref.device)


def fro2(w: torch.Tensor) -> torch.Tensor:
    """``‖W‖_F²`` per sample: ``[..., N, K]`` -> ``[...]`` real."""
    return (w.real.square() + w.imag.square()).sum(dim=(-2, -1))


def scale_to_power(w: torch.Tensor, power: float) -> torch.Tensor:
    """One global scale per sample so that ``‖W‖_F² = power``: ``[..., N, K]`` -> ``[..., N, K]`` (zero
    precoders stay zero)."""
    p = fro2(w)
    s = torch.where(p > 0, torch.sqrt(power / p.clamp_min(1e-300)), torch.zeros_like(p))
    return w * s[..., None, None]
