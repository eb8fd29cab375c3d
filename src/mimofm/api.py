"""The Python API: a named precoder as a plain callable.

>>> import torch, mimofm
>>> h = torch.randn(8, 4, 64, dtype=torch.complex64)          # SNR-scaled channel [batch, users, antennas]
>>> zf = mimofm.load_precoder("zf")
>>> w = zf(h)                                                   # [batch, antennas, users], total power 1
>>> w.shape
torch.Size([8, 64, 4])
>>> bool(mimofm.sum_rate(h, w).mean() > 0)
True
>>> fm = mimofm.load_precoder("fm")                             # the shipped checkpoint, zero-shot
>>> w_max = fm(h)                                               # maximum sum rate, full power
>>> w_req = fm(h, rate_targets=torch.full((8, 4), 0.5))        # per-user requests in bit/s/Hz
>>> bool(mimofm.total_power(w_req).max() <= 1 + 1e-5)
True
>>> wf = mimofm.load_precoder("wifoe", task="T1")              # end to end FDD: pilots, 24-bit feedback, BS
>>> wf(torch.randn(2, 5, 96, dtype=torch.complex64)).shape      # any number of users (3..8 trained)
torch.Size([2, 96, 5])

The channel is SNR-scaled (unit transmit power, unit noise; ``mimofm.core.linkbudget`` turns raw
gains into it), rows are users: ``y_u = h_u · W · s + n_u``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mimofm.core.linkbudget import median_gain
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.wifoe_eval import checkpoint_pilot_rule, rule_pilot_snr
from mimofm.models.zoo import (
    NEURAL,
    build_precoder,
    load_fm,
    load_papp,
    load_wifoe,
    precoder_catalog,
    shipped_checkpoint,
)
from mimofm.precoders.registry import run_precoder

__all__ = ["Precoder", "load_precoder"]

Precoder = Callable[..., torch.Tensor]


def load_precoder(name: str, checkpoint: str | None = None, task: str | None = None) -> Precoder:
    """``name`` from ``mimofm precoders`` (bounds excluded), or ``"wifoe"`` ->
    ``f(h, rate_targets=None) -> W``.

    ``h`` ``[..., K, N]`` complex SNR-scaled channel; ``W`` ``[..., N, K]``. ``rate_targets`` ``[..., K]``
    (bit/s/Hz) is accepted by fm only. ``checkpoint``: an fm, papp or wifoe checkpoint stem instead of the
    shipped one. wifoe needs ``task`` (a branch of the checkpoint, e.g. ``"T1"``): ``f(h, generator=None)``
    runs the whole FDD chain — the task's pilots through ``h`` with unit-variance noise (from
    ``generator``), the users' B-bit feedback, the BS precoder — on ``h`` ``[B, K, N_t]`` (beamformed-SNR
    scaling, docs/wifoe.md).
    """
    if name == "wifoe":
        return _wifoe(checkpoint, task)
    catalog = precoder_catalog()
    if name not in catalog:
        raise MimofmInputError(f"unknown precoder {name!r}; valid: {', '.join(catalog)}")
    if catalog[name][0] != "precoder":
        raise MimofmInputError(
            f"{name!r} is a bound, not a precoder; precoders: "
            f"{', '.join(n for n, (kind, _) in catalog.items() if kind == 'precoder')}"
        )
    entry = NEURAL.get(name)
    if entry is not None and entry.family == "fm":
        steps = entry.refine_steps
        model = load_fm(checkpoint)

        def fm(h: torch.Tensor, rate_targets: torch.Tensor | None = None) -> torch.Tensor:
            rates = None if rate_targets is None else torch.as_tensor(rate_targets, dtype=torch.float32)
            if rates is not None and steps:
                raise MimofmInputError("fm-refined is the maximum-sum-rate mode; use fm for rate targets")
            hb, lead = _as_batch(h)
            rb = None if rates is None else rates.reshape(hb.shape[:-1])  # [..., K] -> [B, K]
            if rates is not None and rates.shape != h.shape[:-1]:
                raise MimofmInputError(f"`rate_targets` must be of shape {list(h.shape[:-1])}")
            model.check_input(hb, rb)
            with torch.no_grad():
                w = model(hb.to(torch.complex64), rates=rb, refine_steps=steps).w.to(h.dtype)
            return w.reshape(*lead, *w.shape[-2:])  # [B, N, K] -> [..., N, K]

        return fm
    if entry is not None and entry.num_rf is None:  # papp, papp-refined, papp-csi, papp-hbf, papp-lite
        steps = entry.refine_steps
        student = load_papp(checkpoint, shipped=entry.checkpoint)

        def papp(h: torch.Tensor, rate_targets: torch.Tensor | None = None) -> torch.Tensor:
            if rate_targets is not None:
                raise MimofmInputError("papp has no rate-target mode; use fm")
            hb, lead = _as_batch(h)
            student.check_input(hb)
            with torch.no_grad():
                w = student(hb.to(torch.complex64), refine_steps=steps).to(h.dtype)
            return w.reshape(*lead, *w.shape[-2:])  # [B, N, K] -> [..., N, K]

        return papp
    if checkpoint is not None:
        raise MimofmInputError(
            f"`checkpoint` applies to fm(-refined), papp (-csi, -hbf, -refined) and wifoe, not {name!r}"
        )
    # a classical precoder, or papp-hbf-4 (the shipped papp-hbf served with 4 RF chains)
    table = {name: build_precoder(name)}

    def classical(h: torch.Tensor, rate_targets: torch.Tensor | None = None) -> torch.Tensor:
        if rate_targets is not None:
            raise MimofmInputError(
                f"{name} has no rate-target mode; use fm, or mimofm.precoders.qos_power_min"
            )
        return run_precoder(name, h, table).w

    classical.__name__ = name
    return classical


def _as_batch(h: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``h`` ``[..., K, N]`` (``[K, N]`` unbatched, or any number of batch axes) -> (``[B, K, N]``, the
    leading shape ``...``)."""
    if not isinstance(h, torch.Tensor) or not h.is_complex() or h.dim() < 2:
        raise MimofmInputError(
            "the channel must be a complex torch tensor [..., num_ue, num_bs_ant], got "
            f"{type(h).__name__} {getattr(h, 'dtype', '')} {list(getattr(h, 'shape', []))}"
        )
    lead = tuple(h.shape[:-2])
    return h.reshape(-1, *h.shape[-2:]), lead  # [..., K, N] -> [B, K, N]


def _wifoe(checkpoint: str | None, task: str | None) -> Precoder:
    if not task:
        raise MimofmInputError(
            "wifoe needs `task=` (a branch of the checkpoint, e.g. 'T1'; see `mimofm data tasks`)"
        )
    model = load_wifoe(checkpoint)
    model.branch(task)
    rule = checkpoint_pilot_rule(checkpoint or shipped_checkpoint("wifoe"))

    def wifoe(
        h: torch.Tensor,
        rate_targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        pilot_energy: float | None = None,
        pilot_snr_db: float | None = None,
        snr_db: float | None = None,
    ) -> torch.Tensor:
        """``h`` SNR-scaled ``[B, K, N_t]`` -> ``W`` ``[B, N_t, K]``. Pilots: ``pilot_energy`` (``E_s``
        itself), or
        ``pilot_snr_db`` (the pilot SNR at the reference user), or neither: the checkpoint's own rule (the
        shipped model: data SNR + 4 dB; full-energy pilots for a checkpoint without one). The reference user's
        gain is ``10^(snr_db/10)`` (``snr_db``: the received SNR ``h`` was scaled to), else the median ‖h_k‖²
        of
        this batch — then the pilots depend on the batch, so pass ``snr_db`` when you know it."""
        if rate_targets is not None:
            raise MimofmInputError("wifoe has no rate-target mode; use fm")
        if pilot_energy is not None and pilot_snr_db is not None:
            raise MimofmInputError("give `pilot_snr_db` or `pilot_energy`, not both")
        if pilot_energy is None:
            n = h.shape[-1]
            if snr_db is not None and not math.isfinite(snr_db):
                raise MimofmInputError(f"`snr_db` must be a finite number of dB, got {snr_db!r}")
            # [..., K, N] -> [users, N] for the median user's gain
            g = 10.0 ** (snr_db / 10.0) if snr_db is not None else median_gain(h.reshape(-1, n))
            if not g > 0:
                raise MimofmInputError(
                    "the channel's reference gain is zero; give `snr_db` or `pilot_energy`"
                )
            pilot = (
                pilot_snr_db if pilot_snr_db is not None else rule_pilot_snr(rule, 10.0 * math.log10(g), n)
            )
            if pilot is not None and not math.isfinite(pilot):
                raise MimofmInputError(f"`pilot_snr_db` must be a finite number of dB, got {pilot!r}")
            pilot_energy = 1.0 if pilot is None else 10.0 ** (pilot / 10.0) * n / g
        with torch.no_grad():
            return model(h.to(torch.complex64), task, generator=generator, pilot_energy=pilot_energy).to(
                h.dtype
            )

    return wifoe
