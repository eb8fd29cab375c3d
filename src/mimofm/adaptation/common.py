"""What the fm and papp adaptation recipes share: a deployment site's local positions as a dataset, and
the fixed-draw sum-rate report against RZF that both evaluate with.

Channels: a site's positions are raw gains ``[P, N]`` (one single-antenna UE per row); multi-user samples
drawn from them are SNR-scaled ``[S, K, N]`` (unit noise). Rates in bit/s/Hz.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mimofm.channels.site_data import draw_samples
from mimofm.channels.types import Dataset
from mimofm.core.linkbudget import median_gain
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import rzf
from mimofm.training.trainer import TrainConfig

__all__ = ["adaptation_config", "local_dataset", "local_positions", "rzf_ratio_report"]


@torch.no_grad()
def rzf_ratio_report(
    precode: Callable[[torch.Tensor], torch.Tensor],
    datasets: list[Dataset],
    snr_grid_db: list[float],
    num_ue: int = 4,
) -> dict[str, float]:
    """``precode(h)`` (``h`` ``[S, K, N]`` -> ``W`` ``[S, N, K]``) on a fixed draw of ``datasets`` at each
    SNR (dB): ``sum_rate@<snr>dB`` (mean sum rate, bit/s/Hz) per SNR and ``ratio_to_rzf`` (mean over the
    SNRs of the ratio of mean sum rates to RZF's)."""
    out, ratios = {}, []
    for snr in snr_grid_db:
        hs = torch.cat([draw_samples(d, 32, num_ue, 5000 + e, snr) for e, d in enumerate(datasets)])
        r = user_rates(hs, precode(hs)).sum(-1).mean()
        ratios.append(float(r / user_rates(hs, rzf(hs)).sum(-1).mean()))
        out[f"sum_rate@{snr:g}dB"] = float(r)
    out["ratio_to_rzf"] = sum(ratios) / len(ratios)
    return out


def local_positions(cs, shots: str | int, num_ue: int, seed: int = 0) -> Dataset:
    """The deployment site's local data: every train-split position (``shots="full"``) or ``shots`` of them.

    ``cs``: a :class:`~mimofm.channels.io.ChannelSet` with a position split (``h`` ``[P, N]`` raw gains);
    ``num_ue``: the model's users per sample (the least number of shots); ``seed`` picks the shots.
    """
    if cs.split is None:
        raise MimofmInputError(f"{cs.name} has no position split; adaptation uses its train positions only")
    local_idx = np.flatnonzero(cs.split.numpy() == 0)
    if str(shots) == "full":
        return local_dataset(cs.h[torch.from_numpy(local_idx)], f"{cs.name}/train")
    try:
        n = int(shots)
    except ValueError:
        raise MimofmInputError(f"`--shots` must be an integer or 'full', got {shots!r}") from None
    if not num_ue <= n <= len(local_idx):
        raise MimofmInputError(f"`--shots` must be between {num_ue} and {len(local_idx)}, got {n}")
    pick = np.random.default_rng(seed).choice(local_idx, size=n, replace=False)
    return local_dataset(cs.h[torch.from_numpy(pick)], f"{cs.name}/{n}-shot")


def local_dataset(h_positions: torch.Tensor, name: str = "local") -> Dataset:
    """Wrap a site's positions ``[P, N]`` (raw gains) as an adaptation dataset (its median gain recorded)."""
    return Dataset(name, h_positions, median_gain(h_positions))


def adaptation_config(steps: int, lr: float, out_dir, seed: int) -> TrainConfig:
    """The shared loop's settings for a site adaptation run: no warm-up, four checkpoints, a log line every
    20 steps."""
    return TrainConfig(
        steps=steps,
        lr=lr,
        warmup=0,
        ckpt_every=max(1, steps // 4),
        log_every=20,
        out_dir=str(out_dir),
        seed=seed,
    )
