"""End-to-end evaluation of wifoe models on the 3GPP tasks' held-out (test) drops.

Every number is a mean sum rate (bit/s/Hz) over user counts ``K = 3..8`` (``samples`` multi-user
samples per ``K``, drawn with seed ``(seed, task, K)`` from the task's **test** positions), at
``SNR = P/σ²``. A wifoe model's rate includes everything of the FDD pipeline: its pilots with noise
(seeded), its B-bit feedback, its precoder. ZF and WMMSE (perfect CSI at the BS, ``paper`` setting)
precode the very same channel draws (upper references).
"""

from __future__ import annotations

import zlib

import torch

from mimofm.core.rates import sum_rate
from mimofm.precoders.linear import zf
from mimofm.precoders.wmmse import wmmse
from mimofm.training.task_data import DEFAULT_POSITIONS, draw_task_samples, load_task

__all__ = ["task_draws", "wifoe_rate", "classical_rates", "evaluate_wifoe", "lmmse_wmmse_rate", "checkpoint_positions"]


def checkpoint_positions(stem) -> int:
    """The task-data size a wifoe checkpoint was trained on (its recipe's ``positions``): the test drops
    depend on it."""
    import json
    from pathlib import Path

    card = json.loads(Path(str(stem)).with_suffix(".json").read_text())
    return card.get("config", {}).get("recipe", {}).get("positions", DEFAULT_POSITIONS)


def task_draws(task: str, snr_db: float, samples: int = 200, seed: int = 0, split: str = "test",
               positions: int = DEFAULT_POSITIONS) -> list[torch.Tensor]:
    """One ``[samples, K, N_t]`` draw per ``K`` of the task's range, SNR-scaled."""
    from mimofm.channels.tr38901 import get_task

    cfg = get_task(task)
    pos = load_task(task, positions).split(split)
    base = zlib.crc32(task.encode())
    return [draw_task_samples(pos, samples, k, seed * 1_000_003 + base + k, snr_db)
            for k in range(cfg.min_ue, cfg.max_ue + 1)]


def _mean_rate(draws: list[torch.Tensor], precode) -> float:
    rates = [float(sum_rate(h.to(torch.complex128), precode(h, i).to(torch.complex128)).mean())
             for i, h in enumerate(draws)]
    return sum(rates) / len(rates)


@torch.no_grad()
def wifoe_rate(model, task: str, draws: list[torch.Tensor], branch: str | None = None, seed: int = 0) -> float:
    """End-to-end mean sum rate of ``model``'s branch ``branch`` (default: ``task``) on ``draws``."""
    was = model.training
    model.eval()
    name = branch or task
    try:
        return _mean_rate(draws, lambda h, i: model(h, name, generator=torch.Generator().manual_seed(seed * 97 + i)))
    finally:
        model.train(was)


_CLASSICAL: dict[tuple, dict[str, float]] = {}


def classical_rates(task: str, snr_db: float, samples: int = 200, seed: int = 0,
                    positions: int = DEFAULT_POSITIONS) -> dict[str, float]:
    """ZF and WMMSE mean sum rates with perfect CSI on :func:`task_draws` (cached per process)."""
    key = (task, snr_db, samples, seed, positions)
    if key not in _CLASSICAL:
        draws = task_draws(task, snr_db, samples, seed, positions=positions)
        _CLASSICAL[key] = {"zf": _mean_rate(draws, lambda h, i: zf(h)),
                           "wmmse": _mean_rate(draws, lambda h, i: wmmse(h).w)}
    return _CLASSICAL[key]


def lmmse_wmmse_rate(task: str, snr_db: float, samples: int = 200, seed: int = 0,
                     positions: int = DEFAULT_POSITIONS) -> float:
    """A classical FDD reference with the task's pilot budget and **unquantized** feedback: random pilots
    ``X`` (``L`` unit-norm Gaussian columns), the LMMSE channel estimate with the channel covariance
    measured on the task's train positions, WMMSE on the estimates, rates on the true channels.

    With column vectors ``g = hᵀ``: ``yᵀ = Xᵀ g + zᵀ``, ``ĝ = C X* (Xᵀ C X* + I)⁻¹ yᵀ``, ``C = E[g gᴴ]``.
    It shows what the pilots alone cost (the learned schemes also pay for B-bit feedback).
    """
    from mimofm.channels.tr38901 import get_task
    from mimofm.training.task_data import snr_scale

    cfg = get_task(task)
    n, L = cfg.num_bs_ant, cfg.pilot_length
    train = load_task(task, positions).train.to(torch.complex128) * snr_scale(snr_db, n)
    c = train.T @ train.conj() / train.shape[0]  # E[g g^H], [N, N]
    g = torch.Generator().manual_seed(seed)
    x = torch.complex(*torch.randn(2, n, L, generator=g, dtype=torch.float64))
    x = x / x.norm(dim=0, keepdim=True)
    gain = c @ x.conj() @ torch.linalg.inv(x.T @ c @ x.conj() + torch.eye(L, dtype=c.dtype))  # [N, L]

    def precode(h, i):
        h64 = h.to(torch.complex128)
        z = torch.complex(*torch.randn(2, *h.shape[:2], L, generator=g, dtype=torch.float64)) * 0.5 ** 0.5
        y = h64 @ x + z  # [B, K, L]
        h_est = y @ gain.T  # ĥ = (gain yᵀ)ᵀ = y gainᵀ
        return wmmse(h_est).w

    return _mean_rate(task_draws(task, snr_db, samples, seed, positions=positions), precode)


def evaluate_wifoe(model, tasks: list[str], snrs_db: list[float], samples: int = 200, seed: int = 0,
                   branches: dict[str, str] | None = None, progress=None,
                   positions: int = DEFAULT_POSITIONS) -> list[dict]:
    """Rows ``{task, branch, snr_db, rate, zf, wmmse, ratio_to_wmmse}`` for every task and SNR.

    ``branches`` maps an evaluated task to the model branch that precodes it (zero-shot transfer, e.g.
    ``{"G1": "T1"}``); default: the task's own branch. ``positions``: the task data's size (the
    recipe's ``positions``; the test drops depend on it).
    """
    rows = []
    for t in tasks:
        br = (branches or {}).get(t, t)
        for s in snrs_db:
            if progress:
                progress(f"{t} @ {s:g} dB")
            draws = task_draws(t, s, samples, seed, positions=positions)
            r = wifoe_rate(model, t, draws, br, seed)
            ref = classical_rates(t, s, samples, seed, positions)
            rows.append({"task": t, "branch": br, "snr_db": s, "rate": r, **ref, "ratio_to_wmmse": r / ref["wmmse"]})
    return rows
