"""Shared channel generators for the tests (seeded, independent of mimofm's own data code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def rayleigh(
    batch: int, k: int, n: int, seed: int = 0, snr_db: float = 10.0, dtype=torch.complex128
) -> torch.Tensor:
    """i.i.d. CN(0, 1) channels scaled to the given per-antenna SNR: ``[batch, k, n]``."""
    g = torch.Generator().manual_seed(seed)
    h = torch.complex(
        torch.randn(batch, k, n, generator=g, dtype=torch.float64),
        torch.randn(batch, k, n, generator=g, dtype=torch.float64),
    ) / np.sqrt(2)
    return (h * 10 ** (snr_db / 20)).to(dtype)


def correlated(
    batch: int, k: int, n: int, seed: int = 0, snr_db: float = 10.0, rank: int = 2, dtype=torch.complex128
) -> torch.Tensor:
    """Users sharing a few dominant directions (hard for ZF) with per-user gains spread over 20 dB."""
    g = torch.Generator().manual_seed(seed)

    def cplx(*s):
        re, im = (torch.randn(*s, generator=g, dtype=torch.float64) for _ in range(2))
        return torch.complex(re, im) / np.sqrt(2)

    h = cplx(batch, k, rank) @ cplx(batch, rank, n) / np.sqrt(rank) + 0.2 * cplx(batch, k, n)
    gain_db = torch.rand(batch, k, 1, generator=g, dtype=torch.float64) * 20 - 10
    return (h * 10 ** ((snr_db + gain_db) / 20)).to(dtype)


@pytest.fixture
def rng_channels():
    return rayleigh, correlated
