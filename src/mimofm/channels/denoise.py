"""Beamspace denoising of a channel estimate on a planar array (a BS-side CSI front end for every precoder).

A ray-traced channel is a sum of a few plane waves, so in the angular domain of the array (a 2-D DFT over
the array's rows and columns) its energy sits in a few coefficients, while an i.i.d. estimation error
spreads evenly over all of them. Keeping the coefficients that stand above the error floor and transforming
back removes most of the error: on the validation sites, 8×8 arrays, an estimate at NMSE −10 dB comes out
at −14.3 to −14.4 dB (``benchmarks/csi_denoise.py``).

The angular domain is a 2× oversampled DFT (zero padding). Its columns form a tight frame
(``F^H F = I``), so thresholding then applying ``F^H`` is an exact inverse when nothing is dropped.

Antenna order: Sionna RT's ``PlanarArray`` numbers antennas column-first, so index = col·rows + row; the
sites' files record ``rows``/``cols`` in ``meta["settings"]`` (:func:`array_shape`).
"""

from __future__ import annotations

import math

import torch

from mimofm.core.validation import MimofmInputError

__all__ = ["OVERSAMPLE", "THRESHOLD", "array_shape", "beamspace_denoise"]

# Coefficients whose power exceeds THRESHOLD × the error floor are kept. Chosen on the validation sites
# munich-val and sf-val at NMSE −5/−10/−15/−20 dB (benchmarks/csi_denoise.py), never on held-out data.
THRESHOLD = 6.0
OVERSAMPLE = 2


def array_shape(meta: dict, num_ant: int) -> tuple[int, int]:
    """``(rows, cols)`` of a site's BS array from its metadata; a site without it is a line (1, N)."""
    s = meta.get("settings", {}) if isinstance(meta, dict) else {}
    rows, cols = s.get("rows"), s.get("cols")
    if rows is None or cols is None:
        return 1, num_ant
    if int(rows) * int(cols) != num_ant:
        raise MimofmInputError(f"array {rows}x{cols} in the site metadata does not match {num_ant} antennas")
    return int(rows), int(cols)


def beamspace_denoise(
    h_est: torch.Tensor,
    rows: int,
    cols: int,
    nmse_db: float,
    threshold: float = THRESHOLD,
    oversample: int = OVERSAMPLE,
) -> torch.Tensor:
    """Denoise a channel estimate ``Ĥ = H + E`` whose error has NMSE ``nmse_db`` (i.i.d., per user).

    ``h_est`` complex ``[..., K, N]`` with ``N = rows·cols`` (column-first antenna order) -> same shape and
    dtype. The error floor per angular coefficient is ``ε/(1+ε)·‖ĥ_k‖²/M`` (``M`` coefficients), i.e.
    the estimate's own power split into signal and error by the known NMSE ``ε``.
    """
    n = h_est.shape[-1]
    if rows * cols != n:
        raise MimofmInputError(f"array {rows}x{cols} does not match the channel's {n} antennas")
    if not math.isfinite(nmse_db):
        raise MimofmInputError(f"`nmse_db` must be finite, got {nmse_db!r}")
    if threshold <= 0 or oversample < 1:
        raise MimofmInputError("`threshold` must be > 0 and `oversample` >= 1")
    eps = 10.0 ** (nmse_db / 10.0)
    h64 = h_est.to(torch.complex128)
    size = (oversample * cols, oversample * rows)
    # [..., K, N] -> [..., K, cols, rows] (antennas column-first) -> 2-D DFT [..., K, ov·cols, ov·rows]
    coef = torch.fft.fft2(
        h64.reshape(*h_est.shape[:-1], cols, rows),
        s=size,
        norm="ortho",
    )  # [..., K, ov·cols, ov·rows]
    m = size[0] * size[1]
    floor = eps / (1.0 + eps) * h64.abs().square().sum(-1) / m  # [..., K]
    keep = coef.abs().square() > threshold * floor[..., None, None]
    back = torch.fft.ifft2(coef * keep, norm="ortho")[..., :cols, :rows]
    # [..., K, cols, rows] -> [..., K, N]
    return back.reshape(h_est.shape).to(h_est.dtype)
