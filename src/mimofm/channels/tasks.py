"""3GPP task data for wifoe: normalized 38.901 channels per catalog task, cached on disk, split by drop.

Each task's positions are generated once with :func:`mimofm.channels.tr38901.generate_task`
(``normalize=True``: ``E‖h‖² = N_t``, ``SNR = P/σ²``) and cached as a site file in
:func:`task_dir` (``<task>-s<seed>-p<positions>.h5``). Positions come in chunks of 64 (8 drops of 8
UEs sharing large-scale parameters); chunk ``c`` is a **test** chunk when ``c % 10 >= 7`` and a train
chunk otherwise (the paper's 7:3), so no drop has users on both sides.

A multi-user sample of ``K`` users is ``K`` distinct positions of one split, scaled by ``√(SNR/N_t)``:
**by default the SNR of the wifoe tasks is the beamformed single-user SNR** ``P·E‖h‖²/σ²`` (the
channels are brought to ``E‖h‖² = SNR``; ``convention="received"``). ``convention="per-antenna"`` is the
FDD papers' reading, ``SNR = P/σ²`` with unit gain per antenna (``E‖h‖² = N_t·SNR``, scale ``√SNR``);
see :class:`~mimofm.core.linkbudget.FDDOperatingPoint`. The catalog's normalized channels have
``E‖h‖² = N_t``, with which ``P/σ²`` would add the 18–24 dB array gain to every SNR and put 0–20 dB
deep in the feedback-limited regime. With ``E‖h‖² = 1``, perfect-CSI WMMSE averages ≈ 1.7 / 6.5–7 / 16–19
bit/s/Hz at 0 / 10 / 20 dB over K = 3..8 (the wifoe paper's Table II has ≈ 12.7 at 10 dB: its
QuaDRiGa channels are a few dB stronger than unit gain; our 15 dB is its 10 dB, roughly).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mimofm.channels.io import load_channels
from mimofm.channels.sampling import draw_user_sets, gather_users
from mimofm.channels.store import write_site
from mimofm.channels.tr38901 import CHUNK_POSITIONS, generate_task, get_task
from mimofm.channels.types import TaskData
from mimofm.core.linkbudget import FDDOperatingPoint
from mimofm.core.validation import MimofmInputError

__all__ = [
    "DEFAULT_POSITIONS",
    "SamplePool",
    "TaskCache",
    "draw_task_samples",
    "load_task",
    "snr_scale",
    "split_pool",
    "task_dir",
]

DEFAULT_POSITIONS = 4096


def task_dir() -> Path:
    """The cache folder of the generated task files (``$MIMOFM_TASK_DIR``, default
    ``~/.cache/mimofm/tasks``)."""
    return Path(os.environ.get("MIMOFM_TASK_DIR", Path.home() / ".cache" / "mimofm" / "tasks"))


def _test_mask(num_positions: int) -> np.ndarray:
    return (np.arange(num_positions) // CHUNK_POSITIONS) % 10 >= 7


def load_task(name: str, positions: int = DEFAULT_POSITIONS, seed: int = 0, *, progress=None) -> TaskData:
    """The task's train/test positions ``[P, N_t]`` (complex64), generated with Sionna on first use and
    cached on disk in :func:`task_dir`.

    Every call reads and checks the file anew (no state is kept between calls); a caller that loads the
    same tasks many times holds a :class:`TaskCache` instead.
    """
    cfg = get_task(name)
    if positions < 64:
        raise MimofmInputError(f"`positions` must be >= 64 (one chunk), got {positions}")
    path = task_dir() / f"{name}-s{seed}-p{positions}.h5"
    if path.exists():
        h = load_channels(path).h
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        cs = generate_task(cfg, positions, seed, normalize=True, progress=progress)
        write_site(path, cs)
        h = cs.h
    mask = torch.from_numpy(_test_mask(h.shape[0]))
    if not bool(mask.any()) or bool(mask.all()):
        raise MimofmInputError(
            f"task {name}: {positions} positions give no train or no test chunk; use >= 512"
        )
    return TaskData(name, h[~mask].to(torch.complex64).contiguous(), h[mask].to(torch.complex64).contiguous())


class TaskCache:
    """The task data one caller has loaded, kept for its own later loads (an evaluation sweep reads each
    task once, not once per SNR and model).

    Owned and passed explicitly by the caller; it lives as long as the caller keeps it. Keyed by
    ``(task, positions, seed, task folder)``, so a changed ``$MIMOFM_TASK_DIR`` loads afresh.
    """

    def __init__(self) -> None:
        self._data: dict[tuple[str, int, int, str], TaskData] = {}
        # results computed from the tasks (e.g. the classical rates of a draw), keyed by their caller
        self.results: dict[tuple, object] = {}

    def load(
        self, name: str, positions: int = DEFAULT_POSITIONS, seed: int = 0, *, progress=None
    ) -> TaskData:
        """:func:`load_task` on the first call for a key, the kept :class:`TaskData` afterwards."""
        key = (name, positions, seed, str(task_dir()))
        if key not in self._data:
            self._data[key] = load_task(name, positions, seed, progress=progress)
        return self._data[key]


def snr_scale(snr_db: float, num_bs_ant: int, convention: str = "received") -> float:
    """Channel scale of the normalized tasks (``E‖h‖² = N_t``) at ``snr_db`` read in ``convention``:
    ``√(SNR/N_t)`` (received, ``E‖h‖² = SNR``) or ``√SNR`` (per-antenna, ``E‖h‖² = N_t·SNR``)."""
    return FDDOperatingPoint(snr_db, convention).channel_scale(num_bs_ant)


def draw_task_samples(
    positions: torch.Tensor, n: int, num_ue: int, seed: int, snr_db: float, convention: str = "received"
) -> torch.Tensor:
    """``n`` samples ``[n, num_ue, N_t]`` of ``num_ue`` distinct positions at SNR ``snr_db``
    (``convention``)."""
    idx = draw_user_sets(positions.shape[0], num_ue, n, seed)
    return gather_users(positions, idx).to(torch.complex64) * snr_scale(
        snr_db, positions.shape[-1], convention
    )


class SamplePool:
    """A fixed budget of ``budget`` multi-user samples (fine-tuning data): user counts cycle through
    ``num_ue_range``; :meth:`draw` picks a user count and ``n`` of that count's samples (with replacement).
    ``candidates``: the position indices the users are drawn from (default: all)."""

    def __init__(
        self,
        positions: torch.Tensor,
        budget: int,
        num_ue_range: tuple[int, int],
        seed: int,
        candidates: np.ndarray | None = None,
    ) -> None:
        if budget < 1:
            raise MimofmInputError(f"the sample budget must be >= 1, got {budget}")
        ks = list(range(num_ue_range[0], num_ue_range[1] + 1))
        self.sets = {}
        for i, k in enumerate(ks):
            m = budget // len(ks) + (1 if i < budget % len(ks) else 0)
            if m:
                self.sets[k] = draw_user_sets(positions.shape[0], k, m, seed * 1000 + k, candidates)
        self.positions = positions

    def samples(self, snr_db: float, convention: str = "received") -> dict[int, torch.Tensor]:
        """Every sample of the pool at ``snr_db``, per user count: ``{K: [S_K, K, N_t]}``."""
        scale = snr_scale(snr_db, self.positions.shape[-1], convention)
        return {
            k: gather_users(self.positions, idx).to(torch.complex64) * scale for k, idx in self.sets.items()
        }

    def draw(
        self, n: int, rng: np.random.Generator, snr_db: float, convention: str = "received"
    ) -> torch.Tensor:
        """``n`` samples ``[n, K, N_t]`` (complex64) of one user count ``K`` picked with ``rng``, scaled to
        ``snr_db`` (dB, read in ``convention``)."""
        k = list(self.sets)[int(rng.integers(len(self.sets)))]
        idx = self.sets[k][rng.integers(len(self.sets[k]), size=n)]
        scale = snr_scale(snr_db, self.positions.shape[-1], convention)
        return gather_users(self.positions, idx).to(torch.complex64) * scale


def split_pool(
    positions: torch.Tensor, budget: int, num_ue_range: tuple[int, int], seed: int, val_fraction: float
) -> tuple[SamplePool, SamplePool | None]:
    """A budget of samples split into a training pool and a validation pool on disjoint positions
    (``val_fraction = 0``: the whole budget on every position, and no validation pool).

    ``round(val_fraction·budget)`` of the samples are for validation; they draw their users from the last
    ``val_fraction`` of the positions, the training samples from the rest, so validation is on positions
    the training never saw (positions are stored drop by drop, so these are whole drops but for the one
    the cut falls in).
    """
    if val_fraction == 0:
        return SamplePool(positions, budget, num_ue_range, seed), None
    n_val = round(val_fraction * budget)
    n_pos = positions.shape[0]
    cut = n_pos - round(val_fraction * n_pos)
    if (
        not 0 < val_fraction < 1
        or n_val < 1
        or n_val >= budget
        or cut < num_ue_range[1]
        or n_pos - cut < num_ue_range[1]
    ):
        raise MimofmInputError(
            f"`val_fraction` {val_fraction} of {budget} samples on {n_pos} positions leaves no "
            "training or no validation samples; use a fraction in (0, 1) and a larger budget"
        )
    return (
        SamplePool(positions, budget - n_val, num_ue_range, seed, np.arange(cut)),
        SamplePool(positions, n_val, num_ue_range, seed + 7919, np.arange(cut, n_pos)),
    )
