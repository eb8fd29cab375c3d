"""Training data shared by every site-based recipe: (site, LOS|NLOS) datasets, sample draws at a
site-median SNR, and WMMSE's reference sum rate per dataset and SNR."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mimofm.channels.io import load_channels
from mimofm.channels.sampling import candidate_positions, draw_user_sets, gather_users
from mimofm.channels.types import Dataset
from mimofm.core.linkbudget import median_gain
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.wmmse import wmmse

__all__ = ["draw_samples", "load_datasets", "wmmse_reference"]


def draw_samples(d: Dataset, n: int, num_ue: int, seed: int, snr_db: float) -> torch.Tensor:
    """``n`` multi-user samples ``[n, num_ue, N]`` of dataset ``d`` at site-median SNR ``snr_db``
    (complex64)."""
    idx = draw_user_sets(d.h.shape[0], num_ue, n, seed)
    scale = math.sqrt(10.0 ** (snr_db / 10.0) / d.site_median_gain)
    return gather_users(d.h, idx).to(torch.complex64) * scale


def load_datasets(
    files: list[str], num_ue: int, split_code: int = 0, mixes: tuple[str, ...] = ("los", "nlos")
) -> list[Dataset]:
    """LOS and NLOS datasets (``mixes``) of every site file (positions of one split; default: train)."""
    out = []
    for f in files:
        cs = load_channels(Path(f))
        g = median_gain(cs.h)
        for mix in mixes:
            try:
                idx = candidate_positions(
                    cs.num_positions,
                    los=cs.los,
                    mix=mix,
                    split=cs.split,
                    split_code=split_code if cs.split is not None else None,
                )
            except MimofmInputError:
                continue
            if idx.size >= max(num_ue, 8):
                out.append(Dataset(f"{cs.name}/{mix}", cs.h[torch.from_numpy(idx)], g))
    if not out:
        raise MimofmInputError(
            "no training dataset: give site files with LOS/NLOS flags and enough positions"
        )
    return out


def wmmse_reference(
    datasets: list[Dataset], snr_grid_db: list[float], samples: int, num_ue: int
) -> torch.Tensor:
    """``[datasets, SNRs]`` WMMSE mean sum rate on a fixed draw (seed ``10000 + dataset index``)."""
    return torch.tensor(
        [
            [
                float(wmmse(draw_samples(d, samples, num_ue, 10_000 + e, s)).sum_rate.mean())
                for s in snr_grid_db
            ]
            for e, d in enumerate(datasets)
        ]
    )
