"""Is the learned part worth it? Sum rate against CPU time per precoder, neural against classical.

On the held-out sites' test positions at ``K × N_t`` (default 4 × 64) and each SNR, every contender —
fm, papp, papp-lite, and ZF-WF, RZF, rzf-refined, WMMSE stopped after 1, 2, 3, 5, 10 iterations and
WMMSE run to its stopping rule — precodes the same user sets (a paired evaluation,
:func:`mimofm.evaluation.evaluate.evaluate_sets`), which also times each one in chunks of ``chunk``
precoders on this CPU, in the same run. A point is on the *frontier* when no other point is both at
least as fast and at least as good (and better in one). A neural precoder earns its place only where it
is on the frontier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mimofm.channels.io import load_channels
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.experiments._heldout import heldout_files
from mimofm.experiments.configurations import subarray_set
from mimofm.reports.plots import plt, savefig
from mimofm.reports.tables import markdown_table

__all__ = ["NEURAL", "QUICK", "FrontierSpec", "frontier_points", "plot", "render", "run_frontier"]

log = logging.getLogger(__name__)

NEURAL = ("fm", "papp", "papp-lite")
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
    cfg = EvalConfig(
        precoders=list(spec.precoders),
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


def plot(doc: dict, path: Path) -> Path:
    """One panel per SNR: ratio to WMMSE against µs per precoder (log), the frontier as a step line, neural
    precoders as filled markers, classical as open ones, each labelled."""
    snrs = sorted({r["snr_db"] for r in doc["rows"]})
    fig, axes = plt.subplots(1, len(snrs), figsize=(4.2 * len(snrs), 3.8), squeeze=False)
    for ax, snr in zip(axes[0], snrs):
        pts = frontier_points(doc, snr)
        front = [p for p in pts if p["on_frontier"]]
        ax.step(
            [p["seconds"] * 1e6 for p in front], [p["ratio"] for p in front], where="post", color="0.6", lw=1
        )
        for p in pts:
            style = (
                {"marker": "o", "color": "C3"}
                if p["neural"]
                else {"marker": "s", "color": "C0", "mfc": "none"}
            )
            ax.plot(p["seconds"] * 1e6, p["ratio"], linestyle="none", **style)
            ax.annotate(
                p["precoder"],
                (p["seconds"] * 1e6, p["ratio"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_title(f"{snr:g} dB")
        ax.set_xlabel("CPU µs per precoder")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sum rate ÷ WMMSE")
    fig.suptitle(
        "Rate against CPU time (held-out sites; red: neural, blue: classical; grey: frontier)", fontsize=9
    )
    fig.tight_layout()
    return savefig(fig, path)
