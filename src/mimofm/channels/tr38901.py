"""3GPP TR 38.901 channel tasks (UMa / UMi / RMa, LOS / NLOS) generated with Sionna PHY.

The wifoe paper pretrains across heterogeneous configurations (its Table I): arrays of 64 to 256
elements (UPA and ULA), 2.4–6.2 GHz, 3–8 users, different pilot lengths ``L`` and feedback budgets
``B`` (fractions of ``N_t``). mimofm's task catalog keeps that structure, with the same arrays and
frequencies; ``L`` and ``B`` are metadata for the wifoe model (they do not change the channels):

| task | array | L | B | users | f (GHz) | scenario | group |
|---|---|---|---|---|---|---|---|
| T1 | 12×8 UPA (96) | 1/3 | 1/4 | 3–8 | 3.7 | UMi NLOS | pretrain |
| T2 | 12×6 UPA (72) | 2/9 | 2/9 | 3–8 | 2.4 | UMi NLOS | pretrain |
| T3 | 12×8 UPA (96) | 1/4 | 1/6 | 3–8 | 4.5 | UMi NLOS | pretrain |
| T4 | 8×8 UPA (64) | 1/8 | 1/8 | 3–8 | 5.9 | UMi NLOS | pretrain |
| T5 | 16×8 UPA (128) | 1/4 | 1/4 | 3–8 | 3.9 | UMa NLOS | pretrain |
| T6 | 16×16 UPA (256) | 1/4 | 3/16 | 3–8 | 4.9 | UMi NLOS | pretrain |
| T7 | 64×1 ULA (64) | 3/16 | 3/16 | 3–8 | 6.2 | RMa LOS | pretrain |
| T8 | 12×8 UPA (96) | 3/16 | 1/4 | 3–8 | 2.4 | UMa LOS | pretrain |
| T9 | 6×12 UPA (72) | 1/4 | 2/9 | 3–8 | 3.7 | UMi LOS | pretrain |
| T10 | 16×8 UPA (128) | 3/16 | 3/16 | 3–8 | 3.9 | UMa NLOS | unseen (new pilot/feedback ratio) |
| T11 | 16×12 UPA (192) | 1/4 | 1/8 | 3–8 | 5.1 | UMi NLOS | unseen (new array) |
| T12 | 12×6 UPA (72) | 1/3 | 1/3 | 3–8 | 2.8 | UMa NLOS | unseen (new ratios) |
| G1–G3 | as T1–T3 | | | 3–8 | as T1–T3 | UMa NLOS | domain generalization |

Difference from the paper: T1–T3 pretrain on UMi NLOS only (the paper mixes UMa/UMi), so that the
domain-generalization group G1–G3 (UMa NLOS, same arrays) is a scenario-and-array pair never seen in
pretraining. Every user is outdoors; UMa/UMi use the low-loss O2I model.

Channels: Sionna's system-level 38.901 model (downlink: the BS panel transmits, each UE has one omni
antenna), one drop of ``drop_size`` UEs per batch element in a single 120° sector, path loss and
shadow fading on. The narrowband channel at the carrier is the sum of the path coefficients; row ``n``
of ``h`` is the channel from the BS antennas to UE ``n`` (``y_n = h[n] @ x``). With
``normalize=True`` the whole set is scaled to unit mean gain per antenna (``E‖h‖² = N_t``), the
wifoe convention for ``SNR = P/σ²`` (``mimofm eval --snr-convention none``).
Measured CPU cost (2 cores, shared): about 1 s per 100 positions for a 64-element array.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import torch

from mimofm.channels.io import ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = ["TaskConfig", "TASKS", "get_task", "generate_task"]


@dataclass(frozen=True)
class TaskConfig:
    name: str
    scenario: Literal["uma", "umi", "rma"]
    los: bool | None  # None: the 38.901 LOS probability
    rows: int
    cols: int
    array: Literal["upa", "ula"] = "upa"
    frequency_ghz: float = 3.5
    pilot_fraction: str = "1/4"
    feedback_fraction: str = "1/4"
    min_ue: int = 3
    max_ue: int = 8
    group: Literal["pretrain", "unseen", "domain_generalization"] = "pretrain"

    @property
    def num_bs_ant(self) -> int:
        return self.rows * self.cols

    @property
    def pilot_length(self) -> int:
        return int(Fraction(self.pilot_fraction) * self.num_bs_ant)

    @property
    def feedback_bits(self) -> int:
        return int(Fraction(self.feedback_fraction) * self.num_bs_ant)

    def validate(self) -> None:
        if self.scenario not in ("uma", "umi", "rma"):
            raise MimofmInputError(f"unknown `scenario` {self.scenario!r}; valid: uma, umi, rma")
        if self.array not in ("upa", "ula"):
            raise MimofmInputError(f"unknown `array` {self.array!r}; valid: upa, ula")
        if self.array == "ula" and self.cols != 1:
            raise MimofmInputError(f"a ULA has one column (`rows` elements), got cols={self.cols}")
        if self.rows < 1 or self.cols < 1:
            raise MimofmInputError(f"`rows` and `cols` must be >= 1, got {self.rows}x{self.cols}")
        if not (self.frequency_ghz > 0 and math.isfinite(self.frequency_ghz)):
            raise MimofmInputError(f"`frequency_ghz` must be > 0, got {self.frequency_ghz}")
        if not 1 <= self.min_ue <= self.max_ue:
            raise MimofmInputError(f"need 1 <= `min_ue` <= `max_ue`, got {self.min_ue}, {self.max_ue}")
        if self.max_ue > self.num_bs_ant:
            raise MimofmInputError(f"`max_ue` ({self.max_ue}) must be <= `num_bs_ant` ({self.num_bs_ant})")
        for f in (self.pilot_fraction, self.feedback_fraction):
            try:
                if Fraction(f) <= 0:
                    raise ValueError
            except (ValueError, ZeroDivisionError):
                raise MimofmInputError(f"pilot/feedback fractions must be positive fractions like '1/4', got {f!r}") from None


def _t(name, scenario, los, rows, cols, f, l, b, group="pretrain", array="upa"):  # noqa: E741
    return TaskConfig(name, scenario, los, rows, cols, array, f, l, b, group=group)


_TASKS = [
    _t("T1", "umi", False, 12, 8, 3.7, "1/3", "1/4"),
    _t("T2", "umi", False, 12, 6, 2.4, "2/9", "2/9"),
    _t("T3", "umi", False, 12, 8, 4.5, "1/4", "1/6"),
    _t("T4", "umi", False, 8, 8, 5.9, "1/8", "1/8"),
    _t("T5", "uma", False, 16, 8, 3.9, "1/4", "1/4"),
    _t("T6", "umi", False, 16, 16, 4.9, "1/4", "3/16"),
    _t("T7", "rma", True, 64, 1, 6.2, "3/16", "3/16", array="ula"),
    _t("T8", "uma", True, 12, 8, 2.4, "3/16", "1/4"),
    _t("T9", "umi", True, 6, 12, 3.7, "1/4", "2/9"),
    _t("T10", "uma", False, 16, 8, 3.9, "3/16", "3/16", group="unseen"),
    _t("T11", "umi", False, 16, 12, 5.1, "1/4", "1/8", group="unseen"),
    _t("T12", "uma", False, 12, 6, 2.8, "1/3", "1/3", group="unseen"),
    _t("G1", "uma", False, 12, 8, 3.7, "1/3", "1/4", group="domain_generalization"),
    _t("G2", "uma", False, 12, 6, 2.4, "2/9", "2/9", group="domain_generalization"),
    _t("G3", "uma", False, 12, 8, 4.5, "1/4", "1/6", group="domain_generalization"),
]
TASKS: dict[str, TaskConfig] = {t.name: t for t in _TASKS}
for _task in _TASKS:
    _task.validate()


def get_task(name: str) -> TaskConfig:
    if name not in TASKS:
        raise MimofmInputError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def generate_task(cfg: TaskConfig, num_positions: int, seed: int = 0, *, normalize: bool = False,
                  drop_size: int = 8) -> ChannelSet:
    """``num_positions`` single-antenna UEs of task ``cfg``: ``h`` complex64 ``[num_positions, N_t]``.

    Deterministic in ``seed`` (Sionna's global seed is set for the call).
    """
    cfg.validate()
    if num_positions < 1:
        raise MimofmInputError(f"`positions` must be >= 1, got {num_positions}")
    from sionna.phy import config
    from sionna.phy.channel import gen_single_sector_topology
    from sionna.phy.channel.tr38901 import RMa, UMa, UMi, PanelArray
    import sionna

    t0 = time.perf_counter()
    config.seed = seed
    fc = cfg.frequency_ghz * 1e9
    bs = PanelArray(num_rows_per_panel=cfg.rows, num_cols_per_panel=cfg.cols, polarization="single",
                    polarization_type="V", antenna_pattern="38.901", carrier_frequency=fc)
    ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single", polarization_type="V",
                    antenna_pattern="omni", carrier_frequency=fc)
    kw = dict(carrier_frequency=fc, ut_array=ut, bs_array=bs, direction="downlink")
    model = {"uma": UMa, "umi": UMi, "rma": RMa}[cfg.scenario](**kw, **({} if cfg.scenario == "rma" else {"o2i_model": "low"}))
    drops = math.ceil(num_positions / drop_size)
    topo = gen_single_sector_topology(batch_size=drops, num_ut=drop_size, scenario=cfg.scenario, indoor_probability=0.0)
    model.set_topology(*topo, los=cfg.los)
    a, _ = model(num_time_samples=1, sampling_frequency=1.0)  # [drops, ue, 1, 1, N_t, paths, 1]
    h = a[:, :, 0, 0, :, :, 0].sum(-1)  # narrowband at the carrier: [drops, ue, N_t]
    los = model._scenario.los[:, 0, :] if cfg.los is None else torch.full(h.shape[:2], bool(cfg.los))
    pos = topo[0]  # [drops, ue, 3]
    # [drops, ue, ...] -> [positions, ...]
    h = h.reshape(-1, cfg.num_bs_ant)[:num_positions].to(torch.complex64)
    los = los.reshape(-1)[:num_positions].bool()
    pos = pos.reshape(-1, 3)[:num_positions].double()
    if not bool(torch.isfinite(h).all()):
        raise RuntimeError(f"task {cfg.name}: Sionna produced non-finite channels")
    keep = h.abs().amax(-1) > 0
    h, los, pos = h[keep], los[keep], pos[keep]
    if normalize:
        h = h / torch.sqrt(h.abs().square().sum(-1).mean() / cfg.num_bs_ant)
    meta = {"generator": "mimofm.channels.tr38901 (Sionna PHY 38.901 system-level model)",
            "task": asdict(cfg), "pilot_length": cfg.pilot_length, "feedback_bits": cfg.feedback_bits,
            "sionna_version": getattr(sionna, "__version__", "unknown"), "seed": seed, "normalized": normalize,
            "snr_convention_hint": "none" if normalize else "site-median",
            "seconds": time.perf_counter() - t0}
    return ChannelSet(name=cfg.name, h=h, los=los, positions=pos, meta=meta)
