"""The configuration study: one fm and one papp checkpoint on any number of users and antennas.

Held-out data only: the bundled held-out sites' test positions (8×8 panel; ``N_t < 64`` is a block of its
rows, the first ``N_t`` antennas) and, for larger arrays, TR 38.901 files of arrays no fm or papp model
trained on (e.g. ``mimofm data tr38901 --task T10``: 16×8 = 128 antennas, ``T6``: 16×16 = 256). Every
point is a paired evaluation (:func:`mimofm.evaluation.evaluate.evaluate_sets`): the same user sets for
every precoder, rates as ratios to WMMSE's. The table answers the targets of the generalisation work:
``≥ 0.99`` of WMMSE at 4 × 64, ``≥ 0.97`` elsewhere, never below ZF-WF.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mimofm.channels.io import load_channels
from mimofm.channels.types import ChannelSet
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.experiments._heldout import heldout_files
from mimofm.reports.tables import markdown_table

__all__ = ["QUICK", "ConfigSpec", "render", "run_configurations", "subarray_set", "summary_rows"]

log = logging.getLogger(__name__)

NEURAL = ("fm", "fm+wmmse-1", "papp", "papp+wmmse-1", "papp+wmmse-2")


@dataclass(frozen=True)
class ConfigSpec:
    """Which configurations, SNRs and precoders (defaults: the published run)."""

    # (K, N_t) on the held-out ray-traced sites (N_t <= 64: sub-arrays of the 8×8 panel)
    site_points: tuple[tuple[int, int], ...] = (
        (2, 64),
        (4, 64),
        (8, 64),
        (16, 64),
        (4, 16),
        (4, 32),
        (8, 32),
    )
    extra_files: tuple[str, ...] = ()  # larger arrays (TR 38.901 files): every K of extra_num_ue on each
    extra_num_ue: tuple[int, ...] = (4, 8)
    snrs_db: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0)
    samples: int = 200  # multi-user samples per (file, K, N_t, SNR)
    precoders: tuple[str, ...] = (*NEURAL, "wmmse-3", "zf-wf", "rzf", "wmmse")
    seed: int = 0


QUICK = ConfigSpec(site_points=((2, 16), (4, 32)), snrs_db=(10.0,), samples=16)


def subarray_set(cs: ChannelSet, num_bs_ant: int) -> ChannelSet:
    """The first ``num_bs_ant`` antennas of a site (raw gains ``[P, n]``; whole rows of a row-major panel)."""
    if num_bs_ant == cs.num_bs_ant:
        return cs
    name = f"{cs.name}[{num_bs_ant}]"
    return replace(cs, name=name, h=cs.h[:, :num_bs_ant].contiguous())


def run_configurations(
    spec: ConfigSpec,
    checkpoints: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate ``spec.precoders`` at every configuration -> ``{"rows": [...], "spec": ...}``; each row a
    result row of :func:`evaluate_sets` with ``num_ue``, ``num_bs_ant`` and ``group`` (``sites`` or the
    extra file's name) added."""
    rows = []
    sites = [load_channels(Path(p)) for p in heldout_files().values()]
    jobs: list[tuple[str, list[ChannelSet], int, str]] = [
        ("sites", [subarray_set(cs, n) for cs in sites], k, "test") for k, n in spec.site_points
    ]
    for f in spec.extra_files:
        cs = load_channels(Path(f))
        positions = "test" if cs.split is not None else "all"
        jobs += [(cs.name, [cs], k, positions) for k in spec.extra_num_ue if k <= cs.num_bs_ant]
    for group, sets, k, positions in jobs:
        log.info("%s: %d users × %d antennas", group, k, sets[0].num_bs_ant)
        cfg = EvalConfig(
            precoders=list(spec.precoders),
            snr_db=list(spec.snrs_db),
            num_ue=k,
            samples=spec.samples,
            seed=spec.seed,
            positions=positions,
            checkpoints=dict(checkpoints or {}),
        )
        for r in evaluate_sets(sets, cfg, progress)["results"]:
            rows.append(r | {"num_ue": k, "num_bs_ant": sets[0].num_bs_ant, "group": group})
    return {"rows": rows, "spec": {f: getattr(spec, f) for f in spec.__dataclass_fields__}}


def summary_rows(doc: dict, precoder: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows): ``precoder``'s sum rate ÷ WMMSE per configuration (mean over the group's sites) at
    each SNR, its minimum over sites and SNRs, and whether it is at or above ZF-WF at every point."""
    snrs = sorted({r["snr_db"] for r in doc["rows"]})
    keys = list(dict.fromkeys((r["group"], r["num_ue"], r["num_bs_ant"]) for r in doc["rows"]))
    rate = {
        (r["group"], r["num_ue"], r["num_bs_ant"], r["site"], r["snr_db"], r["precoder"]): r
        for r in doc["rows"]
    }
    header = ["data", "K", "N_t", *[f"{s:g} dB" for s in snrs], "min", "≥ ZF-WF"]
    out = []
    for g, k, n in keys:
        sites = sorted(
            {r["site"] for r in doc["rows"] if (r["group"], r["num_ue"], r["num_bs_ant"]) == (g, k, n)}
        )
        cells, ratios, above = [], [], True
        for s in snrs:
            per_site = []
            for site in sites:
                row = rate.get((g, k, n, site, s, precoder))
                zfwf = rate.get((g, k, n, site, s, "zf-wf"))
                if row is None or "ratio_to_wmmse" not in row:
                    continue
                per_site.append(row["ratio_to_wmmse"])
                if zfwf is not None and row["sum_rate_mean"] < zfwf["sum_rate_mean"] * (1 - 1e-9):
                    above = False
            ratios += per_site
            cells.append(f"{sum(per_site) / len(per_site):.3f}" if per_site else "-")
        out.append(
            [g, str(k), str(n), *cells, f"{min(ratios):.3f}" if ratios else "-", "yes" if above else "no"]
        )
    return header, out


def render(doc: dict) -> str:
    """Markdown: one table per neural precoder (and WMMSE stopped after 3 updates, ZF-WF and RZF) of sum
    rate ÷ WMMSE."""
    lines = []
    for p in [*NEURAL, "wmmse-3", "zf-wf", "rzf"]:
        if not any(r["precoder"] == p for r in doc["rows"]):
            continue
        header, rows = summary_rows(doc, p)
        lines += [f"#### {p}: sum rate ÷ WMMSE", "", *markdown_table(header, rows), ""]
    return "\n".join(lines)
