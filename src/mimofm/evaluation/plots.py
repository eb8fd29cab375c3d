"""Plots of evaluation results (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mimofm._io import atomic_path

__all__ = ["plot_complexity_vs_rate", "plot_crossover", "plot_sum_rate_vs_snr", "plot_tradeoff"]


def plot_sum_rate_vs_snr(result: dict, path: Path) -> Path:
    """One panel per site: mean sum rate (with 95% CI band) against SNR for each precoder."""
    rows = [r for r in result["results"] if r["snr_db"] is not None]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.2 * len(sites), 3.6), squeeze=False, sharey=True)
    for ax, site in zip(axes[0], sites):
        for p in dict.fromkeys(r["precoder"] for r in rows):
            pts = sorted(
                (r["snr_db"], r["sum_rate_mean"], r["sum_rate_ci95"])
                for r in rows
                if r["site"] == site and r["precoder"] == p
            )
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


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_tradeoff(result: dict, path: Path) -> Path:
    """One panel per (site, SNR): fm's energy (eq. 4) divided by the baseline's at fm's own achieved rates —
    QoS power minimization (all antennas on, every sample) and greedy antenna switch-off (the first samples)
    — against the request level β; below 1, fm spends less. One line per ``model`` when rows carry it."""
    rows = [r for r in result["results"] if isinstance(r.get("beta"), (int, float))]
    keys = list(dict.fromkeys((r["site"], r["snr_db"]) for r in rows))
    models = list(dict.fromkeys(r.get("model") for r in rows))
    fig, axes = plt.subplots(
        1, max(1, len(keys)), figsize=(4.2 * max(1, len(keys)), 3.6), squeeze=False, sharey=True
    )
    styles = {"qos@fm-rates": "-o", "greedy@fm-rates": "--^"}
    for ax, (site, snr) in zip(axes[0], keys):
        for model in models:
            for method, style in styles.items():
                pts = sorted(
                    (r["beta"], r["fm_energy_ratio"])
                    for r in rows
                    if (r["site"], r["snr_db"], r["method"], r.get("model")) == (site, snr, method, model)
                    and r.get("fm_energy_ratio") is not None
                )
                if pts:
                    x, y = zip(*pts)
                    base = "QoS" if method.startswith("qos") else "greedy switch-off"
                    ax.plot(
                        x,
                        y,
                        style,
                        label=f"{'fm' if model is None else 'fm-' + model} ÷ {base}",
                        markersize=4,
                    )
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(f"{site} · {snr:g} dB")
        ax.set_xlabel("request level β (fraction of WMMSE's sum rate)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("energy ÷ baseline at fm's rates")
    axes[0][-1].legend(fontsize=7)
    return _save(fig, path)


def plot_complexity_vs_rate(result: dict, path: Path, snr_db: float | None = None) -> Path:
    """Sum rate ÷ WMMSE (site mean) against measured time per precoder, one point per precoder."""
    rows = [r for r in result["results"] if r["snr_db"] is not None]
    snrs = sorted({r["snr_db"] for r in rows})
    snr = snr_db if snr_db is not None else snrs[len(snrs) // 2]
    rows = [r for r in rows if r["snr_db"] == snr]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    w = {r["site"]: r["sum_rate_mean"] for r in rows if r["precoder"] == "wmmse"}
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for p in dict.fromkeys(r["precoder"] for r in rows):
        sel = [r for r in rows if r["precoder"] == p]
        if p == "dpc" or not w:
            continue
        x = sum(r["seconds_per_precoder"] for r in sel) / len(sel) * 1e6
        y = sum(r["sum_rate_mean"] / w[r["site"]] for r in sel) / len(sel)
        ax.scatter([x], [y])
        ax.annotate(p, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("time per precoder (µs, CPU, batched)")
    ax.set_ylabel(f"sum rate ÷ WMMSE at {snr:g} dB ({len(sites)} sites)")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_crossover(result: dict, path: Path) -> Path:
    """Time per precoder of WMMSE's two forms against N_T, one colour per N_U (solid: user space ``K × K``,
    dashed: textbook ``N_T × N_T``), log-log; where a colour's lines cross, the forms cost the same."""
    rows = result["rows"]
    users = sorted({r["num_ue"] for r in rows})
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.cm.viridis([i / max(1, len(users) - 1) for i in range(len(users))])
    for k, colour in zip(users, colours):
        for form, style in (("user", "-o"), ("antenna", "--s")):
            pts = sorted(
                (r["num_bs_ant"], r["seconds_per_precoder"])
                for r in rows
                if r["num_ue"] == k and r["form"] == form
            )
            if pts:
                x, y = zip(*pts)
                ax.loglog(
                    x,
                    [v * 1e6 for v in y],
                    style,
                    color=colour,
                    markersize=3,
                    label=f"K={k}" if form == "user" else None,
                )
    ax.set_xlabel("antennas N_T")
    ax.set_ylabel(f"µs per precoder ({result['config']['iterations']} WMMSE updates)")
    ax.set_title("WMMSE: user-space form (solid) vs textbook form (dashed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return _save(fig, path)
