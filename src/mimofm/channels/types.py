"""Channel-data types shared by every channel module: a site's channels, a 3GPP task's positions, a
training dataset. Plain dataclasses, no I/O (readers live in :mod:`mimofm.channels.io`,
:mod:`mimofm.channels.store`, :mod:`mimofm.channels.tasks`, :mod:`mimofm.channels.site_data`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mimofm.core.validation import MimofmInputError

__all__ = ["SPLIT_NAMES", "ChannelSet", "Dataset", "TaskData"]

SPLIT_NAMES = ("train", "val", "test")  # split codes 0, 1, 2


@dataclass
class ChannelSet:
    """One site's channels.

    ``h`` complex ``[num_positions, num_bs_ant]``; ``los`` bool ``[num_positions]`` or None;
    ``positions`` float64 ``[num_positions, 2 or 3]`` or None; ``meta`` dict; ``split`` int8
    ``[num_positions]`` (0 train, 1 val, 2 test) or None.
    """

    name: str
    h: torch.Tensor
    los: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)
    split: torch.Tensor | None = None

    @property
    def num_positions(self) -> int:
        """Number of positions (rows of ``h``)."""
        return self.h.shape[0]

    @property
    def num_bs_ant(self) -> int:
        """Number of BS antennas (columns of ``h``)."""
        return self.h.shape[1]


@dataclass
class TaskData:
    """One task's normalized positions: ``train`` / ``test`` complex64 ``[P, N_t]``."""

    name: str
    train: torch.Tensor
    test: torch.Tensor

    def split(self, which: str) -> torch.Tensor:
        """The ``train`` or ``test`` positions ``[P, N_t]`` (complex64)."""
        if which not in ("train", "test"):
            raise MimofmInputError(f"split must be 'train' or 'test', got {which!r}")
        return self.train if which == "train" else self.test


@dataclass
class Dataset:
    """One (site, LOS|NLOS) training dataset: positions ``h`` ``[P, N]`` (raw gains) and the site's median
    gain."""

    name: str
    h: torch.Tensor
    site_median_gain: float
