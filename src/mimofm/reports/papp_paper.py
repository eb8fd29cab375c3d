"""papp paper analogues from stored results (``benchmarks/papp_paper.py``'s ``eval.json``): the table of
zero-shot, DeepAll and fine-tuned papp ÷ WMMSE, few-shot recovery, and a plot of the same."""

from __future__ import annotations

import json
from pathlib import Path

from mimofm.reports._plot import plt, savefig

__all__ = ["SNRS", "SHOTS", "summary", "plot_ratios", "render", "COMMAND"]

SNRS = [0.0, 10.0, 20.0, 30.0]
SHOTS = ["10", "20", "40", "100", "full"]
COMMAND = "python benchmarks/papp_paper.py --out {folder}"


def summary(doc: dict) -> str:
    rows = doc["results"]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    m = {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}
    methods = [p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "wmmse"]
    out = ["### papp on the held-out sites", "", "Mean sum rate ÷ WMMSE on test positions, averaged over "
           + ", ".join(sites) + ".", "", "| method | " + " | ".join(f"{s:g} dB" for s in SNRS) + " | mean |",
           "|---|" + "---|" * (len(SNRS) + 1)]
    for p in methods:
        r = [sum(m[(s, x, p)] / m[(s, x, "wmmse")] for s in sites) / len(sites) for x in SNRS]
        out.append(f"| {p} | " + " | ".join(f"{v:.3f}" for v in r) + f" | {sum(r) / len(r):.3f} |")
    out += ["", "Few-shot recovery `(FT_n − zero)/(FT_full − zero)` of the site-mean sum rate over the SNR points:", ""]
    zero = sum(m[(s, x, "papp-zero")] for s in sites for x in SNRS)
    full = sum(m[(s, x, "papp-ft-full")] for s in sites for x in SNRS)
    for n in SHOTS[:-1]:
        ft = sum(m[(s, x, f"papp-ft-{n}")] for s in sites for x in SNRS)
        rec = (ft - zero) / (full - zero) if full != zero else float("nan")
        out.append(f"* {n} samples: {100 * rec:.1f}% (full fine-tuning gains {100 * (full / zero - 1):.2f}% over zero-shot)")
    above = [(s, x) for s in sites for x in SNRS if m[(s, x, "papp-zero")] < m[(s, x, "papp-deepall")]]
    out += ["", f"papp zero-shot below DeepAll at {len(above)} of {len(sites) * len(SNRS)} (site, SNR) points"
            + (f": {above}" if above else "") + "."]
    return "\n".join(out) + "\n"


def plot_ratios(doc: dict, path: Path) -> None:
    """Every papp variant ÷ WMMSE vs SNR, averaged over the sites."""
    rows = doc["results"]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    m = {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for p in (p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "wmmse"):
        ax.plot(SNRS, [sum(m[(s, x, p)] / m[(s, x, "wmmse")] for s in sites) / len(sites) for x in SNRS],
                "--k" if p == "zf" else "-o", label=p, markersize=3)
    ax.set_xlabel("median single-user SNR (dB)"), ax.set_ylabel("sum rate ÷ WMMSE (test positions, site mean)")
    ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, path)


def render(folder: Path, out: Path) -> tuple[str, list[Path]]:
    doc = json.loads((folder / "eval.json").read_text())
    png = out / "papp_ratios.png"
    plot_ratios(doc, png)
    return summary(doc), [png]
