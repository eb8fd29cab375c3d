"""What the fm and papp adaptation recipes share: the configuration check, the position split of a user's
file, a site's local positions as a dataset, the held-out draws every before/after report is computed on,
the fixed-draw sum-rate report against RZF, and the run's record (``adaptation.json``).

Channels: a site's positions are raw gains ``[P, N]`` (one single-antenna UE per row); multi-user samples
drawn from them are SNR-scaled ``[S, K, N]`` (unit noise) at the *site-median* SNR, the median gain taken
over every position of the file (the shots, the held-out positions and the references share one scale).
Rates in bit/s/Hz.

**Split.** Adaptation trains on train-split positions (code 0) and reports on held-out ones. A file without
a split gets one here (:func:`site_split`): :func:`fraction_split` with 70 % train and the rest halved into
val/test, seeded with the run's seed; it is saved as ``<out_dir>/split.npy`` and reused by a later run in
that folder. ``mimofm data import FILE --out SITE.h5 --split 0.7 --split-seed SEED`` writes the same split
into a site file, so that ``mimofm eval --positions test`` scores the positions the report held out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mimofm._io import atomic_path, write_json
from mimofm.channels.catalog import position_split
from mimofm.channels.site_data import draw_samples
from mimofm.channels.types import SPLIT_NAMES, Dataset
from mimofm.core.linkbudget import median_gain
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import rzf
from mimofm.precoders.wmmse import wmmse
from mimofm.training.trainer import TrainConfig

__all__ = [
    "DEFAULT_SNR_GRID_DB",
    "DEFAULT_TRAIN_FRACTION",
    "RECORD_FILE",
    "SPLIT_FILE",
    "HeldOut",
    "SiteSplit",
    "adaptation_config",
    "check_configuration",
    "finish_run",
    "fraction_split",
    "held_out",
    "local_dataset",
    "local_indices",
    "local_positions",
    "rzf_ratio_report",
    "site_split",
    "write_record",
]

SPLIT_FILE = "split.npy"  # the split adaptation made for a file without one, in the run's out_dir
RECORD_FILE = "adaptation.json"  # the run's record: split, chosen heads, before/after report
DEFAULT_TRAIN_FRACTION = 0.7  # of a file without a split; val and test get half of the rest each
DEFAULT_SNR_GRID_DB = (0.0, 10.0, 20.0, 30.0)


def check_configuration(family: str, cfg, num_ue: int, num_bs_ant: int) -> None:
    """Raise :class:`MimofmInputError` unless a checkpoint with config ``cfg`` (an ``FMConfig`` or
    ``PaPPConfig``) serves ``num_ue`` users on ``num_bs_ant`` antennas: a user-form checkpoint serves any
    ``1 <= K <= N_t``, a fixed-configuration (antenna-form) one only its own ``(num_ue, num_bs_ant)``."""
    if not 1 <= num_ue <= num_bs_ant:
        raise MimofmInputError(
            f"`--num-ue` must be between 1 and the file's {num_bs_ant} antennas, got {num_ue}"
        )
    if getattr(cfg, "input_form", "antenna") != "user" and (num_ue, num_bs_ant) != (
        cfg.num_ue,
        cfg.num_bs_ant,
    ):
        raise MimofmInputError(
            f"this {family} checkpoint is a fixed-configuration (antenna-form) checkpoint for {cfg.num_ue} "
            f"users × {cfg.num_bs_ant} antennas; the adaptation asks for {num_ue} users (--num-ue) × "
            f"{num_bs_ant} antennas (the file's). Adapt a user-form {family} checkpoint (any K <= N_t), or "
            f"use --num-ue {cfg.num_ue} with a {cfg.num_bs_ant}-antenna file"
        )


def fraction_split(
    num_positions: int, train_fraction: float = DEFAULT_TRAIN_FRACTION, seed: int = 0
) -> np.ndarray:
    """``[num_positions]`` int8 split codes (0 train, 1 val, 2 test): ``train_fraction`` of the positions
    train, the rest halved into val and test, by :func:`mimofm.channels.catalog.position_split`'s seeded
    permutation (``mimofm data import --split`` and adaptation both use this)."""
    if not 0 < train_fraction < 1:
        raise MimofmInputError(f"the train fraction must be in (0, 1), got {train_fraction}")
    rest = (1.0 - train_fraction) / 2
    return position_split(num_positions, seed, (train_fraction, rest, rest))


@dataclass
class SiteSplit:
    """The position split an adaptation run uses: ``codes`` int8 ``[P]`` and where it came from
    (``source``: ``file``, ``made`` here, or ``reused`` from ``path``)."""

    codes: np.ndarray
    source: str
    path: str | None = None
    seed: int | None = None
    train_fraction: float | None = None

    def counts(self) -> dict[str, int]:
        """Positions per split name."""
        return {name: int((self.codes == c).sum()) for c, name in enumerate(SPLIT_NAMES)}

    def record(self) -> dict:
        """The split as the run's record keeps it (JSON-able)."""
        return {
            "source": self.source,
            "file": self.path,
            "seed": self.seed,
            "train_fraction": self.train_fraction,
            "counts": self.counts(),
        }


def read_split_file(path: str | Path, cs, fix: str = "") -> np.ndarray:
    """The position split ``[num_positions]`` int8 (0 train, 1 val, 2 test) stored in ``path`` (a
    ``split.npy`` that adaptation wrote) for the channel set ``cs``; a named error, ending with ``fix``,
    when it is unreadable or not a split of ``cs``."""
    try:
        codes = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise MimofmInputError(f"{str(path)!r} is not a readable split array ({e})") from None
    if (
        codes.shape != (cs.num_positions,)
        or codes.dtype.kind not in "iu"
        or not np.isin(codes, (0, 1, 2)).all()
    ):
        raise MimofmInputError(
            f"{str(path)!r} is not a split of {cs.name} ({cs.num_positions} positions, codes 0/1/2)"
            + (f"; {fix}" if fix else "")
        )
    return np.array(codes, dtype=np.int8)


def site_split(cs, out_dir, seed: int = 0, *, fresh: bool = False, log: Callable = print) -> SiteSplit:
    """The split of ``cs`` (a :class:`~mimofm.channels.types.ChannelSet`) that adaptation uses: the file's
    own; else ``<out_dir>/split.npy`` left by an earlier run in that folder (unless ``fresh``); else a new
    :func:`fraction_split` (70 % train, seeded with ``seed``), written there. Logs one line when the file
    has no split."""
    if cs.split is not None:
        return SiteSplit(cs.split.numpy().astype(np.int8), "file")
    path = Path(out_dir) / SPLIT_FILE
    if path.exists() and not fresh:
        codes = read_split_file(path, cs, "use a new --out-dir")
        split = SiteSplit(codes, "reused", str(path))
        log(f"{cs.name} has no position split: reusing {path} ({_counts_text(split)})")
        return split
    codes = fraction_split(cs.num_positions, DEFAULT_TRAIN_FRACTION, seed)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, codes)
    split = SiteSplit(codes, "made", str(path), seed, DEFAULT_TRAIN_FRACTION)
    log(
        f"{cs.name} has no position split: made one (seed {seed}; {_counts_text(split)}) → {path}; "
        f"`mimofm data import FILE --out SITE.h5 --split {DEFAULT_TRAIN_FRACTION} --split-seed {seed}` "
        "writes the same split into a site file"
    )
    return split


def _counts_text(split: SiteSplit) -> str:
    return ", ".join(f"{k} {v}" for k, v in split.counts().items())


def local_indices(codes: np.ndarray, shots: str | int, num_ue: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """The local positions adaptation trains on: every train-split position of ``codes`` ``[P]``
    (``shots="full"``) or ``shots`` of them drawn with ``seed`` (at least ``num_ue``) -> (indices, label)."""
    train_idx = np.flatnonzero(np.asarray(codes) == 0)
    if str(shots) == "full":
        if train_idx.size < num_ue:
            raise MimofmInputError(
                f"the split has {train_idx.size} train positions, fewer than {num_ue} users"
            )
        return train_idx, "train"
    try:
        n = int(shots)
    except ValueError:
        raise MimofmInputError(f"`--shots` must be an integer or 'full', got {shots!r}") from None
    if not num_ue <= n <= train_idx.size:
        raise MimofmInputError(f"`--shots` must be between {num_ue} and {train_idx.size}, got {n}")
    return np.random.default_rng(seed).choice(train_idx, size=n, replace=False), f"{n}-shot"


def local_positions(
    cs, shots: str | int, num_ue: int, seed: int = 0, split: np.ndarray | None = None
) -> Dataset:
    """The deployment site's local data: every train-split position (``shots="full"``) or ``shots`` of them.

    ``cs``: a :class:`~mimofm.channels.io.ChannelSet` (``h`` ``[P, N]`` raw gains); ``split``: its split
    codes ``[P]`` (default: the file's, see :func:`site_split` for a file without one); ``num_ue``: users
    per sample (the least number of shots); ``seed`` picks the shots. The dataset's SNR reference is the
    median gain of every position of ``cs``.
    """
    codes = split if split is not None else (cs.split.numpy() if cs.split is not None else None)
    if codes is None:
        raise MimofmInputError(
            f"{cs.name} has no position split; adaptation uses its train positions only "
            "(`mimofm data import --split 0.7` writes one)"
        )
    idx, label = local_indices(codes, shots, num_ue, seed)
    return local_dataset(cs.h[torch.from_numpy(idx)], f"{cs.name}/{label}", median_gain(cs.h))


def local_dataset(
    h_positions: torch.Tensor, name: str = "local", site_median_gain: float | None = None
) -> Dataset:
    """Wrap a site's positions ``[P, N]`` (raw gains) as an adaptation dataset; its SNR reference is
    ``site_median_gain`` (default: the median gain of these positions)."""
    gain = median_gain(h_positions) if site_median_gain is None else float(site_median_gain)
    return Dataset(name, h_positions, gain)


@dataclass
class HeldOut:
    """Fixed multi-user draws of a site's held-out positions: per grid SNR ``h`` ``[S, K, N]`` complex64
    (SNR-scaled) and WMMSE's (converged) sum rate ``wmmse_rate`` ``[S]`` on the same samples; ``which``
    names the positions (``test``, ``val``, or the train positions adaptation does not use)."""

    name: str
    which: str
    num_positions: int
    snr_grid_db: list[float]
    h: list[torch.Tensor]
    wmmse_rate: list[torch.Tensor]

    def describe(self) -> dict:
        """The draws as the run's record keeps them."""
        return {
            "positions": self.which,
            "num_positions": self.num_positions,
            "samples_per_snr": int(self.h[0].shape[0]),
            "snr_db": list(self.snr_grid_db),
        }

    @torch.no_grad()
    def ratio_to_wmmse(self, precode: Callable[[torch.Tensor], torch.Tensor]) -> float:
        """Mean over the grid SNRs of ``precode``'s mean sum rate over WMMSE's on the same samples
        (``precode``: ``h`` ``[S, K, N]`` complex64 -> ``W`` ``[S, N, K]``)."""
        ratios = []
        for h, ref in zip(self.h, self.wmmse_rate):
            w = precode(h).to(torch.complex128)
            ratios.append(float(user_rates(h.to(torch.complex128), w).sum(-1).mean() / ref.mean()))
        return sum(ratios) / len(ratios)


def held_out(
    cs,
    codes: np.ndarray,
    used: np.ndarray,
    num_ue: int,
    snr_grid_db: list[float],
    samples: int = 64,
    seed: int = 0,
) -> HeldOut:
    """The draws a before/after report is computed on: ``samples`` multi-user samples ``[S, num_ue, N]``
    per grid SNR from the ``test`` positions of ``codes`` (else ``val``; else the train positions not in
    ``used``, the ones adaptation trains on), seeded with ``seed``."""
    codes = np.asarray(codes)
    idx, which = None, ""
    for code in (2, 1):
        cand = np.flatnonzero(codes == code)
        if cand.size >= num_ue:
            idx, which = cand, SPLIT_NAMES[code]
            break
    if idx is None:
        idx = np.setdiff1d(np.flatnonzero(codes == 0), np.asarray(used))
        which = "train positions not used for adaptation"
        if idx.size < num_ue:
            raise MimofmInputError(
                f"{cs.name}: no held-out positions to report on (fewer than {num_ue} test, val or unused "
                "train positions); give a file with a test split (`mimofm data import --split 0.7`) or use "
                "fewer shots"
            )
    data = Dataset(f"{cs.name}/{which}", cs.h[torch.from_numpy(idx)], median_gain(cs.h))
    hs, refs = [], []
    for si, snr in enumerate(snr_grid_db):
        h = draw_samples(data, samples, num_ue, 50_000 + 1000 * seed + si, snr)
        hs.append(h)
        refs.append(wmmse(h.to(torch.complex128)).sum_rate.double())
    return HeldOut(cs.name, which, int(idx.size), list(snr_grid_db), hs, refs)


@torch.no_grad()
def rzf_ratio_report(
    precode: Callable[[torch.Tensor], torch.Tensor],
    datasets: list[Dataset],
    snr_grid_db: list[float],
    num_ue: int,
) -> dict[str, float]:
    """``precode(h)`` (``h`` ``[S, K, N]`` -> ``W`` ``[S, N, K]``) on a fixed draw of ``datasets`` at each
    SNR (dB), ``num_ue`` users per sample: ``sum_rate@<snr>dB`` (mean sum rate, bit/s/Hz) per SNR and
    ``ratio_to_rzf`` (mean over the SNRs of the ratio of mean sum rates to RZF's)."""
    out, ratios = {}, []
    for snr in snr_grid_db:
        hs = torch.cat([draw_samples(d, 32, num_ue, 5000 + e, snr) for e, d in enumerate(datasets)])
        r = user_rates(hs, precode(hs)).sum(-1).mean()
        ratios.append(float(r / user_rates(hs, rzf(hs)).sum(-1).mean()))
        out[f"sum_rate@{snr:g}dB"] = float(r)
    out["ratio_to_rzf"] = sum(ratios) / len(ratios)
    return out


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


def write_record(out_dir, record: dict) -> Path:
    """Write the run's record ``<out_dir>/adaptation.json`` (atomically); returns its path."""
    path = Path(out_dir) / RECORD_FILE
    write_json(path, record)
    return path


def finish_run(out: dict, out_dir, family: str, cs, shots, split, held, report: dict, **extra) -> dict:
    """Write ``<out_dir>/adaptation.json`` for an adaptation run — the site, the split, the held-out draw,
    the before/after ``report`` and ``extra`` (``num_ue``, ``num_bs_ant``, fm's similar heads ...) — and
    return the shared loop's result ``out`` with those fields added."""
    record = {
        "family": family,
        "site": cs.name,
        **{k: extra.pop(k) for k in ("num_ue", "num_bs_ant") if k in extra},
        "shots": str(shots),
        "checkpoint": str(out["checkpoint"]),
        "split": split.record(),
        **extra,
        "held_out": held.describe(),
        "report": report,
        "train_metrics": out["metrics"],
    }
    path = write_record(out_dir, record)
    out.update(split=split.record(), report=report, held_out=held.describe(), record=str(path), **extra)
    return out
