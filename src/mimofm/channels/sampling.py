"""Multi-user samples drawn from a site's single-user positions (seeded, paired across precoders).

* :func:`draw_user_sets` — ``[S, K]`` indices of distinct positions, from all positions or a subset
  (a split, LOS-only, NLOS-only: :func:`candidate_positions`).
* :func:`gather_users` — ``[S, K, N]`` multi-user channels; :class:`MultiUserSampler` streams batches
  to PyTorch by indexing the site tensor (no copy of the site).
* :func:`imperfect_csi` — ``Ĥ = H + E`` with a chosen NMSE (channel-estimation error).
* :func:`permute_users` — user-order permutation augmentation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from mimofm.core.validation import MimofmInputError, check_choice

__all__ = [
    "MultiUserSampler",
    "candidate_positions",
    "draw_user_sets",
    "gather_users",
    "imperfect_csi",
    "permute_users",
    "rotate_user_phases",
]

Mix = Literal["mixed", "los", "nlos"]


def candidate_positions(
    num_positions: int,
    *,
    los: torch.Tensor | None = None,
    mix: Mix = "mixed",
    split: np.ndarray | torch.Tensor | None = None,
    split_code: int | None = None,
) -> np.ndarray:
    """Indices of the positions a sample may use: ``mix`` selects LOS-only / NLOS-only users and
    ``split``/``split_code`` restricts to one position split (0 train, 1 val, 2 test)."""
    check_choice(mix, "user mix", ("mixed", "los", "nlos"))
    keep = np.ones(num_positions, dtype=bool)
    if mix != "mixed":
        if los is None:
            raise MimofmInputError(f"user mix {mix!r} needs LOS flags, and this channel set has none")
        flags = np.asarray(los, dtype=bool)
        keep &= flags if mix == "los" else ~flags
    if split_code is not None:
        if split is None:
            raise MimofmInputError("`split_code` given but the channel set has no position split")
        keep &= np.asarray(split) == split_code
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise MimofmInputError(f"no position matches user mix {mix!r} and split {split_code!r}")
    return idx


def draw_user_sets(
    num_positions: int, num_ue: int, num_samples: int, seed: int, candidates: np.ndarray | None = None
) -> np.ndarray:
    """``[num_samples, num_ue]`` int64 position indices, distinct within each sample.

    Drawn from ``candidates`` (default: all positions). Deterministic in ``seed`` (NumPy PCG64): the
    same seed gives the same users for every precoder.
    """
    pool = np.arange(num_positions) if candidates is None else np.asarray(candidates, dtype=np.int64)
    if num_ue < 1 or num_samples < 1:
        raise MimofmInputError(f"`num_ue` ({num_ue}) and `samples` ({num_samples}) must be >= 1")
    if num_ue > pool.size:
        raise MimofmInputError(f"`num_ue` ({num_ue}) exceeds the {pool.size} available positions")
    rng = np.random.default_rng(seed)
    # random keys per (sample, position); the num_ue smallest are a uniform draw without replacement
    out = np.empty((num_samples, num_ue), dtype=np.int64)
    block = max(1, 2_000_000 // pool.size)
    for s in range(0, num_samples, block):
        keys = rng.random((min(block, num_samples - s), pool.size))
        pick = np.argpartition(keys, num_ue - 1, axis=1)[:, :num_ue]
        out[s : s + len(keys)] = pool[pick]
    return out


def gather_users(h_positions: torch.Tensor, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``h_positions`` ``[num_positions, N]`` and ``idx`` ``[S, K]`` -> multi-user channels ``[S, K, N]``."""
    return h_positions[torch.as_tensor(idx, dtype=torch.long)]


def imperfect_csi(h: torch.Tensor, nmse_db: float, seed: int) -> torch.Tensor:
    """``Ĥ = H + E``: i.i.d. complex Gaussian error per user with ``E‖e_u‖² = 10^(nmse_db/10)·‖h_u‖²``.

    ``h`` ``[..., K, N]`` -> same shape and dtype. The error is scaled per user, so the NMSE holds for
    every user whatever its path loss.
    """
    if not np.isfinite(nmse_db):
        raise MimofmInputError(f"`nmse_db` must be finite, got {nmse_db!r}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    real = torch.float64
    e = torch.complex(
        torch.randn(h.shape, generator=g, dtype=real), torch.randn(h.shape, generator=g, dtype=real)
    )
    e = e.to(h.device) / np.sqrt(2 * h.shape[-1])  # E‖e_u‖² = 1
    scale = h.abs().square().sum(-1, keepdim=True).sqrt() * 10 ** (nmse_db / 20)
    return (h.to(torch.complex128) + e * scale.to(torch.float64)).to(h.dtype)


def permute_users(h: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random user order per sample: ``h`` ``[S, K, N]`` -> (permuted ``[S, K, N]``, ``perm`` ``[S, K]``)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    perm = torch.argsort(torch.rand(h.shape[:-1], generator=g), dim=-1).to(h.device)
    # gather rows: [S, K] -> [S, K, N]
    return torch.gather(h, -2, perm[..., None].expand(h.shape)), perm


def rotate_user_phases(h: torch.Tensor, seed: int) -> torch.Tensor:
    """Each user's channel times its own random phase ``e^{jθ}`` (``[S, K, N]``, same dtype): rates do not
    change, so it is a free augmentation for anything trained on the sum rate."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    theta = torch.rand(h.shape[:-1], generator=g, dtype=torch.float64) * (2 * np.pi)
    return h * torch.polar(torch.ones_like(theta), theta).to(h.device, h.dtype)[..., None]


class MultiUserSampler:
    """Endless seeded batches ``[batch, K, N]`` from one site tensor (indexes it, never copies it).

    Args:
        h_positions: ``[num_positions, N]`` complex site channels (any device).
        num_ue: users per sample. batch: samples per batch. seed: stream seed.
        candidates: allowed position indices (see :func:`candidate_positions`).
    """

    def __init__(
        self,
        h_positions: torch.Tensor,
        num_ue: int,
        batch: int,
        seed: int,
        candidates: np.ndarray | None = None,
    ):
        self.h = h_positions
        self.num_ue, self.batch, self.seed = num_ue, batch, seed
        self.candidates = candidates
        draw_user_sets(h_positions.shape[0], num_ue, 1, seed, candidates)  # validates early

    def __iter__(self) -> Iterator[torch.Tensor]:
        step = 0
        while True:
            idx = draw_user_sets(
                self.h.shape[0], self.num_ue, self.batch, self.seed + 1_000_003 * step, self.candidates
            )
            yield gather_users(self.h, idx)
            step += 1
