"""Is the learned part worth it? Sum rate against CPU time per precoder, neural against classical.

On the held-out sites' test positions at ``K × N_t`` (default 4 × 64) and each SNR, every contender —
fm, papp, papp-lite, papp and fm followed by one or two WMMSE updates from their output (``papp+wmmse-1``,
``papp+wmmse-2``, ``fm+wmmse-1``), and ZF-WF, RZF, rzf-refined, WMMSE stopped after 1, 2, 3, 5, 10
iterations and WMMSE run to its stopping rule — precodes the same user sets (a paired evaluation,
:func:`mimofm.evaluation.evaluate.evaluate_sets`), which also times each one in chunks of ``chunk``
precoders on this CPU, in the same run. A point is on the *frontier* when no other point is both at
least as fast and at least as good (and better in one). A neural precoder earns its place only where it
is on the frontier.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mimofm.channels.io import load_channels
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.experiments._heldout import heldout_files
from mimofm.experiments.configurations import subarray_set
from mimofm.models.zoo import NEURAL as NEURAL_ENTRIES
from mimofm.models.zoo import neural_serves
from mimofm.reports.plots import plt, savefig
from mimofm.reports.tables import markdown_table

__all__ = ["NEURAL", "QUICK", "FrontierSpec", "frontier_points", "plot", "render", "run_frontier"]

log = logging.getLogger(__name__)

# the networks alone, and papp / fm with WMMSE updates started from their precoder (``*+wmmse-i``)
NEURAL = ("fm", "papp", "papp-lite", "papp+wmmse-1", "papp+wmmse-2", "fm+wmmse-1")
CLASSICAL = (
    "zf-wf",
    "rzf",
    "rzf-eq",
    "rzf-refined",
    "wmmse-1",
    "wmmse-2",
    "wmmse-3",
    "wmmse-5",
    "wmmse-10",
    "wmmse",
)


@dataclass(frozen=True)
class FrontierSpec:
    """Configuration, SNRs, samples and contenders (defaults: the published run)."""

    num_ue: int = 4
    num_bs_ant: int = 64
    snrs_db: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0)
    samples: int = 500
    chunk: int = 250  # precoders per timed call
    precoders: tuple[str, ...] = NEURAL + CLASSICAL
    seed: int = 0


QUICK = FrontierSpec(snrs_db=(10.0,), samples=32, chunk=16)


def run_frontier(
    spec: FrontierSpec,
    checkpoints: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """The paired evaluation with timings -> ``{"rows": [...], "spec": ..., "threads": ...}`` (rows of
    :func:`evaluate_sets`, ``seconds_per_precoder`` measured in this run)."""
    sets = [load_channels(Path(p)) for p in heldout_files().values()]
    sets = [subarray_set(s, spec.num_bs_ant) for s in sets]
    names = [n for n in spec.precoders if _serves(n, spec.num_ue, spec.num_bs_ant, checkpoints or {})]
    cfg = EvalConfig(
        precoders=names,
        snr_db=list(spec.snrs_db),
        num_ue=spec.num_ue,
        samples=spec.samples,
        seed=spec.seed,
        chunk=spec.chunk,
        positions="test",
        checkpoints=dict(checkpoints or {}),
    )
    doc = evaluate_sets(sets, cfg, progress)
    return {
        "rows": doc["results"],
        "spec": {f: getattr(spec, f) for f in spec.__dataclass_fields__},
        "threads": torch.get_num_threads(),
        "machine": doc["machine"],
    }


def _serves(name: str, num_ue: int, num_bs_ant: int, checkpoints: dict[str, str]) -> bool:
    """Whether ``name`` serves ``num_ue × num_bs_ant`` (a fixed-configuration checkpoint such as papp-lite
    serves its own only; it is left out of other configurations' frontiers, with a log line)."""
    if name not in NEURAL_ENTRIES:
        return True
    serves = neural_serves(name, checkpoints.get(NEURAL_ENTRIES[name].checkpoint))
    if serves is None or serves == (num_ue, num_bs_ant):
        return True
    log.info("%s serves %d × %d only: left out at %d × %d", name, *serves, num_ue, num_bs_ant)
    return False


def frontier_points(doc: dict, snr_db: float) -> list[dict]:
    """Per precoder at ``snr_db``: ``seconds`` (mean over the sites of the time per precoder), ``ratio`` (sum
    rate ÷ converged WMMSE's, mean over the sites), ``neural``, ``on_frontier``; sorted by time."""
    rows = [r for r in doc["rows"] if r["snr_db"] == snr_db and r["kind"] == "precoder"]
    names = list(dict.fromkeys(r["precoder"] for r in rows))
    pts = []
    for n in names:
        mine = [r for r in rows if r["precoder"] == n]
        ratio = [r.get("ratio_to_wmmse", 1.0) for r in mine]
        pts.append(
            {
                "precoder": n,
                "seconds": sum(r["seconds_per_precoder"] for r in mine) / len(mine),
                "ratio": sum(ratio) / len(ratio),
                "neural": n in NEURAL or n.startswith(("fm", "papp")),
            }
        )
    for p in pts:
        p["on_frontier"] = not any(
            q is not p
            and q["seconds"] <= p["seconds"]
            and q["ratio"] >= p["ratio"]
            and (q["seconds"] < p["seconds"] or q["ratio"] > p["ratio"])
            for q in pts
        )
    return sorted(pts, key=lambda p: p["seconds"])


def render(doc: dict) -> str:
    """Markdown: per SNR, each contender's µs per precoder, ratio to WMMSE and whether it is on the frontier;
    then the verdict (SNRs at which a neural precoder is on the frontier)."""
    snrs = sorted({r["snr_db"] for r in doc["rows"]})
    s = doc["spec"]
    lines = [
        f"Held-out sites, test positions, {s['num_ue']} users × {s['num_bs_ant']} antennas, {s['samples']} "
        f"samples per site and SNR; CPU time per precoder in chunks of {s['chunk']}, "
        f"{doc['threads']} threads, measured in the same run.",
        "",
    ]
    verdict = []
    for snr in snrs:
        pts = frontier_points(doc, snr)
        rows = [
            [
                p["precoder"],
                f"{p['seconds'] * 1e6:.1f}",
                f"{p['ratio']:.4f}",
                "yes" if p["on_frontier"] else "",
            ]
            for p in pts
        ]
        lines += [
            f"#### {snr:g} dB",
            "",
            *markdown_table(["precoder", "µs", "÷ WMMSE", "frontier"], rows),
            "",
        ]
        on = [p["precoder"] for p in pts if p["neural"] and p["on_frontier"]]
        verdict.append(f"{snr:g} dB: {', '.join(on) if on else 'no neural precoder'} on the frontier")
    return "\n".join([*lines, "Verdict: " + "; ".join(verdict) + ".", ""])


def _style(p: dict) -> dict:
    """Marker of a frontier point: networks filled red (circles alone, diamonds with WMMSE updates after
    them), classical open blue (squares: WMMSE, triangles: linear and refined)."""
    if p["neural"]:
        return {"marker": "D" if "+wmmse" in p["precoder"] else "o", "color": "C3"}
    return {"marker": "s" if p["precoder"].startswith("wmmse") else "^", "color": "C0", "mfc": "none"}


def plot(doc: dict, path: Path) -> Path:
    """A 2-column grid of panels, one per SNR: ratio to WMMSE against µs per precoder (log), the frontier
    as a step line, each point labelled. The y axis starts just below the lowest neural point; classical
    points under it are listed in the panel's corner instead."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    snrs = sorted({r["snr_db"] for r in doc["rows"]})
    cols = min(2, len(snrs))
    rows = -(-len(snrs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.6 * rows), squeeze=False)
    for ax, snr in zip(axes.flat, snrs):
        pts = frontier_points(doc, snr)
        lowest = min([p["ratio"] for p in pts if p["neural"]] or [p["ratio"] for p in pts])
        floor = math.floor((lowest - 0.005) * 100) / 100
        top = max(p["ratio"] for p in pts) + 0.006
        front = [p for p in pts if p["on_frontier"]]
        ax.step(
            [p["seconds"] * 1e6 for p in front], [p["ratio"] for p in front], where="post", color="0.6", lw=1
        )
        below = []
        for p in pts:
            if p["ratio"] < floor:
                below.append(f"{p['precoder']} {p['ratio']:.2f}")
                continue
            ax.plot(p["seconds"] * 1e6, p["ratio"], linestyle="none", ms=6, **_style(p))
            ax.annotate(
                p["precoder"], (p["seconds"] * 1e6, p["ratio"]), fontsize=7, xytext=(4, -3),
                textcoords="offset points", color="C3" if p["neural"] else "0.2",
            )  # fmt: skip
        if below:
            ax.text(
                0.98, 0.03, "below the axis: " + ", ".join(below), transform=ax.transAxes, ha="right",
                fontsize=7, color="0.35",
            )  # fmt: skip
        ax.set_ylim(floor, top)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{snr:g} dB", fontsize=10)
        ax.set_xlabel("CPU µs per precoder (log)")
        ax.set_ylabel("sum rate ÷ WMMSE")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(snrs) :]:
        ax.set_visible(False)
    spec = doc.get("spec", {})
    size = f"{spec['num_ue']} users × {spec['num_bs_ant']} antennas; " if "num_ue" in spec else ""
    fig.suptitle(
        f"Rate against CPU time ({size}held-out sites). Red: neural (diamonds: + WMMSE updates), "
        "blue: classical; grey: the frontier",
        fontsize=10,
    )
    fig.tight_layout()
    return savefig(fig, path)
