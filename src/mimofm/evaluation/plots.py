"""Plots of evaluation results (matplotlib, Agg backend).

Every plot tells its methods apart by marker and line style as well as by colour (:func:`method_styles`),
so curves that lie on top of each other stay readable in grey-scale print, and carries one legend for the
whole figure, outside the axes; constrained layout keeps labels from overlapping.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mimofm._io import atomic_path

__all__ = [
    "method_styles",
    "plot_complexity_vs_rate",
    "plot_crossover",
    "plot_latency",
    "plot_sum_rate_vs_snr",
    "plot_tradeoff",
    "reference_method",
]

_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")
_LINES = ("-", "--", "-.", ":")
_BOUNDS = {"dpc"}  # upper bounds: drawn as a plain black dashed line, no markers


def method_styles(names: list[str]) -> dict[str, dict]:
    """``{name: matplotlib line keyword arguments}``: a colour, a marker and a line style per method, each
    cycling on its own, so two methods that share a colour still differ in marker and line; bounds (DPC)
    are black and dashed."""
    out, i = {}, 0
    for n in dict.fromkeys(names):
        if n in _BOUNDS:
            out[n] = {"color": "k", "linestyle": "--", "marker": None, "linewidth": 1.2}
            continue
        out[n] = {
            "color": plt.get_cmap("tab10")(i % 10),
            "marker": _MARKERS[i % len(_MARKERS)],
            "linestyle": _LINES[i % len(_LINES)],
            "markersize": 4,
            "linewidth": 1.3,
        }
        i += 1
    return out


def reference_method(names) -> str | None:
    """The method the ratio panels divide by: ``wmmse`` when present, else ``dpc``, else None."""
    names = set(names)
    return next((m for m in ("wmmse", "dpc") if m in names), None)


def _shared_legend(fig, axes, ncol: int | None = None) -> None:
    """One legend for the whole figure, below the axes (labels de-duplicated over the panels)."""
    handles: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=ncol or max(1, min(len(handles), 6, int(fig.get_figwidth() / 1.5))),
            fontsize=8,
            frameon=False,
        )


def plot_sum_rate_vs_snr(result: dict, path: Path) -> Path:
    """One column per site: mean sum rate (with 95% CI band) against SNR for each precoder (top) and each
    precoder's sum rate ÷ WMMSE's (÷ DPC's when WMMSE was not evaluated) on the same samples (bottom); one
    shared legend."""
    rows = [r for r in result["results"] if r["snr_db"] is not None]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    methods = list(dict.fromkeys(r["precoder"] for r in rows))
    ref = reference_method(methods)
    styles = method_styles(methods)
    nrow = 2 if ref else 1
    fig, axes = plt.subplots(
        nrow,
        len(sites),
        figsize=(max(4.4, 3.9 * len(sites)), 3.2 * nrow + 0.9),
        squeeze=False,
        sharex="col",
        sharey="row",
        layout="constrained",
        height_ratios=[3, 2] if ref else None,
    )
    for col, site in enumerate(sites):
        ax = axes[0][col]
        mine = {r["precoder"]: r for r in rows if r["site"] == site}
        for p in methods:
            pts = sorted(
                (r["snr_db"], r["sum_rate_mean"], r.get("sum_rate_ci95") or 0.0)
                for r in rows
                if r["site"] == site and r["precoder"] == p
            )
            if not pts:
                continue
            x, y, ci = zip(*pts)
            ax.plot(x, y, label=p, **styles[p])
            ax.fill_between(
                x,
                [a - b for a, b in zip(y, ci)],
                [a + b for a, b in zip(y, ci)],
                alpha=0.12,
                color=styles[p]["color"],
                linewidth=0,
            )
        ax.set_title(site, fontsize=10)
        ax.grid(alpha=0.3)
        if ref and ref in mine:
            base = {
                r["snr_db"]: r["sum_rate_mean"] for r in rows if r["site"] == site and r["precoder"] == ref
            }
            bx = axes[1][col]
            for p in methods:
                pts = sorted(
                    (r["snr_db"], r["sum_rate_mean"] / base[r["snr_db"]])
                    for r in rows
                    if r["site"] == site and r["precoder"] == p and base.get(r["snr_db"])
                )
                if pts and p != ref:
                    bx.plot(*zip(*pts), label=p, **styles[p])
            bx.axhline(1.0, color="0.4", linewidth=0.8)
            bx.grid(alpha=0.3)
        axes[-1][col].set_xlabel("median single-user SNR (dB)")
    axes[0][0].set_ylabel("sum rate (bit/s/Hz)")
    if ref:
        axes[1][0].set_ylabel(f"sum rate ÷ {ref.upper()}")
    _shared_legend(fig, axes.flat)
    return _write(fig, path)


def _write(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def _save(fig, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return _write(fig, path)


def plot_tradeoff(result: dict, path: Path) -> Path:
    """One panel per (site, SNR): fm's energy (eq. 4) divided by the baseline's at fm's own achieved rates —
    QoS power minimization (all antennas on, every sample) and greedy antenna switch-off (the first samples)
    — against the request level β; below 1, fm spends less. One line per ``model`` when rows carry it;
    one shared legend."""
    rows = [r for r in result["results"] if isinstance(r.get("beta"), (int, float))]
    keys = list(dict.fromkeys((r["site"], r["snr_db"]) for r in rows))
    models = list(dict.fromkeys(r.get("model") for r in rows))
    n = max(1, len(keys))
    fig, axes = plt.subplots(
        1, n, figsize=(max(4.6, 3.9 * n), 4.0), squeeze=False, sharey=True, layout="constrained"
    )
    bases = {"qos@fm-rates": "QoS", "greedy@fm-rates": "greedy switch-off"}
    label = lambda model, method: f"{'fm' if model is None else 'fm-' + model} ÷ {bases[method]}"  # noqa: E731
    styles = method_styles([label(m, b) for m in models for b in bases])
    for ax, (site, snr) in zip(axes[0], keys):
        for model in models:
            for method in bases:
                pts = sorted(
                    (r["beta"], r["fm_energy_ratio"])
                    for r in rows
                    if (r["site"], r["snr_db"], r["method"], r.get("model")) == (site, snr, method, model)
                    and r.get("fm_energy_ratio") is not None
                )
                if pts:
                    name = label(model, method)
                    ax.plot(*zip(*pts), label=name, **styles[name])
        ax.axhline(1.0, color="0.4", lw=0.8)
        ax.set_title(f"{site} · {snr:g} dB", fontsize=10)
        ax.set_xlabel("request level β (× WMMSE's sum rate)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("energy ÷ baseline at fm's rates")
    _shared_legend(fig, axes.flat)
    return _save(fig, path)


def plot_complexity_vs_rate(result: dict, path: Path, snr_db: float | None = None) -> Path:
    """Sum rate ÷ WMMSE (site mean) against measured time per precoder, one point (and marker) per
    precoder, named in one legend (and beside the point when there are few)."""
    rows = [r for r in result["results"] if r["snr_db"] is not None]
    snrs = sorted({r["snr_db"] for r in rows})
    snr = snr_db if snr_db is not None else snrs[len(snrs) // 2]
    rows = [r for r in rows if r["snr_db"] == snr]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    w = {r["site"]: r["sum_rate_mean"] for r in rows if r["precoder"] == "wmmse"}
    methods = [p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "dpc"]
    styles = method_styles(methods)
    fig, ax = plt.subplots(figsize=(6.0, 4.6), layout="constrained")
    for p in methods:
        sel = [r for r in rows if r["precoder"] == p and r.get("seconds_per_precoder")]
        if not w or not sel:
            continue
        x = sum(r["seconds_per_precoder"] for r in sel) / len(sel) * 1e6
        y = sum(r["sum_rate_mean"] / w[r["site"]] for r in sel) / len(sel)
        st = styles[p]
        ax.plot([x], [y], linestyle="none", marker=st["marker"], color=st["color"], markersize=7, label=p)
        if len(methods) <= 6:  # more labels than that overlap: the legend names them
            ax.annotate(p, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("time per precoder (µs, CPU, batched)")
    ax.set_ylabel(f"sum rate ÷ WMMSE at {snr:g} dB")
    ax.set_title(f"quality vs time · mean over {len(sites)} site(s)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _shared_legend(fig, [ax])
    return _save(fig, path)


def plot_crossover(result: dict, path: Path) -> Path:
    """Time per precoder of WMMSE's two forms against N_T, one colour and marker per N_U (solid: user space
    ``K × K``, dashed: textbook ``N_T × N_T``), log-log; where a colour's lines cross, the forms cost the
    same."""
    rows = result["rows"]
    users = sorted({r["num_ue"] for r in rows})
    fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    colours = plt.cm.viridis([i / max(1, len(users) - 1) for i in range(len(users))])
    for i, (k, colour) in enumerate(zip(users, colours)):
        for form, line in (("user", "-"), ("antenna", "--")):
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
                    linestyle=line,
                    marker=_MARKERS[i % len(_MARKERS)],
                    color=colour,
                    markersize=4,
                    markerfacecolor=colour if form == "user" else "none",
                    label=f"K={k}" if form == "user" else None,
                )
    ax.set_xlabel("antennas N_T")
    ax.set_ylabel(f"µs per precoder ({result['config']['iterations']} WMMSE updates)")
    ax.set_title("WMMSE: user-space form (solid) vs textbook form (dashed)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _shared_legend(fig, [ax], ncol=min(len(users), 8))
    return _save(fig, path)


def plot_latency(result: dict, path: Path) -> Path:
    """Time per precoder against the batch size (log-log), one line per method (a colour, marker and line
    style each), with each method's time ÷ WMMSE's in a second panel when WMMSE was timed."""
    rows = result["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    styles = method_styles(methods)
    ratio = "wmmse" in methods and all(r.get("ratio_to_wmmse") is not None for r in rows)
    fig, axes = plt.subplots(
        1, 2 if ratio else 1, figsize=(10.0 if ratio else 6.0, 4.8), squeeze=False, layout="constrained"
    )
    for p in methods:
        pts = sorted(
            (r["batch"], r["seconds_per_precoder"], r.get("ratio_to_wmmse")) for r in rows if r["method"] == p
        )
        x, y, q = zip(*pts)
        axes[0][0].plot(x, [v * 1e6 for v in y], label=p, **styles[p])
        if ratio:
            axes[0][1].plot(x, q, label=p, **styles[p])
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch (precoders per call)")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("µs per precoder")
    if ratio:
        axes[0][1].set_ylabel("time ÷ WMMSE's (same batch)")
    _shared_legend(fig, axes.flat)
    return _save(fig, path)
