"""Paired evaluation of precoders and bounds on channel files over SNR points.

For every site the multi-user samples are drawn once from the seed and reused by every precoder at
every SNR point (a paired comparison). Sum rates are recomputed here from each precoder's ``W`` with
:func:`mimofm.core.rates.sum_rate`, never taken from the precoder's own report; bounds (DPC) report
a sum rate directly, and any precoder exceeding the DPC bound on a sample is counted and flagged.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from mimofm.channels.denoise import array_shape, beamspace_denoise
from mimofm.channels.io import load_channels
from mimofm.channels.sampling import candidate_positions, draw_user_sets, gather_users, imperfect_csi
from mimofm.channels.types import ChannelSet
from mimofm.core.linkbudget import LinkBudget, SNRSpec, median_gain
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.steps import StepCallback, StepCounter
from mimofm.evaluation.wifoe_eval import (
    checkpoint_pilot_rule,
    file_pilot_energy,
    pick_data_branch,
    rule_pilot_snr,
    wifoe_spec,
)
from mimofm.models.zoo import (
    NEURAL,
    NEURAL_CHECKPOINTS,
    build_precoders,
    check_precoder_names,
    load_wifoe,
    shipped_checkpoint,
)
from mimofm.precoders.registry import CLASSICAL, PrecoderSpec

__all__ = [
    "EvalConfig",
    "assign_checkpoint",
    "compare_checkpoints",
    "evaluate",
    "evaluate_sets",
    "evaluate_variants",
    "load_sets",
    "machine_info",
    "sample_users",
    "summarize_ci",
]


@dataclass
class EvalConfig:
    """Everything that determines an evaluation's numbers (saved in the result JSON).

    ``precoders``: registry names (``mimofm precoders``) and bounds; ``data``: channel files (what
    :func:`evaluate` loads; :func:`evaluate_sets` takes loaded sets). The SNR points: ``snr_db`` (dB, in
    ``snr_convention``: ``site-median``, ``per-antenna`` or ``none``) or ``noise_dbm`` (dBm, with
    ``tx_power_dbm`` in dBm and ``system_loss_db`` in dB: the :class:`~mimofm.core.linkbudget.LinkBudget`).
    ``num_ue`` users per sample, ``[samples, num_ue, num_bs_ant]`` drawn with ``seed`` from the
    ``positions`` split and run ``chunk`` samples at a time; the other fields are commented in the source.
    """

    precoders: list[str]
    data: list[str] = field(default_factory=list)
    snr_db: list[float] | None = None
    noise_dbm: list[float] | None = None
    snr_convention: str = "site-median"
    tx_power_dbm: float = 43.0103
    system_loss_db: float = 10.0
    num_ue: int = 4
    samples: int = 1000
    seed: int = 0
    chunk: int = 250
    positions: str = "all"  # all | train | val | test: which position split the users come from
    csi_nmse_db: float | None = None  # precoders see Ĥ = H + E with this NMSE; rates are measured on H
    csi_denoise: bool = (
        False  # Ĥ passes the beamspace denoiser (mimofm.channels.denoise) before every precoder
    )
    pilot_snr_db: float | None = None  # wifoe: pilot SNR at the median position (None: full-energy pilots)
    wifoe_task: str | None = None  # wifoe: the branch to use (None: picked from N_t)
    wifoe_checkpoint: str | None = None  # wifoe: checkpoint stem (None: the shipped one)
    # stems replacing shipped neural checkpoints, by checkpoint name (fm, papp, papp-csi, papp-hbf, papp-lite)
    checkpoints: dict[str, str] = field(default_factory=dict)

    def classical(self) -> list[str]:
        """The precoders and bounds of the registry (every name but ``wifoe``)."""
        return [p for p in self.precoders if p.strip().lower() != "wifoe"]

    @property
    def has_wifoe(self) -> bool:
        """Whether ``wifoe`` is among the precoders (case-insensitive)."""
        return any(p.strip().lower() == "wifoe" for p in self.precoders)

    def snr_points(self) -> list[SNRSpec]:
        """The SNR points to evaluate: ``--snr-db`` values (dB, read in ``snr_convention``) or ``--noise-dbm``
        values (absolute noise power, dBm); exactly one of the two must be given."""
        if (self.snr_db is None) == (self.noise_dbm is None):
            raise MimofmInputError("give exactly one of `--snr-db` or `--noise-dbm`")
        if self.snr_db is not None:
            return [SNRSpec(snr_db=float(s), relative_to=self.snr_convention) for s in self.snr_db]
        return [SNRSpec(noise_dbm=float(n)) for n in self.noise_dbm]

    def validate(self, table: Mapping[str, PrecoderSpec] = CLASSICAL) -> None:
        """Raise for any invalid setting; ``table``: the classical names (a plug-in's table may add some)."""
        if self.classical():
            check_precoder_names(",".join(self.classical()), table)
        elif not self.has_wifoe:
            check_precoder_names("")  # the error for an empty list
        self.snr_points()
        if self.pilot_snr_db is not None and not self.has_wifoe:
            raise MimofmInputError("`--pilot-snr-db` applies to wifoe; add wifoe to `--precoder`")
        if self.pilot_snr_db is not None and not math.isfinite(self.pilot_snr_db):
            raise MimofmInputError(
                f"`--pilot-snr-db` must be a finite number of dB, got {self.pilot_snr_db!r}"
            )
        if self.wifoe_task is not None and not self.has_wifoe:
            raise MimofmInputError("`--task` with `--data` picks wifoe's branch; add wifoe to `--precoder`")
        if self.num_ue < 1:
            raise MimofmInputError(f"`num_ue` must be >= 1, got {self.num_ue}")
        if self.samples < 2:
            raise MimofmInputError(f"`samples` must be >= 2 (for a confidence interval), got {self.samples}")
        if self.positions not in ("all", "train", "val", "test"):
            raise MimofmInputError(f"`positions` must be all, train, val or test, got {self.positions!r}")
        if self.chunk < 1:
            raise MimofmInputError(f"`chunk` must be >= 1, got {self.chunk}")
        if self.csi_nmse_db is not None and not math.isfinite(self.csi_nmse_db):
            raise MimofmInputError(f"`csi_nmse_db` must be finite, got {self.csi_nmse_db!r}")
        if self.csi_denoise and self.csi_nmse_db is None:
            raise MimofmInputError("`csi_denoise` needs `csi_nmse_db` (the estimate's error level)")
        LinkBudget(self.tx_power_dbm, self.system_loss_db)


def assign_checkpoint(cfg: EvalConfig, checkpoint: str) -> EvalConfig:
    """``cfg`` with ``checkpoint`` (a stem) serving its one neural model: wifoe's (then no other neural
    precoder may be asked for: ambiguous), else the one checkpoint name the neural precoders of
    ``cfg.precoders`` are served by (``fm-refined`` / ``papp+wmmse-1`` serve ``fm`` / ``papp``'s)."""
    if cfg.has_wifoe:
        others = sorted({NEURAL[p].checkpoint for p in cfg.classical() if p in NEURAL})
        if others:
            raise MimofmInputError(
                f"`--checkpoint` with wifoe and {', '.join(others)} is ambiguous; evaluate them "
                "in separate runs"
            )
        return replace(cfg, wifoe_checkpoint=checkpoint)
    neural = sorted({NEURAL[p].checkpoint for p in cfg.precoders if p in NEURAL})
    if len(neural) != 1:
        raise MimofmInputError(
            f"`--checkpoint` needs exactly one neural precoder ({', '.join(NEURAL_CHECKPOINTS)}) in "
            f"`--precoder`, with or without its variants (e.g. papp, papp-refined, papp+wmmse-1), got "
            f"{neural or 'none'}"
        )
    return replace(cfg, checkpoints={**cfg.checkpoints, neural[0]: checkpoint})


def summarize_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t confidence interval of the mean."""
    n = x.size
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half


def sample_users(
    cs: ChannelSet, num_ue: int, samples: int, seed: int, positions: str = "all"
) -> torch.Tensor:
    """``samples`` multi-user draws ``[S, num_ue, N]`` (raw gains, complex128) from one split of ``cs``."""
    cand = None
    if positions != "all":
        if cs.split is None:
            raise MimofmInputError(f"`--positions {positions}` needs a position split; {cs.name} has none")
        cand = candidate_positions(
            cs.num_positions, split=cs.split, split_code={"train": 0, "val": 1, "test": 2}[positions]
        )
    idx = draw_user_sets(cs.num_positions, num_ue, samples, seed, cand)
    return gather_users(cs.h, idx).to(torch.complex128)


def load_sets(paths: list[str]) -> list[ChannelSet]:
    """Load channel files; site names must be distinct (they key the results)."""
    if not paths:
        raise MimofmInputError("give at least one `--data` file")
    sets = [load_channels(Path(p)) for p in paths]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise MimofmInputError(f"two `--data` files have the same site name: {names}")
    return sets


def machine_info() -> dict:
    """Python, torch, thread count and platform of this run (recorded in every result)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def _run_chunked(
    spec, hs: torch.Tensor, chunk: int, h_est: torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Sum rate per sample ``[S]``, iterations ``[S]`` (or None) and seconds spent.

    ``h_est``: the channel estimate precoders are computed from (default: ``hs``, perfect CSI); rates are
    always measured on ``hs``. Bounds use the true channel.
    """
    rates, iters, elapsed = [], [], 0.0
    for i in range(0, hs.shape[0], chunk):
        hc = hs[i : i + chunk]
        seen = hc if h_est is None or spec.kind != "precoder" else h_est[i : i + chunk]
        t0 = time.perf_counter()
        out = spec.run(seen)
        elapsed += time.perf_counter() - t0
        # precoders: recomputed independently of the precoder; bounds: their own sum rate
        r = sum_rate(hc, out.w.to(torch.complex128)) if spec.kind == "precoder" else out.sum_rate
        if not bool(torch.isfinite(r).all()):
            raise RuntimeError(f"{spec.name} produced a non-finite sum rate; please report this channel set")
        rates.append(r.double().cpu().numpy())
        if out.iterations is not None:
            iters.append(out.iterations.cpu().numpy())
    return np.concatenate(rates), (np.concatenate(iters) if iters else None), elapsed


def evaluate_sets(
    sets: list[ChannelSet],
    cfg: EvalConfig,
    progress: Callable[[str], None] | None = None,
    table: Mapping[str, PrecoderSpec] = CLASSICAL,
    *,
    steps: StepCallback | None = None,
) -> dict:
    """Evaluate ``cfg.precoders`` on loaded channel sets; returns the JSON-able result dict.

    Names are looked up in ``table`` (default: the classical precoders and bounds; a plug-in's table from
    :func:`~mimofm.precoders.registry.register_precoder`), then among the neural precoders, each built
    once from its checkpoint (``cfg.checkpoints``, else the shipped one). ``progress(message)`` names
    each unit of work as it starts (set · SNR point · precoder); ``steps(done, total)`` counts them as
    they finish (total: sets × SNR points × precoders).
    """
    cfg.validate(table)
    specs = build_precoders(cfg.classical(), cfg.checkpoints, table) if cfg.classical() else []
    budget = LinkBudget(cfg.tx_power_dbm, cfg.system_loss_db)
    model, rule = None, (None, None, "received")
    if cfg.has_wifoe:
        model = load_wifoe(cfg.wifoe_checkpoint)
        rule = checkpoint_pilot_rule(cfg.wifoe_checkpoint or shipped_checkpoint("wifoe"))
    for cs in sets:  # every precoder serves every set, checked before any work
        for k_spec in specs:
            k_spec.check_configuration(cfg.num_ue, cs.num_bs_ant, f"--num-ue with {cs.name}")
    results = []
    per_point = len(specs) + (model is not None)  # wifoe joins the classical and neural specs
    counter = StepCounter(len(sets) * len(cfg.snr_points()) * per_point, steps)
    for cs in sets:
        h_users = sample_users(cs, cfg.num_ue, cfg.samples, cfg.seed, cfg.positions)  # [S, K, N] raw gains
        branch = _wifoe_branch(model, cs, cfg, progress)
        for point in cfg.snr_points():
            scale, resolved = point.scale_for(cs.h, budget)
            hs = h_users * scale  # SNR-scaled: unit power, unit noise
            h_est = None if cfg.csi_nmse_db is None else imperfect_csi(hs, cfg.csi_nmse_db, cfg.seed + 7919)
            if cfg.csi_denoise:
                h_est = beamspace_denoise(h_est, *array_shape(cs.meta, cs.num_bs_ant), cfg.csi_nmse_db)
            snr_median_db = 10.0 * math.log10(scale**2 * median_gain(cs.h))
            pilot = _pilot_snr(cfg.pilot_snr_db, rule, snr_median_db, cs.num_bs_ant)
            point_specs, e_s = _with_wifoe(specs, cfg, model, branch, cs, scale, pilot)
            per = {}
            for spec in point_specs:
                if progress:
                    progress(f"{cs.name} · {point.label} · {spec.name}")
                # wifoe estimates the channel from its own pilots: the imperfect-CSI option is for the others
                rates, iters, secs = _run_chunked(
                    spec, hs, cfg.chunk, None if spec.name == "wifoe" else h_est
                )
                per[spec.name] = (rates, iters, secs)
                counter.advance()
            dpc = per.get("dpc")
            for spec in point_specs:
                rates, iters, secs = per[spec.name]
                mean, ci = summarize_ci(rates)
                row = {
                    "site": cs.name,
                    "precoder": spec.name,
                    "kind": spec.kind,
                    "snr_db": point.snr_db,
                    "noise_dbm": resolved.noise_dbm if point.relative_to != "none" else None,
                    "snr_convention": point.relative_to if point.snr_db is not None else "absolute",
                    "snr_median_db": snr_median_db,
                    "sum_rate_mean": mean,
                    "sum_rate_ci95": ci,
                    "num_samples": int(rates.size),
                    "seconds_per_precoder": secs / rates.size,
                    "iterations_mean": float(iters.mean()) if iters is not None else None,
                    "iterations_max": int(iters.max()) if iters is not None else None,
                    "csi_nmse_db": cfg.csi_nmse_db if spec.kind == "precoder" else None,
                    "csi_denoise": cfg.csi_denoise if spec.kind == "precoder" else None,
                }
                if spec.name == "wifoe":
                    row |= {
                        "wifoe_branch": branch,
                        "pilot_snr_db": pilot,
                        "pilot_energy": e_s,
                        "resolved_pilot_snr_db": 10.0
                        * math.log10(e_s * scale**2 * median_gain(cs.h) / cs.num_bs_ant),
                        "csi_nmse_db": None,
                        "csi_denoise": None,
                    }
                if dpc is not None and spec.name != "dpc":
                    over = rates > dpc[0] * (1 + 1e-6) + 1e-9
                    row["samples_above_dpc"] = int(over.sum())
                    row["ratio_to_dpc"] = mean / float(dpc[0].mean())
                if "wmmse" in per and spec.name != "wmmse":
                    row["ratio_to_wmmse"] = mean / float(per["wmmse"][0].mean())
                results.append(row)
    return {
        "mimofm_result": "eval",
        "config": asdict(cfg),
        "link_budget": budget.to_dict(),
        "sites": [
            {
                "name": cs.name,
                "num_positions": cs.num_positions,
                "num_bs_ant": cs.num_bs_ant,
                "los_fraction": float(cs.los.float().mean()) if cs.los is not None else None,
            }
            for cs in sets
        ],
        "machine": machine_info(),
        "results": results,
    }


def _wifoe_branch(model, cs: ChannelSet, cfg: EvalConfig, progress) -> str | None:
    """The wifoe branch serving ``cs`` (None without wifoe); says which in the progress line."""
    if model is None:
        return None
    branch, why = pick_data_branch(model, cs.num_bs_ant, cs.meta, cfg.wifoe_task)
    if progress:
        progress(f"{cs.name} · wifoe branch {why}")
    return branch


def _pilot_snr(stated: float | None, rule: tuple, received_snr_db: float, num_bs_ant: int) -> float | None:
    """wifoe's pilot SNR at one point: the stated one, else the checkpoint's rule applied to the point's
    median
    received SNR (whatever convention or absolute noise set it)."""
    if stated is not None:
        return stated
    return rule_pilot_snr(rule, received_snr_db, num_bs_ant)


def _with_wifoe(
    specs: list,
    cfg: EvalConfig,
    model,
    branch: str | None,
    cs: ChannelSet,
    scale: float,
    pilot_snr_db: float | None,
):
    """``specs`` with wifoe in its ``--precoder`` place at this SNR point, and wifoe's pilot energy (or
    None)."""
    if model is None:
        return specs, None
    e_s = file_pilot_energy(pilot_snr_db, cs.h * scale)
    spec = wifoe_spec(model, branch, e_s, cfg.seed)
    by_name = {s.name: s for s in specs} | {"wifoe": spec}
    return [by_name[n.strip().lower()] for n in dict.fromkeys(cfg.precoders) if n.strip()], e_s


def evaluate_variants(
    cs: ChannelSet, name: str, variants: dict[str, str | None], cfg: EvalConfig, also: tuple[str, ...] = ()
) -> list[dict]:
    """Rows of the neural precoder ``name`` for each checkpoint in ``variants`` (label -> stem, None:
    shipped),
    named ``"<name>-<label>"``, on the same paired samples as ``cfg`` draws for ``cs``; ``also``: names
    served by the same checkpoint (e.g. ``papp-refined``), named ``"<also>-<label>"``. ``cfg`` is not
    changed: each variant runs on a copy carrying its checkpoint."""
    if name not in NEURAL or NEURAL[name].checkpoint != name:
        keys = dict.fromkeys(e.checkpoint for e in NEURAL.values())
        raise MimofmInputError(f"`--checkpoint` applies to {', '.join(keys)}, not {name!r}")
    rows = []
    for label, stem in variants.items():
        ckpts = {k: v for k, v in cfg.checkpoints.items() if k != name} | ({name: stem} if stem else {})
        part = evaluate_sets([cs], replace(cfg, precoders=[name, *also], checkpoints=ckpts))["results"]
        for r in part:
            r["precoder"] = f"{r['precoder']}-{label}"
        rows += part
    return rows


def compare_checkpoints(
    sites: list[ChannelSet],
    classical: list[str],
    name: str,
    variants: dict[str, dict[str, str | None]],
    cfg: EvalConfig,
    progress: Callable[[str], None] | None = None,
    also: tuple[str, ...] = (),
) -> dict:
    """Per site: the ``classical`` precoders and every checkpoint variant of ``name`` (label -> site -> stem)
    on the same paired samples (``also``: see :func:`evaluate_variants`);
    ``{"config", "results", "machine"}``."""
    rows = []
    for cs in sites:
        if progress:
            progress(cs.name)
        site_cfg = replace(cfg, precoders=classical)
        rows += evaluate_sets([cs], site_cfg)["results"]
        rows += evaluate_variants(
            cs, name, {label: stems[cs.name] for label, stems in variants.items()}, site_cfg, also
        )
    return {
        "config": {"snr_db": cfg.snr_db, "samples": cfg.samples, "positions": cfg.positions},
        "results": rows,
        "machine": machine_info(),
    }


def evaluate(
    cfg: EvalConfig, progress: Callable[[str], None] | None = None, *, steps: StepCallback | None = None
) -> dict:
    """Load ``cfg.data`` files and evaluate (see :func:`evaluate_sets`): the paired evaluation of
    ``mimofm eval`` -> the JSON-able result dict (rows: site, precoder, SNR, sum rate in bit/s/Hz with
    its 95 % interval, seconds per precoder). ``progress(message)`` / ``steps(done, total)``: as
    :func:`evaluate_sets`."""
    return evaluate_sets(load_sets(cfg.data), cfg, progress, steps=steps)
