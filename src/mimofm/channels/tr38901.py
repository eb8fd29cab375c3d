"""3GPP TR 38.901 multi-configuration channel tasks (UMa / UMi / RMa), generated with Sionna PHY.

The wifoe paper pretrains one model across heterogeneous configurations (its Table I, QuaDRiGa
channels): arrays of 64 to 256 elements (UPA and ULA), 2.4–6.2 GHz, 3–8 users, different pilot
lengths ``L`` and feedback budgets ``B`` (fractions of ``N_t``). mimofm's catalog keeps that
structure, with the same arrays, frequencies and ratios, generated with Sionna's 38.901 system-level
models on a CPU. ``L``, ``B`` and the user range are metadata for the wifoe model: they do not
change the channels (one row per single-antenna UE; multi-user samples of 3–8 users are drawn from
the rows by :mod:`mimofm.channels.sampling`).

======  =====================  ====  =====  =====  =======  ============  ======================
task    BS array (N_t)         L     B      users  f (GHz)  scenario      group
======  =====================  ====  =====  =====  =======  ============  ======================
T1      12×8 UPA (96)          1/3   1/4    3–8    3.7      UMi NLOS      pretrain
T2      12×6 UPA (72)          2/9   2/9    3–8    2.4      UMi NLOS      pretrain
T3      12×8 UPA (96)          1/4   1/6    3–8    4.5      UMi NLOS      pretrain
T4      8×8 UPA (64)           1/8   1/8    3–8    5.9      UMi NLOS      pretrain
T5      16×8 UPA (128)         1/4   1/4    3–8    3.9      RMa NLOS *    pretrain
T6      16×16 UPA (256)        1/4   3/16   3–8    4.9      UMi NLOS      pretrain
T7      1×64 ULA (64)          3/16  3/16   3–8    6.2      RMa LOS       pretrain
T8      12×8 UPA (96)          3/16  1/4    3–8    2.4      UMi mixed *   pretrain
T9      6×12 UPA (72)          1/4   2/9    3–8    3.7      UMi LOS       pretrain
T10     16×8 UPA (128)         3/16  3/16   3–8    3.9      RMa NLOS *    unseen (new L/B ratios)
T11     16×12 UPA (192)        1/4   1/8    3–8    5.1      UMi NLOS      unseen (new array)
T12     12×6 UPA (72)          1/3   1/3    3–8    2.8      UMi NLOS *    unseen (new L/B ratios)
G1      12×8 UPA (96)          1/3   1/4    3–8    3.7      UMa NLOS      domain generalization
G2      12×6 UPA (72)          2/9   2/9    3–8    2.4      UMa NLOS      domain generalization
G3      12×8 UPA (96)          1/4   1/6    3–8    4.5      UMa NLOS      domain generalization
======  =====================  ====  =====  =====  =======  ============  ======================

``*`` differences from the paper's Table I, all made so that the domain-generalization group is a
**scenario never seen in pretraining** (the paper pretrains T5 on UMa NLOS and T8 on UMa LOS, and
then tests "domain generalization" on UMa NLOS): here UMa appears in no pretraining and no unseen
task. T5/T10 (paper: UMa NLOS) use RMa NLOS, T8 (paper: UMa LOS) uses UMi with the 38.901 LOS
probability (the one mixed task), T12 (paper: UMa NLOS) uses UMi NLOS. G1–G3 keep the paper's
UMa NLOS with the arrays/ratios of T1–T3. Other choices: every UE is outdoors (UMa/UMi use the
low-loss O2I model, which then does not apply; RMa UEs are pedestrians, not in cars); the ULA of T7
is horizontal (1 row × 64 columns; the paper writes "64×1"), since users are separated in azimuth.
Arrays are ``rows × cols`` = vertical × horizontal, single-polarized (V), 38.901 element pattern,
λ/2 spacing. Antenna index ``i = col · rows + row`` (Sionna's :class:`PanelArray` order: column by
column, top row first).

Channels
--------
One Sionna drop is one BS at the origin (height per scenario, boresight azimuth 60°, down-tilted to
the sector centre; :func:`sionna.phy.channel.gen_single_sector_topology`) and ``drop_size`` UEs
dropped uniformly in its 120° sector; UEs of a drop share spatially correlated large-scale
parameters. The link is generated **downlink** (BS panel = transmitter, UE omni antenna = receiver),
so Sionna's coefficient ``a[b, ue, 0, 0, t, p, 0]`` is the response of path ``p`` from BS antenna
``t`` to the UE, and the narrowband channel at the carrier (baseband frequency 0, i.e.
``Σ_p a_p e^{-j2π·0·τ_p}``, what ``cir_to_ofdm_channel`` gives at subcarrier 0) is ``Σ_p a_p``.
Row ``n`` of ``h`` is therefore directly the channel from the BS antennas to UE ``n``:
``y_n = h[n] @ x`` (no conjugation, no reciprocity needed). Time sample 0 (no Doppler phase).

Gains: ``normalize=False`` keeps raw gains (path loss, shadow fading, element gain; for
``SNRSpec(relative_to="site-median")`` or an absolute :class:`~mimofm.core.linkbudget.LinkBudget`).
``normalize=True`` is the wifoe/QuaDRiGa convention (``SNR = P/σ²``, ``SNRSpec(relative_to="none")``):
each row is divided by the large-scale gain Sionna applied to it (path loss and shadow fading), so
every channel has the same average gain and keeps its small-scale fading and element-pattern gain,
and the set is then scaled to ``mean ‖h‖² / N_t = 1`` (``E‖h‖² = N_t``). A normalized row is its raw
row times one positive scalar (same draws). ``meta["normalized"]`` records which.

Determinism: positions are generated in chunks of ``CHUNK_POSITIONS``; chunk ``c`` is drawn with
Sionna's generators seeded from ``(seed, task name, c)``, always on the CPU in single precision
(whatever ``sionna.phy.config.device`` says). The same ``(cfg, seed)`` gives identical output, a
longer request extends a shorter one
(raw gains: the first ``n`` rows are the same), and the caller's torch/Sionna RNG states are
restored after the call.

Measured cost per 1000 positions (2-core CPU, Sionna 2.2.0, raw or normalized alike, seed 0):
UMi 64/72/96/192/256 antennas 1.7/1.5/2.1/5.0/6.7 s; UMa 72/96 antennas 1.9/2.5 s; RMa 64/128
antennas 0.9/1.7 s — roughly 25 ms per 1000 positions per antenna, RMa ~40 % less (fewer clusters).
A few hundred positions take a second or two; memory stays small (64 positions per Sionna call).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import torch

from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = ["CHUNK_POSITIONS", "GROUPS", "TASKS", "TaskConfig", "generate_task", "get_task", "tasks"]

SCENARIOS = ("uma", "umi", "rma")
_SCENARIO_NAMES = {"uma": "UMa", "umi": "UMi", "rma": "RMa"}
GROUPS = ("pretrain", "unseen", "domain_generalization")
CHUNK_POSITIONS = 64  # positions per Sionna call; part of the seeding contract (do not change lightly)


def _fraction(value: str, name: str) -> Fraction:
    try:
        f = Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise MimofmInputError(f"`{name}` must be a fraction of N_t like '1/4', got {value!r}") from None
    if not 0 < f <= 1:
        raise MimofmInputError(f"`{name}` must be in (0, 1] (a fraction of N_t), got {value!r}")
    return f


@dataclass(frozen=True)
class TaskConfig:
    """One 3GPP TR 38.901 task (a wifoe "configuration").

    Args:
        name: task name (also mixed into the seeding).
        scenario: ``"uma"``, ``"umi"`` or ``"rma"``.
        los: ``True`` (every UE in LOS), ``False`` (every UE in NLOS) or ``None`` (mixed, the 38.901
            LOS probability of the scenario).
        rows, cols: array geometry, vertical × horizontal elements. A ``"ula"`` is horizontal:
            ``rows`` must be 1 and ``cols`` is ``N_t``.
        array: ``"upa"`` or ``"ula"``.
        frequency_ghz: carrier frequency (0.5–100 GHz, 38.901's range; RMa up to 30 GHz).
        pilot_fraction, feedback_fraction: ``L/N_t`` and ``B/N_t`` as fractions (wifoe metadata).
        min_ue, max_ue: users per multi-user sample (wifoe metadata; ``max_ue ≤ N_t``).
        group: ``"pretrain"``, ``"unseen"`` or ``"domain_generalization"``.
        seed: default seed of :func:`generate_task`.

    Invalid values raise :class:`MimofmInputError` naming the field, at construction.
    """

    name: str
    scenario: Literal["uma", "umi", "rma"]
    los: bool | None
    rows: int
    cols: int
    array: Literal["upa", "ula"] = "upa"
    frequency_ghz: float = 3.5
    pilot_fraction: str = "1/4"
    feedback_fraction: str = "1/4"
    min_ue: int = 3
    max_ue: int = 8
    group: Literal["pretrain", "unseen", "domain_generalization"] = "pretrain"
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_bs_ant(self) -> int:
        """BS antennas ``N_t = rows · cols``."""
        return self.rows * self.cols

    @property
    def pilot_length(self) -> int:
        """``L = round(pilot_fraction · N_t)`` (at least 1)."""
        return max(1, round(Fraction(self.pilot_fraction) * self.num_bs_ant))

    @property
    def feedback_bits(self) -> int:
        """``B = round(feedback_fraction · N_t)`` bits per user (at least 1)."""
        return max(1, round(Fraction(self.feedback_fraction) * self.num_bs_ant))

    @property
    def num_ue_range(self) -> tuple[int, int]:
        """``(min_ue, max_ue)``: the users per multi-user sample, both ends included."""
        return (self.min_ue, self.max_ue)

    @property
    def label(self) -> str:
        """Display name: scenario and LOS condition, e.g. ``"UMi NLOS"``."""
        los = "mixed" if self.los is None else ("LOS" if self.los else "NLOS")
        return f"{_SCENARIO_NAMES[self.scenario]} {los}"

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` naming the first invalid field (called at construction)."""
        if not isinstance(self.name, str) or not self.name:
            raise MimofmInputError(f"`name` must be a non-empty string, got {self.name!r}")
        if self.scenario not in SCENARIOS:
            raise MimofmInputError(f"unknown `scenario` {self.scenario!r}; valid: {', '.join(SCENARIOS)}")
        if self.los not in (True, False, None):
            raise MimofmInputError(f"`los` must be True, False or None (mixed), got {self.los!r}")
        if self.array not in ("upa", "ula"):
            raise MimofmInputError(f"unknown `array` {self.array!r}; valid: upa, ula")
        for f in ("rows", "cols", "min_ue", "max_ue", "seed"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise MimofmInputError(f"`{f}` must be an integer, got {v!r}")
        if self.rows < 1 or self.cols < 1:
            raise MimofmInputError(f"`rows` and `cols` must be >= 1, got rows={self.rows}, cols={self.cols}")
        if self.array == "ula" and self.rows != 1:
            raise MimofmInputError(
                f"`rows` must be 1 for a ULA (a horizontal row of `cols` elements), got "
                f"rows={self.rows}; use array='upa' for a {self.rows}x{self.cols} array"
            )
        if self.num_bs_ant < 2:
            raise MimofmInputError(f"`rows`×`cols` must give at least 2 BS antennas, got {self.num_bs_ant}")
        f = self.frequency_ghz
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0:
            raise MimofmInputError(f"`frequency_ghz` must be a positive number, got {f!r}")
        fmax = 30.0 if self.scenario == "rma" else 100.0
        if not 0.5 <= f <= fmax:
            raise MimofmInputError(
                f"`frequency_ghz` ({f:g}) is outside 38.901's {self.scenario.upper()} range 0.5–{fmax:g} GHz"
            )
        _fraction(self.pilot_fraction, "pilot_fraction")
        _fraction(self.feedback_fraction, "feedback_fraction")
        if not 1 <= self.min_ue <= self.max_ue:
            raise MimofmInputError(
                f"need 1 <= `min_ue` <= `max_ue`, got min_ue={self.min_ue}, max_ue={self.max_ue}"
            )
        if self.max_ue > self.num_bs_ant:
            raise MimofmInputError(
                f"`max_ue` ({self.max_ue}, the largest num_ue) must be <= `num_bs_ant` "
                f"({self.num_bs_ant} = {self.rows}x{self.cols})"
            )
        if self.group not in GROUPS:
            raise MimofmInputError(f"unknown `group` {self.group!r}; valid: {', '.join(GROUPS)}")
        if self.seed < 0:
            raise MimofmInputError(f"`seed` must be >= 0, got {self.seed}")

    def to_dict(self) -> dict:
        """The fields plus the derived ``num_bs_ant``, ``pilot_length`` and ``feedback_bits``."""
        d = asdict(self)
        d.update(num_bs_ant=self.num_bs_ant, pilot_length=self.pilot_length, feedback_bits=self.feedback_bits)
        return d


def _t(name, scenario, los, rows, cols, f, pilot, feedback, group="pretrain", array="upa"):
    return TaskConfig(name, scenario, los, rows, cols, array, f, pilot, feedback, group=group)


_TASKS = [
    # name, scenario, los, rows, cols, f (GHz), L/N_t, B/N_t  (see the module docstring's table)
    _t("T1", "umi", False, 12, 8, 3.7, "1/3", "1/4"),
    _t("T2", "umi", False, 12, 6, 2.4, "2/9", "2/9"),
    _t("T3", "umi", False, 12, 8, 4.5, "1/4", "1/6"),
    _t("T4", "umi", False, 8, 8, 5.9, "1/8", "1/8"),
    _t("T5", "rma", False, 16, 8, 3.9, "1/4", "1/4"),
    _t("T6", "umi", False, 16, 16, 4.9, "1/4", "3/16"),
    _t("T7", "rma", True, 1, 64, 6.2, "3/16", "3/16", array="ula"),
    _t("T8", "umi", None, 12, 8, 2.4, "3/16", "1/4"),
    _t("T9", "umi", True, 6, 12, 3.7, "1/4", "2/9"),
    _t("T10", "rma", False, 16, 8, 3.9, "3/16", "3/16", group="unseen"),
    _t("T11", "umi", False, 16, 12, 5.1, "1/4", "1/8", group="unseen"),
    _t("T12", "umi", False, 12, 6, 2.8, "1/3", "1/3", group="unseen"),
    _t("G1", "uma", False, 12, 8, 3.7, "1/3", "1/4", group="domain_generalization"),
    _t("G2", "uma", False, 12, 6, 2.4, "2/9", "2/9", group="domain_generalization"),
    _t("G3", "uma", False, 12, 8, 4.5, "1/4", "1/6", group="domain_generalization"),
]
TASKS: dict[str, TaskConfig] = {t.name: t for t in _TASKS}


def _check_catalog() -> None:
    pre = {t.scenario for t in _TASKS if t.group == "pretrain"}
    for t in _TASKS:
        if t.group == "domain_generalization" and t.scenario in pre:
            raise RuntimeError(
                f"catalog error: domain-generalization task {t.name} uses pretraining scenario {t.scenario}"
            )


_check_catalog()


def get_task(name: str) -> TaskConfig:
    """The catalog task ``name`` (``T1``…``T12``, ``G1``…``G3``)."""
    if name not in TASKS:
        raise MimofmInputError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def tasks(group: str | None = None) -> list[TaskConfig]:
    """Catalog tasks, optionally of one group (``pretrain``, ``unseen``, ``domain_generalization``)."""
    if group is not None and group not in GROUPS:
        raise MimofmInputError(f"unknown group {group!r}; valid: {', '.join(GROUPS)}")
    return [t for t in _TASKS if group is None or t.group == group]


# ---------------------------------------------------------------------------------------------
# generation


def _chunk_seed(seed: int, name: str, chunk: int) -> int:
    """Seed of chunk ``chunk``: independent streams per (seed, task name, chunk)."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode()), int(chunk)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _model(cfg: TaskConfig):
    # deferred: Sionna, heavy
    from sionna.phy.channel.tr38901 import PanelArray, RMa, UMa, UMi

    fc = cfg.frequency_ghz * 1e9
    common = dict(precision="single", device="cpu")
    bs = PanelArray(
        num_rows_per_panel=cfg.rows,
        num_cols_per_panel=cfg.cols,
        polarization="single",
        polarization_type="V",
        antenna_pattern="38.901",
        carrier_frequency=fc,
        **common,
    )
    ut = PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=1,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni",
        carrier_frequency=fc,
        **common,
    )
    # always with path loss and shadow fading: `enable_pathloss=False` would skip the (random) O2I loss
    # draw and so change every later random number; normalization divides them out afterwards instead
    kw = dict(
        carrier_frequency=fc,
        ut_array=ut,
        bs_array=bs,
        direction="downlink",
        enable_pathloss=True,
        enable_shadow_fading=True,
        **common,
    )
    if cfg.scenario == "rma":
        return RMa(**kw)
    return {"uma": UMa, "umi": UMi}[cfg.scenario](o2i_model="low", **kw)


def _chunk(cfg: TaskConfig, drop_size: int, chunk_seed: int):
    """One chunk of ``CHUNK_POSITIONS`` positions: (h ``[P, N_t]`` complex64 raw, large-scale gain ``[P]``
    (dB: -path loss + shadow fading), los ``[P]``, positions ``[P, 3]``, BS location ``[3]``, BS orientation
    ``[3]``)."""
    from sionna.phy import config  # deferred: Sionna, heavy
    from sionna.phy.channel import gen_single_sector_topology

    config.seed = chunk_seed
    drops = math.ceil(CHUNK_POSITIONS / drop_size)
    # a fresh model per chunk: Sionna refuses set_topology with a new batch shape without reset_topology()
    model = _model(cfg)
    ut_loc, bs_loc, ut_ori, bs_ori, ut_vel, in_state = gen_single_sector_topology(
        batch_size=drops,
        num_ut=drop_size,
        scenario=cfg.scenario,
        indoor_probability=0.0,
        precision="single",
        device="cpu",
    )
    extra = (
        {"in_car": torch.zeros_like(in_state)} if cfg.scenario == "rma" else {}
    )  # pedestrians, no car loss
    model.set_topology(
        ut_loc,
        bs_loc,
        ut_ori,
        bs_ori,
        ut_vel,
        in_state,
        los="random" if cfg.los is None else bool(cfg.los),
        **extra,
    )
    # a: [drops, num_rx=drop_size, rx_ant=1, num_tx=1, tx_ant=N_t, paths, time=1] (downlink: BS transmits)
    a, _tau = model(num_time_samples=1, sampling_frequency=1.0)
    # narrowband at the carrier = sum over paths: [drops, drop_size, N_t]
    h = a[:, :, 0, 0, :, :, 0].sum(dim=-1)
    # Sionna keeps the LOS state on its (private) scenario object: [drops, num_bs=1, drop_size]
    los = model._scenario.los[:, 0, :].clone()
    # the large-scale gain Sionna applied in its step 12, from its (private) LSPs, all [drops, 1, drop_size]:
    # amplitude 10^(-PL/20)·sqrt(SF)
    lsp = model._lsp
    lsg_db = (-lsp.pathloss + 10.0 * torch.log10(lsp.sf))[:, 0, :].double()
    # [drops, drop_size, ...] -> [positions, ...]
    h = h.reshape(-1, cfg.num_bs_ant)[:CHUNK_POSITIONS]
    los = los.reshape(-1)[:CHUNK_POSITIONS]  # [1, P] -> [P]
    lsg_db = lsg_db.reshape(-1)[:CHUNK_POSITIONS]  # [1, P] -> [P]
    pos = ut_loc.reshape(-1, 3)[:CHUNK_POSITIONS]  # [1, P, 3] -> [P, 3]
    return (
        h.to(torch.complex64),
        lsg_db,
        los.bool(),
        pos.double(),
        bs_loc[0, 0].double(),
        bs_ori[0, 0].double(),
    )


def generate_task(
    cfg: TaskConfig,
    num_positions: int,
    seed: int | None = None,
    *,
    normalize: bool = False,
    drop_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> ChannelSet:
    """Generate ``num_positions`` single-antenna UEs of task ``cfg`` with Sionna's 38.901 model.

    Args:
        cfg: the task. num_positions: UE positions (rows). seed: seed (default ``cfg.seed``).
        normalize: ``False``: raw gains (path loss, shadow fading). ``True``: large-scale fading removed
            and the set scaled to ``mean ‖h‖² = N_t`` (wifoe's ``SNR = P/σ²`` convention).
        drop_size: UEs per Sionna drop (UEs of one drop share correlated large-scale parameters).
        progress: optional callback ``(done, total)`` called after every chunk.

    Returns:
        :class:`ChannelSet` with ``h`` complex64 ``[num_positions, N_t]`` (row n: channel from the BS
        antennas to UE n, ``y_n = h[n] @ x``), ``los`` bool ``[num_positions]``, ``positions`` float64
        ``[num_positions, 3]`` (metres, BS at ``meta["bs_position_m"]``), ``meta`` (task config, seed,
        Sionna version, ``normalized``, ``snr_convention_hint``, timing).
    """
    if not isinstance(cfg, TaskConfig):
        raise MimofmInputError(f"`cfg` must be a TaskConfig, got {type(cfg).__name__}")
    cfg.validate()
    seed = cfg.seed if seed is None else seed
    for v, n in ((num_positions, "num_positions"), (seed, "seed"), (drop_size, "drop_size")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise MimofmInputError(f"`{n}` must be an integer, got {v!r}")
    if num_positions < 1:
        raise MimofmInputError(f"`num_positions` must be >= 1, got {num_positions}")
    if seed < 0:
        raise MimofmInputError(f"`seed` must be >= 0, got {seed}")
    if not 1 <= drop_size <= CHUNK_POSITIONS:
        raise MimofmInputError(f"`drop_size` must be in 1..{CHUNK_POSITIONS}, got {drop_size}")

    t0 = time.perf_counter()
    hs, gains, loss, poss = [], [], [], []
    n_chunks = math.ceil(num_positions / CHUNK_POSITIONS)
    # importing Sionna and setting `config.seed` both re-seed torch's default generators: fork_rng
    # restores the caller's torch RNG state on exit
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        import sionna  # deferred: Sionna, heavy
        from sionna.phy import config

        prev_seed = config.seed
        cpu_state = config.torch_rng("cpu").get_state()
        try:
            for c in range(n_chunks):
                h, g, los, pos, bs_pos, bs_ori = _chunk(cfg, drop_size, _chunk_seed(seed, cfg.name, c))
                hs.append(h), gains.append(g), loss.append(los), poss.append(pos)
                if progress is not None:
                    progress(min((c + 1) * CHUNK_POSITIONS, num_positions), num_positions)
        finally:
            config.seed = prev_seed  # (re-seeds torch's default generators too: inside fork_rng)
            config.torch_rng("cpu").set_state(cpu_state)
    h = torch.cat(hs)[:num_positions].contiguous()
    lsg_db = torch.cat(gains)[:num_positions]
    los = torch.cat(loss)[:num_positions].contiguous()
    pos = torch.cat(poss)[:num_positions].contiguous()

    if not bool(torch.isfinite(h).all()):
        raise RuntimeError(f"task {cfg.name}: Sionna produced non-finite channels (seed {seed})")
    zero = ~(h.abs().amax(dim=-1) > 0)
    if bool(zero.any()):
        raise RuntimeError(
            f"task {cfg.name}: Sionna produced {int(zero.sum())} all-zero channels (seed {seed})"
        )
    if cfg.los is not None and not bool((los == cfg.los).all()):
        raise RuntimeError(f"task {cfg.name}: Sionna did not force los={cfg.los} on every UE")
    scale = 1.0
    if normalize:
        # remove each position's large-scale gain (path loss, shadow fading), then one scalar for the
        # set so that the mean over positions of ‖h‖²/N_t is 1
        hn = h.to(torch.complex128) * (10.0 ** (-lsg_db / 20.0))[:, None]  # [P, N_t] * [P, 1]
        scale = float(1.0 / torch.sqrt(hn.abs().square().sum(-1).mean() / cfg.num_bs_ant))
        h = (hn * scale).to(torch.complex64)

    secs = time.perf_counter() - t0
    meta = {
        "generator": "mimofm.channels.tr38901 (Sionna PHY TR 38.901 system-level model, downlink)",
        "task": cfg.to_dict(),
        "scenario": cfg.scenario,
        "los_condition": "mixed" if cfg.los is None else ("los" if cfg.los else "nlos"),
        "frequency_hz": cfg.frequency_ghz * 1e9,
        "array": {
            "type": cfg.array,
            "rows": cfg.rows,
            "cols": cfg.cols,
            "num_bs_ant": cfg.num_bs_ant,
            "spacing_wavelengths": 0.5,
            "polarization": "single V",
            "element_pattern": "38.901",
            "antenna_index": "col * rows + row (Sionna PanelArray order)",
        },
        "ue_antenna": "single omni",
        "indoor": False,
        "pilot_length": cfg.pilot_length,
        "feedback_bits": cfg.feedback_bits,
        "num_ue_range": [cfg.min_ue, cfg.max_ue],
        "bs_position_m": [float(x) for x in bs_pos],
        "bs_orientation_rad": [float(x) for x in bs_ori],
        "drop_size": drop_size,
        "chunk_positions": CHUNK_POSITIONS,
        "sionna_version": getattr(sionna, "__version__", "unknown"),
        "torch_version": torch.__version__,
        "seed": int(seed),
        "normalized": bool(normalize),
        "normalization_scale": scale,
        "gain": (
            "large-scale fading removed, set scaled to mean |h|^2 = num_bs_ant"
            if normalize
            else "raw (path loss, shadow fading, element gain)"
        ),
        "snr_convention_hint": "none" if normalize else "site-median",
        "los_ratio": float(los.float().mean()),
        "seconds": secs,
    }
    return ChannelSet(name=cfg.name, h=h, los=los, positions=pos, meta=meta)
