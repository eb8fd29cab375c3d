"""End-to-end evaluation of wifoe models on the 3GPP tasks' held-out (test) drops.

Every number is a mean sum rate (bit/s/Hz) over user counts ``K = 3..8`` (``samples`` multi-user
samples per ``K``, drawn with seed ``(seed, task, K)`` from the task's **test** positions), at
an :class:`~mimofm.core.linkbudget.FDDOperatingPoint`: the data SNR in its convention (``received`` by
default: ``E‖h‖² = SNR``; ``per-antenna``: ``E‖h‖² = N_t·SNR``) and the pilot SNR (default: full-energy
pilots). A wifoe model's rate includes everything of the FDD pipeline: its pilots with noise (seeded), its
B-bit feedback, its precoder. ZF and WMMSE (perfect CSI at the BS, ``paper`` setting) precode the very
same channel draws (upper references).
"""

from __future__ import annotations

import math
import zlib

import torch

from mimofm.adaptation.wifoe import checkpoint_recipe
from mimofm.channels.tasks import DEFAULT_POSITIONS, TaskCache, draw_task_samples, load_task, snr_scale
from mimofm.channels.tr38901 import TASKS, get_task
from mimofm.channels.types import TaskData
from mimofm.core.linkbudget import FDDOperatingPoint, median_gain
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.models.wifoe import TaskShape, WiFoE
from mimofm.precoders.codebook import codebook_feedback_channel, type1_bits
from mimofm.precoders.linear import rzf, zf
from mimofm.precoders.registry import PrecoderOutput, PrecoderSpec
from mimofm.precoders.wmmse import wmmse

__all__ = [
    "checkpoint_pilot_rule",
    "checkpoint_positions",
    "checkpoint_snrs",
    "classical_rates",
    "codebook_rate",
    "cqi_bits_for",
    "evaluate_wifoe",
    "fallback_branches",
    "file_pilot_energy",
    "lmmse_wmmse_rate",
    "pick_branch",
    "pick_data_branch",
    "rule_pilot_snr",
    "task_draws",
    "wifoe_rate",
    "wifoe_spec",
]


def checkpoint_positions(stem) -> int:
    """The task-data size a wifoe checkpoint was trained on (its recipe's ``positions``): the test drops
    depend on it."""
    return checkpoint_recipe(str(stem)).get("positions", DEFAULT_POSITIONS)


def _task_data(task: str, positions: int, task_cache: TaskCache | None) -> TaskData:
    """The task's positions, from ``task_cache`` when the caller holds one, else read from the task file."""
    return load_task(task, positions) if task_cache is None else task_cache.load(task, positions)


def task_draws(
    task: str,
    snr_db: float,
    samples: int = 200,
    seed: int = 0,
    split: str = "test",
    positions: int = DEFAULT_POSITIONS,
    convention: str = "received",
    task_cache: TaskCache | None = None,
) -> list[torch.Tensor]:
    """One ``[samples, K, N_t]`` draw per ``K`` of the task's range, SNR-scaled (``snr_db`` read in
    ``convention``). The users drawn do not depend on the SNR or its convention. ``task_cache``: the
    caller's loaded task data (None: read from the task file)."""
    cfg = get_task(task)
    pos = _task_data(task, positions, task_cache).split(split)
    base = zlib.crc32(task.encode())
    return [
        draw_task_samples(pos, samples, k, seed * 1_000_003 + base + k, snr_db, convention)
        for k in range(cfg.min_ue, cfg.max_ue + 1)
    ]


def _mean_rate(draws: list[torch.Tensor], precode) -> float:
    rates = [
        float(sum_rate(h.to(torch.complex128), precode(h, i).to(torch.complex128)).mean())
        for i, h in enumerate(draws)
    ]
    return sum(rates) / len(rates)


@torch.no_grad()
def wifoe_rate(
    model,
    task: str,
    draws: list[torch.Tensor],
    branch: str | None = None,
    seed: int = 0,
    pilot_energy: float = 1.0,
) -> float:
    """End-to-end mean sum rate of ``model``'s branch ``branch`` (default: ``task``) on ``draws``, pilots
    sent with energy ``pilot_energy`` (``E_s``, :meth:`FDDOperatingPoint.pilot_energy`)."""
    was = model.training
    model.eval()
    name = branch or task
    try:
        return _mean_rate(
            draws,
            lambda h, i: model(
                h, name, generator=torch.Generator().manual_seed(seed * 97 + i), pilot_energy=pilot_energy
            ),
        )
    finally:
        model.train(was)


def classical_rates(
    task: str,
    snr_db: float,
    samples: int = 200,
    seed: int = 0,
    positions: int = DEFAULT_POSITIONS,
    convention: str = "received",
    task_cache: TaskCache | None = None,
) -> dict[str, float]:
    """ZF and WMMSE mean sum rates with perfect CSI on :func:`task_draws`, kept in ``task_cache`` (when
    given) for the caller's later calls with the same arguments."""
    key = ("classical_rates", task, snr_db, samples, seed, positions, convention)
    if task_cache is not None and key in task_cache.results:
        return dict(task_cache.results[key])
    draws = task_draws(
        task, snr_db, samples, seed, positions=positions, convention=convention, task_cache=task_cache
    )
    rates = {"zf": _mean_rate(draws, lambda h, i: zf(h)), "wmmse": _mean_rate(draws, lambda h, i: wmmse(h).w)}
    if task_cache is not None:
        task_cache.results[key] = rates
    return dict(rates)


def _lmmse_estimator(
    task: str,
    snr_db: float,
    positions: int,
    convention: str,
    pilot_snr_db: float | None,
    seed: int,
    task_cache: TaskCache | None = None,
):
    """The users' side of a classical FDD chain: ``L`` random Gaussian pilots of energy ``E_s``, LMMSE
    estimates
    with the channel covariance of the task's train positions. Returns ``estimate(h [B, K, N]) -> ĥ`` (seeded
    pilot noise, complex128).

    With column vectors ``g = hᵀ``: ``yᵀ = Xᵀ g + zᵀ``, ``ĝ = C X* (Xᵀ C X* + I)⁻¹ yᵀ``, ``C = E[g gᴴ]``.
    """
    cfg = get_task(task)
    n, L = cfg.num_bs_ant, cfg.pilot_length
    e_s = FDDOperatingPoint(snr_db, convention, pilot_snr_db).pilot_energy(n)
    train = _task_data(task, positions, task_cache).train.to(torch.complex128)
    train = train * snr_scale(snr_db, n, convention)
    c = train.T @ train.conj() / train.shape[0]  # E[g g^H], [N, N]
    g = torch.Generator().manual_seed(seed)
    x = torch.complex(*torch.randn(2, n, L, generator=g, dtype=torch.float64))
    x = x / x.norm(dim=0, keepdim=True) * e_s**0.5
    gain = c @ x.conj() @ torch.linalg.inv(x.T @ c @ x.conj() + torch.eye(L, dtype=c.dtype))  # [N, L]

    def estimate(h: torch.Tensor) -> torch.Tensor:
        z = torch.complex(*torch.randn(2, *h.shape[:2], L, generator=g, dtype=torch.float64)) * 0.5**0.5
        y = h.to(torch.complex128) @ x + z  # [B, K, L]
        return y @ gain.T  # ĥ = (gain yᵀ)ᵀ = y gainᵀ

    return estimate


def lmmse_wmmse_rate(
    task: str,
    snr_db: float,
    samples: int = 200,
    seed: int = 0,
    positions: int = DEFAULT_POSITIONS,
    convention: str = "received",
    pilot_snr_db: float | None = None,
    task_cache: TaskCache | None = None,
) -> float:
    """A classical FDD reference with the task's pilot budget and **unquantized** feedback: the LMMSE estimate
    of :func:`_lmmse_estimator` fed back as is, WMMSE on the estimates, rates on the true channels. It shows
    what the pilots alone cost (the learned schemes also pay for B-bit feedback). ``pilot_snr_db``: as in
    :class:`~mimofm.core.linkbudget.FDDOperatingPoint` (default: full-energy pilots).
    """
    task_cache = TaskCache() if task_cache is None else task_cache  # the estimator and the draws: one read
    estimate = _lmmse_estimator(task, snr_db, positions, convention, pilot_snr_db, seed, task_cache)
    return _mean_rate(
        task_draws(
            task, snr_db, samples, seed, positions=positions, convention=convention, task_cache=task_cache
        ),
        lambda h, i: wmmse(estimate(h)).w,
    )


def cqi_bits_for(rows: int, cols: int, bits: int) -> int:
    """The most CQI bits (4 down to 0) that leave room for a Type I report in a budget of ``bits``."""
    return max(0, min(4, bits - type1_bits(rows, cols, 1, 1)))


def codebook_rate(
    task: str,
    snr_db: float,
    kind: str = "type1",
    precoder: str = "wmmse",
    samples: int = 200,
    seed: int = 0,
    positions: int = DEFAULT_POSITIONS,
    convention: str = "received",
    pilot_snr_db: float | None = None,
    perfect_ue_csi: bool = False,
    task_cache: TaskCache | None = None,
) -> float:
    """5G NR codebook feedback at **equal bits**: each user estimates its channel from the task's ``L`` pilots
    (LMMSE, as :func:`lmmse_wmmse_rate`; ``perfect_ue_csi``: the true channel instead), reports a TS 38.214
    Type I or Type II PMI plus a wideband CQI within the task's ``B`` bits
    (:func:`mimofm.precoders.codebook.fit_to_bits`), and the BS precodes the rebuilt channels with ``zf``,
    ``rzf`` or ``wmmse``. Rates on the true channels."""
    cfg = get_task(task)
    if precoder not in ("zf", "rzf", "wmmse"):
        raise MimofmInputError(f"`precoder` must be zf, rzf or wmmse, got {precoder!r}")
    rows, cols, bits = cfg.rows, cfg.cols, cfg.feedback_bits
    cqi = cqi_bits_for(rows, cols, bits)
    g_db = 10 * math.log10(FDDOperatingPoint(snr_db, convention).gain(cfg.num_bs_ant))
    task_cache = TaskCache() if task_cache is None else task_cache  # the estimator and the draws: one read
    estimate = _lmmse_estimator(task, snr_db, positions, convention, pilot_snr_db, seed, task_cache)
    bs = {"zf": zf, "rzf": rzf, "wmmse": lambda hh: wmmse(hh).w}[precoder]

    def precode(h, i):
        seen = h.to(torch.complex128) if perfect_ue_csi else estimate(h)
        fb = codebook_feedback_channel(seen, rows, cols, bits, kind, cqi, (g_db - 25.0, g_db + 10.0))
        return bs(fb)

    draws = task_draws(
        task, snr_db, samples, seed, positions=positions, convention=convention, task_cache=task_cache
    )
    return _mean_rate(draws, precode)


def evaluate_wifoe(
    model,
    tasks: list[str],
    snrs_db: list[float],
    samples: int = 200,
    seed: int = 0,
    branches: dict[str, str] | None = None,
    progress=None,
    positions: int = DEFAULT_POSITIONS,
    convention: str = "received",
    pilot_snr_db: float | None = None,
    pilot_snr_offset_db: float | None = None,
    offset_convention: str = "received",
    task_cache: TaskCache | None = None,
) -> list[dict]:
    """Rows ``{task, branch, snr_db, snr_convention, pilot_snr_db, pilot_energy, resolved_pilot_snr_db,
    rate, zf, wmmse, ratio_to_wmmse}`` for every task and SNR.

    ``branches`` maps an evaluated task to the model branch that precodes it (zero-shot transfer, e.g.
    ``{"G1": "T1"}``); default: the task's own branch. ``positions``: the task data's size (the
    recipe's ``positions``; the test drops depend on it). ``convention`` and ``pilot_snr_db`` (fixed) or
    ``pilot_snr_offset_db`` (pilot SNR = the data SNR read in ``offset_convention`` + offset, as the
    checkpoint was trained): the operating point
    (:class:`~mimofm.core.linkbudget.FDDOperatingPoint`; defaults: received SNR, full-energy pilots).
    ``task_cache``: the caller's loaded task data (None: each task is read once for this call).
    """
    task_cache = TaskCache() if task_cache is None else task_cache
    rows = []
    for t in tasks:
        br = (branches or {}).get(t, t)
        for s in snrs_db:
            if progress:
                progress(f"{t} @ {s:g} dB")
            n = get_task(t).num_bs_ant
            received = s + (10.0 * math.log10(n) if convention == "per-antenna" else 0.0)
            pilot = rule_pilot_snr((pilot_snr_db, pilot_snr_offset_db, offset_convention), received, n)
            op = FDDOperatingPoint(s, convention, pilot)
            draws = task_draws(
                t, s, samples, seed, positions=positions, convention=convention, task_cache=task_cache
            )
            r = wifoe_rate(model, t, draws, br, seed, pilot_energy=op.pilot_energy(n))
            ref = classical_rates(t, s, samples, seed, positions, convention, task_cache)
            rows.append(
                {
                    "task": t,
                    "branch": br,
                    **op.to_dict(n),
                    "rate": r,
                    **ref,
                    "ratio_to_wmmse": r / ref["wmmse"],
                }
            )
    return rows


# -- wifoe on a user's channel file ----------------------------------------------------------------
def pick_branch(
    model, num_bs_ant: int, task: str | None = None, array: tuple[int, int] | None = None
) -> tuple[str, str]:
    """The branch of ``model`` that serves channels with ``num_bs_ant`` antennas, and why it was chosen.

    ``task`` given: that branch (its ``N_t`` must match). Otherwise the branches with ``N_t = num_bs_ant``:
    a catalog task with the file's ``array`` (rows, cols) first, then the most feedback bits, the longest
    pilots, the name. No match: an error that names the branches and ``mimofm adapt wifoe``.
    """
    if task is not None:
        br = model.branch(task)
        if br.shape.num_bs_ant != num_bs_ant:
            raise MimofmInputError(
                f"task {task} has N_t = {br.shape.num_bs_ant}, the channel file has {num_bs_ant} "
                "antennas; drop --task to pick a matching one"
            )
        return task, f"{task} (given)"
    same = [b for b, br in model.branches.items() if br.shape.num_bs_ant == num_bs_ant]
    if not same:
        have = ", ".join(f"{b} (N_t {br.shape.num_bs_ant})" for b, br in model.branches.items())
        raise MimofmInputError(
            f"the wifoe model has no branch for {num_bs_ant} antennas; it has {have}. Train one "
            "for your array with `mimofm adapt wifoe --task NAME` (a catalog task of that size, "
            "see `mimofm data tasks`)"
        )

    def geometry(b: str) -> int:  # 0: the catalog task's array is the file's
        return 0 if array is not None and b in TASKS and (TASKS[b].rows, TASKS[b].cols) == tuple(array) else 1

    same.sort(
        key=lambda b: (
            geometry(b),
            -model.branches[b].shape.feedback_bits,
            -model.branches[b].shape.pilot_length,
            b,
        )
    )
    sh = model.branches[same[0]].shape
    why = (
        f"{same[0]} (N_t {num_bs_ant}, L {sh.pilot_length}, B {sh.feedback_bits}"
        + (", the file's array" if geometry(same[0]) == 0 else "")
        + f"; picked from {', '.join(same)})"
    )
    return same[0], why


def pick_data_branch(model: WiFoE, num_bs_ant: int, meta: dict, task: str | None = None) -> tuple[str, str]:
    """:func:`pick_branch` for a channel file: its array ``(rows, cols)`` is read from the file's ``meta``
    (ray-traced sites keep it in ``meta["settings"]``, 3GPP task files in ``meta["array"]``; absent: not
    said). Returns the branch and why it was chosen."""
    meta = meta if isinstance(meta, dict) else {}
    geo = next(
        (g for g in (meta.get("settings"), meta.get("array")) if isinstance(g, dict) and "rows" in g), None
    )
    array = (int(geo["rows"]), int(geo["cols"])) if geo is not None else None
    return pick_branch(model, num_bs_ant, task, array)


def fallback_branches(model: WiFoE, tasks: list[str]) -> dict[str, str]:
    """For each task of ``tasks`` without a branch of its own in ``model``: the first pretraining branch of
    the same shape (``N_t``, pilot length ``L``, feedback bits ``B``), which serves it zero-shot. Raises
    for a task with neither (fine-tune one with ``mimofm adapt wifoe``). ``{task: branch}``."""
    branches = {}
    for t in tasks:
        if t in model.branches:
            continue
        shape = TaskShape.of(t)
        same = [
            b
            for b, br in model.branches.items()
            if (br.shape.num_bs_ant, br.shape.pilot_length, br.shape.feedback_bits)
            == (shape.num_bs_ant, shape.pilot_length, shape.feedback_bits)
        ]
        if not same:
            raise MimofmInputError(
                f"the wifoe model has no branch for {t} and none of the same shape; "
                f"fine-tune one: mimofm adapt wifoe --task {t}"
            )
        branches[t] = same[0]
    return branches


def checkpoint_pilot_rule(stem) -> tuple[float | None, float | None, str]:
    """``(pilot_snr_db, pilot_snr_offset_db, snr_convention)`` a wifoe checkpoint was trained with
    (``(None, None, ·)``: full-energy pilots): what evaluation uses when no pilot SNR is stated. The offset is
    added to the data SNR read in ``snr_convention`` (:func:`rule_pilot_snr`)."""
    rec = checkpoint_recipe(str(stem))
    return rec.get("pilot_snr_db"), rec.get("pilot_snr_offset_db"), rec.get("snr_convention", "received")


def rule_pilot_snr(
    rule: tuple[float | None, float | None, str], received_snr_db: float | None, num_bs_ant: int
) -> float | None:
    """The pilot SNR a checkpoint's ``rule`` (:func:`checkpoint_pilot_rule`) gives at a data point whose
    *received* (beamformed) SNR is ``received_snr_db``: the fixed value, or the data SNR in the rule's own
    convention plus the offset (``None``: full-energy pilots, or an offset rule without a data SNR)."""
    fixed, offset, conv = rule
    if offset is None or received_snr_db is None:
        return fixed
    base = received_snr_db - (10.0 * math.log10(num_bs_ant) if conv == "per-antenna" else 0.0)
    return base + offset


def checkpoint_snrs(stem) -> tuple[list[float], str]:
    """Three data SNRs that span a wifoe checkpoint's training grid (lowest, its evaluation SNR, highest) and
    the
    convention they are read in: ``[0, 10, 20]`` received for the historical checkpoint."""
    rec = checkpoint_recipe(str(stem))
    grid = rec.get("snr_grid_db") or [0.0, 10.0, 20.0]
    mid = rec.get("eval_snr_db", 10.0)
    return sorted({float(min(grid)), float(mid), float(max(grid))}), rec.get("snr_convention", "received")


def file_pilot_energy(pilot_snr_db: float | None, hs_positions: torch.Tensor) -> float:
    """``E_s`` for a channel file: the pilot SNR is reached at the median position's gain of the SNR-scaled
    channel ``hs_positions`` ``[P, N_t]`` (``None``: full-energy pilots, ``E_s = 1``)."""
    if pilot_snr_db is None:
        return 1.0
    g = median_gain(hs_positions)
    if not (g > 0 and math.isfinite(pilot_snr_db)):
        raise MimofmInputError(
            f"a pilot SNR needs a finite `pilot_snr_db` ({pilot_snr_db!r}) and channels whose "
            "median gain is positive"
        )
    return 10.0 ** (pilot_snr_db / 10.0) * hs_positions.shape[-1] / g


def wifoe_spec(model, branch: str, pilot_energy: float, seed: int = 0):
    """A :class:`~mimofm.precoders.registry.PrecoderSpec` named ``wifoe`` that runs ``model``'s ``branch``
    end to end (pilots with seeded noise, B-bit feedback, BS) on SNR-scaled channels ``[S, K, N_t]``."""
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def run(h: torch.Tensor) -> PrecoderOutput:
        model.eval()
        w = model(h.to(torch.complex64), branch, generator=gen, pilot_energy=pilot_energy)
        return PrecoderOutput(w=w, sum_rate=sum_rate(h.to(torch.complex128), w.to(torch.complex128)))

    return PrecoderSpec("wifoe", "precoder", run, f"wifoe end to end, branch {branch}")
