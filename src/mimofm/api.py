"""The Python API: a named precoder as a ``torch.nn.Module``.

>>> import numpy as np, torch, mimofm
>>> h = torch.randn(8, 4, 64, dtype=torch.complex64)          # SNR-scaled channel [batch, users, antennas]
>>> zf = mimofm.load_precoder("zf")
>>> isinstance(zf, torch.nn.Module)
True
>>> w = zf(h)                                                   # [batch, antennas, users], total power 1
>>> w.shape
torch.Size([8, 64, 4])
>>> bool(mimofm.sum_rate(h, w).mean() > 0)
True
>>> zf(h[0]).shape                                              # unbatched [users, antennas]
torch.Size([64, 4])
>>> w_np = zf(h.numpy())                                        # numpy in, numpy out
>>> type(w_np).__name__, w_np.shape
('ndarray', (8, 64, 4))
>>> fm = mimofm.load_precoder("fm")                             # the shipped checkpoint, zero-shot
>>> w_max = fm(h)                                               # maximum sum rate, full power
>>> w_req = fm(h, rate_targets=torch.full((8, 4), 0.5))        # per-user requests in bit/s/Hz
>>> bool(mimofm.total_power(w_req).max() <= 1 + 1e-5)
True
>>> wf = mimofm.load_precoder("wifoe", task="T1")              # end to end FDD: pilots, 24-bit feedback, BS
>>> wf(torch.randn(2, 5, 96, dtype=torch.complex64)).shape      # any number of users (3..8 trained)
torch.Size([2, 96, 5])

The channel is SNR-scaled (unit transmit power, unit noise; ``mimofm.core.linkbudget`` turns raw
gains into it), rows are users: ``y_u = h_u · W · s + n_u``. Raw gains (a median ‖h_k‖² below
:data:`RAW_GAIN_THRESHOLD`) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mimofm.core.linkbudget import median_gain
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.wifoe_eval import checkpoint_pilot_rule, rule_pilot_snr
from mimofm.models.zoo import (
    NEURAL,
    build_precoder,
    load_fm,
    load_papp,
    load_wifoe,
    polished,
    precoder_catalog,
    shipped_checkpoint,
)
from mimofm.precoders.registry import run_precoder

__all__ = ["RAW_GAIN_THRESHOLD", "Precoder", "PrecoderModule", "load_precoder", "precoder_names"]

Precoder = Callable[..., Any]

# below this median per-user gain ‖h_k‖² a channel is taken for raw gains (path loss, e.g. 1e-10), not an
# SNR-scaled channel (‖h_k‖² = the user's SNR: 1e-6 is -60 dB)
RAW_GAIN_THRESHOLD = 1e-6

# a batched run: (the module's network or None, ``hb`` ``[B, K, N]`` on the module's device, ``rates``
# ``[B, K]`` or None) -> ``W`` ``[B, N, K]``; the network is passed in, so that a copy of the module
# (deepcopy) runs its own
_Run = Callable[..., torch.Tensor]


class PrecoderModule(nn.Module):
    """A named precoder as a module: ``W = module(h)``.

    ``h``: complex SNR-scaled channel ``[..., K, N]`` (users × BS antennas; unbatched ``[K, N]`` or any number
    of leading batch axes), as a torch tensor, a numpy array or nested lists. ``W``: ``[..., N, K]`` with the
    same leading shape, total power ``‖W‖_F² ≤ 1`` per sample; a torch tensor on ``h``'s device for torch
    input, a numpy array for numpy or list input. The precoder runs on the module's device (``device=`` of
    :func:`load_precoder`, or ``.to(...)``). ``network`` is the neural network (``None`` for a classical
    precoder); the module is inference-only (``torch.no_grad`` inside for the neural ones).
    """

    def __init__(
        self, name: str, run: _Run, network: nn.Module | None = None, rates_error: str | None = None
    ):
        super().__init__()
        self.name = name
        self.network = network
        self._run = run
        self._rates_error = rates_error  # the message when rate targets are given to a precoder without them
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # follows .to(): the device
        self.eval()

    @property
    def device(self) -> torch.device:
        """The device the precoder runs on."""
        return self._anchor.device

    def extra_repr(self) -> str:
        """``name='fm', device=cpu`` in the module's repr."""
        return f"name={self.name!r}, device={self.device}"

    def forward(self, h: Any, rate_targets: Any = None, **kwargs: Any) -> Any:
        """``h`` ``[..., K, N]`` -> ``W`` ``[..., N, K]`` (see the class). ``rate_targets`` ``[..., K]``
        (bit/s/Hz, per-user requests; fm only). wifoe also takes ``generator``, ``pilot_energy``,
        ``pilot_snr_db`` and ``snr_db`` (see :func:`load_precoder`)."""
        ht, back = _to_tensor(h)
        hb, lead = _as_batch(ht)
        _check_snr_scaled(hb)
        rb = None
        if rate_targets is not None:
            if self._rates_error is not None:
                raise MimofmInputError(self._rates_error)
            rates = torch.as_tensor(
                np.asarray(rate_targets) if isinstance(rate_targets, list) else rate_targets
            )
            rates = rates.to(torch.float32)
            if rates.shape != ht.shape[:-1]:
                raise MimofmInputError(f"`rate_targets` must be of shape {list(ht.shape[:-1])}")
            rb = rates.reshape(hb.shape[:-1]).to(self.device)  # [..., K] -> [B, K]
        w = self._run(self.network, hb.to(self.device), rb, **kwargs)
        return back(w.reshape(*lead, *w.shape[-2:]))  # [B, N, K] -> [..., N, K]


def precoder_names() -> list[str]:
    """The names :func:`load_precoder` accepts: the precoders of ``mimofm precoders`` (bounds such as
    ``dpc`` excluded) and ``"wifoe"``."""
    return [n for n, (kind, _) in precoder_catalog().items() if kind == "precoder"] + ["wifoe"]


def load_precoder(
    name: str, checkpoint: str | None = None, task: str | None = None, device: str | torch.device = "cpu"
) -> PrecoderModule:
    """``name`` from :func:`precoder_names` -> a :class:`PrecoderModule` ``f(h, rate_targets=None) -> W``.

    ``h`` ``[..., K, N]`` complex SNR-scaled channel (torch, numpy or nested lists; unbatched or batched);
    ``W`` ``[..., N, K]``, ``‖W‖_F² ≤ 1``, the type of ``h``. ``rate_targets`` ``[..., K]`` (bit/s/Hz) is
    accepted by fm only. ``checkpoint``: an fm, papp or wifoe checkpoint stem instead of the shipped one.
    ``device``: where the module lives and runs (``"cpu"``, ``"cuda"``, ...). wifoe needs ``task`` (a branch
    of the checkpoint, e.g. ``"T1"``): ``f(h, generator=None)`` runs the whole FDD chain — the task's pilots
    through ``h`` with unit-variance noise (from ``generator``), the users' B-bit feedback, the BS precoder —
    on ``h`` ``[..., K, N_t]`` (beamformed-SNR scaling, docs/wifoe.md).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise MimofmInputError(f"unknown device {device!r}; e.g. 'cpu' or 'cuda'") from None
    return _build(name, checkpoint, task).to(dev)


def _build(name: str, checkpoint: str | None, task: str | None) -> PrecoderModule:
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

        def fm(net: nn.Module, hb: torch.Tensor, rb: torch.Tensor | None) -> torch.Tensor:
            if rb is not None and (steps or entry.wmmse_steps):
                raise MimofmInputError(f"{name} is the maximum-sum-rate mode; use fm for rate targets")
            net.check_input(hb, rb)
            with torch.no_grad():
                w = net(hb.to(torch.complex64), rates=rb, refine_steps=steps).w
            return polished(hb, w, entry.wmmse_steps).to(hb.dtype)

        return PrecoderModule(name, fm, model)
    if entry is not None and entry.num_rf is None:  # papp, papp-refined, papp-csi, papp-hbf, papp-lite
        steps = entry.refine_steps
        student = load_papp(checkpoint, shipped=entry.checkpoint)

        def papp(net: nn.Module, hb: torch.Tensor, rb: torch.Tensor | None) -> torch.Tensor:
            net.check_input(hb)
            with torch.no_grad():
                w = net(hb.to(torch.complex64), refine_steps=steps)
            return polished(hb, w, entry.wmmse_steps).to(hb.dtype)

        return PrecoderModule(name, papp, student, rates_error="papp has no rate-target mode; use fm")
    if checkpoint is not None:
        raise MimofmInputError(
            f"`checkpoint` applies to fm(-refined), papp (-csi, -hbf, -refined) and wifoe, not {name!r}"
        )
    # a classical precoder, or papp-hbf-4 (the shipped papp-hbf served with 4 RF chains)
    table = {name: build_precoder(name)}

    def classical(net: None, hb: torch.Tensor, rb: torch.Tensor | None) -> torch.Tensor:
        return run_precoder(name, hb, table).w

    return PrecoderModule(
        name,
        classical,
        rates_error=f"{name} has no rate-target mode; use fm, or mimofm.precoders.qos_power_min",
    )


def _to_tensor(h: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """``h`` as a torch tensor, and the function that turns a result back into ``h``'s kind (torch on
    ``h``'s device; numpy for numpy arrays and nested lists)."""
    if isinstance(h, torch.Tensor):
        return h, lambda w: w.to(h.device)
    if isinstance(h, (np.ndarray, list, tuple)):
        try:
            a = np.asarray(h)
            if not a.flags.writeable:
                a = a.copy()
            t = torch.from_numpy(a)
        except (ValueError, TypeError):
            raise MimofmInputError(
                "the channel must be a complex torch tensor or numpy array [..., num_ue, num_bs_ant] (nested "
                f"lists of equal lengths); could not read the {type(h).__name__} as one"
            ) from None
        return t, lambda w: w.detach().cpu().numpy()
    return h, lambda w: w  # not an array: _as_batch refuses it


def _as_batch(h: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``h`` ``[..., K, N]`` (``[K, N]`` unbatched, or any number of batch axes) -> (``[B, K, N]``, the
    leading shape ``...``)."""
    if not isinstance(h, torch.Tensor) or not h.is_complex() or h.dim() < 2:
        raise MimofmInputError(
            "the channel must be a complex torch tensor or numpy array [..., num_ue, num_bs_ant], got "
            f"{type(h).__name__} {getattr(h, 'dtype', '')} {list(getattr(h, 'shape', []))}"
        )
    lead = tuple(h.shape[:-2])
    return h.reshape(-1, *h.shape[-2:]), lead  # [..., K, N] -> [B, K, N]


def _check_snr_scaled(hb: torch.Tensor) -> None:
    """Refuse raw channel gains: the median over users of ``‖h_k‖²`` (``hb`` ``[B, K, N]``) is the median
    single-user SNR of an SNR-scaled channel, and far below :data:`RAW_GAIN_THRESHOLD` for path-loss gains."""
    if hb.numel() == 0:
        return
    g = median_gain(hb.reshape(-1, hb.shape[-1]))  # [B, K, N] -> [B·K, N]: the median user's ‖h_k‖²
    if not g >= RAW_GAIN_THRESHOLD:
        raise MimofmInputError(
            f"the channel looks like raw channel gains (median ‖h_k‖² = {g:.3g} < {RAW_GAIN_THRESHOLD:g}); "
            "the API expects an SNR-scaled channel (unit transmit power, unit noise: ‖h_k‖² is user k's "
            "SNR). Scale it with mimofm.core.linkbudget, e.g. "
            "`LinkBudget(noise_dbm=-94).apply(h)` for an absolute budget, or "
            "`LinkBudget().with_snr(10.0, h_positions).apply(h)` for a 10 dB site-median SNR"
        )


def _wifoe(checkpoint: str | None, task: str | None) -> PrecoderModule:
    if not task:
        raise MimofmInputError(
            "wifoe needs `task=` (a branch of the checkpoint, e.g. 'T1'; see `mimofm data tasks`)"
        )
    model = load_wifoe(checkpoint)
    model.branch(task)
    rule = checkpoint_pilot_rule(checkpoint or shipped_checkpoint("wifoe"))

    def wifoe(
        net: nn.Module,
        hb: torch.Tensor,
        rb: torch.Tensor | None,
        generator: torch.Generator | None = None,
        pilot_energy: float | None = None,
        pilot_snr_db: float | None = None,
        snr_db: float | None = None,
    ) -> torch.Tensor:
        """``hb`` SNR-scaled ``[B, K, N_t]`` -> ``W`` ``[B, N_t, K]``. Pilots: ``pilot_energy`` (``E_s``
        itself), or ``pilot_snr_db`` (the pilot SNR at the reference user), or neither: the checkpoint's own
        rule (the shipped model: data SNR + 4 dB; full-energy pilots for a checkpoint without one). The
        reference user's gain is ``10^(snr_db/10)`` (``snr_db``: the received SNR ``h`` was scaled to), else
        the median ‖h_k‖² of this batch — then the pilots depend on the batch, so pass ``snr_db`` when you
        know it."""
        if pilot_energy is not None and pilot_snr_db is not None:
            raise MimofmInputError("give `pilot_snr_db` or `pilot_energy`, not both")
        if pilot_energy is None:
            n = hb.shape[-1]
            if snr_db is not None and not math.isfinite(snr_db):
                raise MimofmInputError(f"`snr_db` must be a finite number of dB, got {snr_db!r}")
            # [B, K, N] -> [users, N] for the median user's gain
            g = 10.0 ** (snr_db / 10.0) if snr_db is not None else median_gain(hb.reshape(-1, n))
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
            return net(hb.to(torch.complex64), task, generator=generator, pilot_energy=pilot_energy).to(
                hb.dtype
            )

    return PrecoderModule("wifoe", wifoe, model, rates_error="wifoe has no rate-target mode; use fm")
