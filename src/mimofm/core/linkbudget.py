"""Link budget: from raw channel gains to the SNR-scaled channel used by all the maths.

Site files keep raw narrowband channel gains (path loss included). A :class:`LinkBudget` turns them
into ``Hs = sqrt(P·L/σ²)·H`` with ``L = 10^(-system_loss_db/10)``; from there everything runs at unit
total power and unit noise (``‖W‖_F² ≤ 1``).

Three SNR conventions are supported and every result records which one it used:

* ``noise_dbm``: an absolute link budget (transmit power, system loss, noise power).
* ``snr_db`` *site-relative* (``relative_to="site-median"``): the noise power is chosen so that the
  median over the site's positions of the single-user SNR ``P_eff·‖h‖²/σ²`` equals ``snr_db``.
* ``snr_db`` *per-antenna* (``relative_to="per-antenna"``, the FDD papers' lineage): the noise power is
  chosen so that the median single-user SNR is ``N_t·snr_db`` (``SNR = P/σ²`` with unit gain per antenna
  at the median position).
* ``snr_db`` *plain* (``relative_to="none"``): ``snr_db = 10·log10(P/σ²)`` for channels that are
  already normalized (e.g. 3GPP models with unit average gain).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from mimofm.core.validation import MimofmInputError, check_positive

# thermal noise over 20 MHz with a 7 dB UE noise figure: -174 + 10·log10(20e6) + 7 ≈ -94 dBm
DEFAULT_NOISE_DBM = -94.0

__all__ = [
    "DEFAULT_NOISE_DBM",
    "FDD_CONVENTIONS",
    "SNR_CONVENTIONS",
    "FDDOperatingPoint",
    "LinkBudget",
    "SNRSpec",
    "dbm_to_w",
    "median_gain",
    "w_to_dbm",
]

SNRConvention = Literal["site-median", "per-antenna", "none"]
SNR_CONVENTIONS = ("site-median", "per-antenna", "none")


def dbm_to_w(dbm: float) -> float:
    """Power in dBm → watts (30 dBm = 1 W)."""
    return 10.0 ** ((dbm - 30.0) / 10.0)


def w_to_dbm(w: float) -> float:
    """Power in watts (> 0) → dBm."""
    check_positive(w, "power_w")
    return 10.0 * math.log10(w) + 30.0


def median_gain(h_positions: torch.Tensor) -> float:
    """Median over positions of ``‖h‖²`` for a site ``[num_positions, num_bs_ant]``."""
    g = (h_positions.real.double().square() + h_positions.imag.double().square()).sum(-1)
    return float(g.median())


@dataclass(frozen=True)
class LinkBudget:
    """Transmit power, system loss and noise power; defaults follow the papers (20 W, 10 dB loss).

    ``noise_dbm`` may be ``None`` until resolved from an SNR target with :meth:`with_snr`.
    """

    tx_power_dbm: float = 43.0103  # 20 W
    system_loss_db: float = 10.0
    noise_dbm: float | None = None

    def __post_init__(self) -> None:
        for name in ("tx_power_dbm", "system_loss_db"):
            if not math.isfinite(getattr(self, name)):
                raise MimofmInputError(f"`{name}` must be finite, got {getattr(self, name)!r}")
        if self.system_loss_db < 0:
            raise MimofmInputError(f"`system_loss_db` must be >= 0 dB, got {self.system_loss_db}")
        if self.noise_dbm is not None and not math.isfinite(self.noise_dbm):
            raise MimofmInputError(f"`noise_dbm` must be finite, got {self.noise_dbm!r}")

    @property
    def effective_tx_power_w(self) -> float:
        """``P_eff = P·L`` in watts (transmit power after system loss)."""
        return dbm_to_w(self.tx_power_dbm - self.system_loss_db)

    @property
    def noise_w(self) -> float:
        """Noise power ``σ²`` in watts; raises if ``noise_dbm`` is not set."""
        if self.noise_dbm is None:
            raise MimofmInputError(
                "this LinkBudget has no `noise_dbm`; give one or resolve it with an SNR target"
            )
        return dbm_to_w(self.noise_dbm)

    def scale(self) -> float:
        """Amplitude factor ``sqrt(P_eff/σ²)`` mapping raw gains to the SNR-scaled channel."""
        return math.sqrt(self.effective_tx_power_w / self.noise_w)

    def apply(self, h: torch.Tensor) -> torch.Tensor:
        """SNR-scaled channel ``Hs = sqrt(P_eff/σ²)·H`` (same shape and dtype as ``h``)."""
        return h * self.scale()

    def with_snr(self, snr_db: float, h_positions: torch.Tensor) -> LinkBudget:
        """Resolve the noise power so that the site-median single-user SNR equals ``snr_db``."""
        g = median_gain(h_positions)
        if not g > 0:
            raise MimofmInputError("the site's median channel gain is zero; cannot set a site-relative SNR")
        noise_w = self.effective_tx_power_w * g / 10.0 ** (snr_db / 10.0)
        return LinkBudget(self.tx_power_dbm, self.system_loss_db, w_to_dbm(noise_w))

    def median_snr_db(self, h_positions: torch.Tensor) -> float:
        """Median single-user SNR ``P_eff·‖h‖²/σ²`` over positions, in dB."""
        return 10.0 * math.log10(self.effective_tx_power_w * median_gain(h_positions) / self.noise_w)

    def to_dict(self) -> dict:
        """The fields as a plain dict (for result JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class SNRSpec:
    """One SNR operating point in one of the conventions of this module.

    Exactly one of ``snr_db`` / ``noise_dbm`` is set. ``relative_to`` says how ``snr_db`` is read.
    """

    snr_db: float | None = None
    noise_dbm: float | None = None
    relative_to: SNRConvention = "site-median"

    def __post_init__(self) -> None:
        if (self.snr_db is None) == (self.noise_dbm is None):
            raise MimofmInputError("give exactly one of `snr_db` or `noise_dbm`")
        if self.relative_to == "received":  # the same reading under its other name
            object.__setattr__(self, "relative_to", "site-median")
        if self.relative_to not in SNR_CONVENTIONS:
            raise MimofmInputError(
                f"unknown `relative_to` {self.relative_to!r}; valid: received (site-median), "
                "per-antenna, none"
            )
        for v, n in ((self.snr_db, "snr_db"), (self.noise_dbm, "noise_dbm")):
            if v is not None and not math.isfinite(v):
                raise MimofmInputError(f"`{n}` must be finite, got {v!r}")

    @property
    def label(self) -> str:
        """Display name of the point, e.g. ``"10 dB"``, ``"10 dB (per antenna)"`` or ``"noise -90 dBm"``."""
        if self.noise_dbm is not None:
            return f"noise {self.noise_dbm:g} dBm"
        return f"{self.snr_db:g} dB" + {"none": " (P/σ²)", "per-antenna": " (per antenna)"}.get(
            self.relative_to, ""
        )

    def scale_for(self, h_positions: torch.Tensor, budget: LinkBudget) -> tuple[float, LinkBudget]:
        """Amplitude scale mapping this site's raw channel to the SNR-scaled one, and the resolved budget.

        For ``relative_to="none"`` the budget's power is ignored: scale = ``sqrt(10^(snr_db/10))``.
        """
        if self.noise_dbm is not None:
            b = LinkBudget(budget.tx_power_dbm, budget.system_loss_db, self.noise_dbm)
            return b.scale(), b
        if self.relative_to in ("site-median", "per-antenna"):
            extra = 10.0 * math.log10(h_positions.shape[-1]) if self.relative_to == "per-antenna" else 0.0
            b = budget.with_snr(self.snr_db + extra, h_positions)
            return b.scale(), b
        return math.sqrt(10.0 ** (self.snr_db / 10.0)), budget


FDDConvention = Literal["received", "per-antenna"]
FDD_CONVENTIONS = ("received", "per-antenna")


@dataclass(frozen=True)
class FDDOperatingPoint:
    """The operating point of an FDD link: the data SNR with its convention, and the pilot SNR.

    Channels are SNR-scaled (unit noise, unit total data power ``P = 1``); ``g = E‖h‖²`` is the
    reference gain of the scaled channel (an average user):

    * ``convention="received"`` (mimofm's default, the beamformed single-user SNR): ``g = SNR``.
    * ``convention="per-antenna"`` (the FDD papers' lineage, ``SNR = P/σ²`` with unit gain per
      antenna): ``g = N_t·SNR``.

    The **pilot SNR** is the SNR at which one full-energy pilot symbol on a non-steered beam reaches
    an average user: with pilot columns of energy ``‖x_ℓ‖² = E_s`` it is ``E_s·g/N_t``. ``pilot_snr_db
    = None`` keeps full-energy pilots, ``E_s = P = 1`` (pilot SNR ``SNR − 10·log10 N_t`` in the received
    convention, ``SNR`` in the per-antenna one); a value sets ``E_s = pilot_snr·N_t/g``.
    """

    snr_db: float
    convention: FDDConvention = "received"
    pilot_snr_db: float | None = None

    def __post_init__(self) -> None:
        if self.convention not in FDD_CONVENTIONS:
            raise MimofmInputError(
                f"unknown SNR convention {self.convention!r}; valid: {', '.join(FDD_CONVENTIONS)}"
            )
        for v, n in ((self.snr_db, "snr_db"), (self.pilot_snr_db, "pilot_snr_db")):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise MimofmInputError(f"`{n}` must be a finite number of dB, got {v!r}")

    def gain(self, num_bs_ant: int) -> float:
        """``g = E‖h‖²`` of the SNR-scaled channel (linear)."""
        snr = 10.0 ** (self.snr_db / 10.0)
        return snr if self.convention == "received" else num_bs_ant * snr

    def channel_scale(self, num_bs_ant: int, mean_gain: float | None = None) -> float:
        """Amplitude factor that brings channels of average gain ``mean_gain`` (default ``N_t``, the
        normalized 3GPP tasks) to ``E‖h‖² = g``."""
        ref = float(num_bs_ant if mean_gain is None else mean_gain)
        if not ref > 0:
            raise MimofmInputError("the channels' reference gain is zero; cannot set an SNR")
        return math.sqrt(self.gain(num_bs_ant) / ref)

    def pilot_energy(self, num_bs_ant: int) -> float:
        """``E_s``, the energy of one pilot column in units of the data power ``P``."""
        if self.pilot_snr_db is None:
            return 1.0
        return 10.0 ** (self.pilot_snr_db / 10.0) * num_bs_ant / self.gain(num_bs_ant)

    def resolved_pilot_snr_db(self, num_bs_ant: int) -> float:
        """The pilot SNR in dB (the stated one, or the one full-energy pilots give)."""
        return 10.0 * math.log10(self.pilot_energy(num_bs_ant) * self.gain(num_bs_ant) / num_bs_ant)

    def to_dict(self, num_bs_ant: int | None = None) -> dict:
        """The point as stated, plus (with ``num_bs_ant``) ``pilot_energy`` and the resolved pilot SNR."""
        d = {"snr_db": self.snr_db, "snr_convention": self.convention, "pilot_snr_db": self.pilot_snr_db}
        if num_bs_ant is not None:
            d |= {
                "pilot_energy": self.pilot_energy(num_bs_ant),
                "resolved_pilot_snr_db": self.resolved_pilot_snr_db(num_bs_ant),
            }
        return d
