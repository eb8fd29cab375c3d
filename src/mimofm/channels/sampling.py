"""Multi-user samples drawn from a site's single-user positions (seeded, paired across precoders)."""

from __future__ import annotations

import numpy as np
import torch

from mimofm.core.validation import MimofmInputError

__all__ = ["draw_user_sets", "gather_users"]


def draw_user_sets(num_positions: int, num_ue: int, num_samples: int, seed: int) -> np.ndarray:
    """``[num_samples, num_ue]`` int64 position indices, distinct within each sample.

    Deterministic in ``seed`` (NumPy PCG64): the same seed gives the same users for every precoder.
    """
    if num_ue < 1 or num_samples < 1:
        raise MimofmInputError(f"`num_ue` ({num_ue}) and `samples` ({num_samples}) must be >= 1")
    if num_ue > num_positions:
        raise MimofmInputError(f"`num_ue` ({num_ue}) exceeds the site's {num_positions} positions")
    rng = np.random.default_rng(seed)
    out = np.empty((num_samples, num_ue), dtype=np.int64)
    for s in range(num_samples):
        out[s] = rng.choice(num_positions, size=num_ue, replace=False)
    return out


def gather_users(h_positions: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
    """``h_positions`` ``[num_positions, N]`` and ``idx`` ``[S, K]`` -> multi-user channels ``[S, K, N]``."""
    return h_positions[torch.from_numpy(idx)]
