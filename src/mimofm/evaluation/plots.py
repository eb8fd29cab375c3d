"""Plots of evaluation results (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mimofm._io import atomic_path  # noqa: E402


def plot_sum_rate_vs_snr(result: dict, path: Path) -> Path:
    """One panel per site: mean sum rate (with 95% CI band) against SNR for each precoder."""
    rows = [r for r in result["results"] if r["snr_db"] is not None]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.2 * len(sites), 3.6), squeeze=False, sharey=True)
    for ax, site in zip(axes[0], sites):
        for p in dict.fromkeys(r["precoder"] for r in rows):
            pts = sorted((r["snr_db"], r["sum_rate_mean"], r["sum_rate_ci95"]) for r in rows
                         if r["site"] == site and r["precoder"] == p)
            x, y, ci = zip(*pts)
            style = "--k" if p == "dpc" else "-o"
            ax.plot(x, y, style, label=p, markersize=3)
            ax.fill_between(x, [a - b for a, b in zip(y, ci)], [a + b for a, b in zip(y, ci)], alpha=0.15)
        ax.set_title(site)
        ax.set_xlabel("median single-user SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sum rate (bit/s/Hz)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
