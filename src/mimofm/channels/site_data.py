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

__all__ = [
    "ReferenceRates",
    "check_configs",
    "draw_config_samples",
    "draw_samples",
    "equal_users_batch",
    "load_datasets",
    "subarray",
    "wmmse_reference",
]


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


def check_configs(configs: list, max_bs_ant: int) -> list[tuple[int, int]]:
    """``[[K, N_t], ...]`` -> validated ``(K, N_t)`` pairs: ``1 <= K <= N_t``, ``N_t`` dividing the sites'
    array size ``max_bs_ant`` (the sub-arrays are blocks of it)."""
    out = []
    for c in configs:
        if len(c) != 2:
            raise MimofmInputError(f"a configuration is [num_ue, num_bs_ant], got {c!r}")
        k, n = int(c[0]), int(c[1])
        if not 1 <= k <= n or max_bs_ant % n:
            raise MimofmInputError(
                f"configuration [{k}, {n}] needs 1 <= num_ue <= num_bs_ant and num_bs_ant dividing the "
                f"sites' {max_bs_ant} antennas"
            )
        out.append((k, n))
    if not out:
        raise MimofmInputError("`configs` must list at least one [num_ue, num_bs_ant]")
    return out


def subarray(h: torch.Tensor, num_bs_ant: int, block: int) -> torch.Tensor:
    """Antennas ``[block·n, (block+1)·n)`` of ``h`` ``[..., K, N]`` (``n = num_bs_ant`` dividing ``N``:
    whole rows of a row-major planar array, or a contiguous piece of one row), rescaled by ``√(N/n)`` so
    that the mean gain, and so the site-median SNR, is that of the full array -> ``[..., K, n]``."""
    n_full = h.shape[-1]
    if n_full % num_bs_ant or not 0 <= block < n_full // num_bs_ant:
        raise MimofmInputError(f"no block {block} of {num_bs_ant} antennas in an array of {n_full}")
    if num_bs_ant == n_full:
        return h
    return h[..., block * num_bs_ant : (block + 1) * num_bs_ant] * math.sqrt(n_full / num_bs_ant)


def equal_users_batch(batch: int, num_ue: int, k: int) -> int:
    """Samples per batch at ``k`` users that carry as many users as ``batch`` samples at ``num_ue`` (at least
    2): the recipes' ``equal_users`` rule."""
    return max(2, round(batch * num_ue / k))


def draw_config_samples(
    d: Dataset, n: int, num_ue: int, num_bs_ant: int, seed: int, snr_db: float
) -> torch.Tensor:
    """:func:`draw_samples` of ``num_ue`` users on a sub-array of ``num_bs_ant`` antennas (its block drawn
    from ``seed``) -> ``[n, num_ue, num_bs_ant]`` complex64."""
    h = draw_samples(d, n, num_ue, seed, snr_db)
    blocks = h.shape[-1] // num_bs_ant
    return subarray(
        h, num_bs_ant, int(torch.randint(blocks, (1,), generator=torch.Generator().manual_seed(seed)))
    )


class ReferenceRates:
    """WMMSE's mean sum rate per (dataset, grid SNR) for each training configuration ``(K, N_t)``, computed
    the first time a configuration is asked for (on a fixed draw, seed ``10000 + dataset index``) and kept
    by this object. ``max_iter``: WMMSE truncated at that many iterations (None: converged, the paper's
    ``R^max``); 10 iterations reach 99.8 % of the converged rate (docs/fm.md) at a fraction of its cost."""

    def __init__(
        self, datasets: list[Dataset], snr_grid_db: list[float], samples: int, max_iter: int | None = None
    ):
        self.datasets, self.snr_grid_db, self.samples, self.max_iter = (
            datasets,
            snr_grid_db,
            samples,
            max_iter,
        )
        self._table: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, num_ue: int, num_bs_ant: int) -> torch.Tensor:
        """``[datasets, SNRs]`` reference sum rates (bit/s/Hz) for ``num_ue`` users on ``num_bs_ant``
        antennas."""
        key = (num_ue, num_bs_ant)
        if key not in self._table:
            self._table[key] = torch.tensor(
                [
                    [
                        float(
                            wmmse(
                                draw_config_samples(d, self.samples, num_ue, num_bs_ant, 10_000 + e, s),
                                max_iter=self.max_iter,
                            ).sum_rate.mean()
                        )
                        for s in self.snr_grid_db
                    ]
                    for e, d in enumerate(self.datasets)
                ]
            )
        return self._table[key]
