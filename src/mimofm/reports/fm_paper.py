"""fm paper analogues from stored results: Fig. 2 / Fig. 3 plots, Tables I and II, the summary.

The data comes from ``benchmarks/fm_paper.py`` (``fig2.json``, ``fig3.json``, ``table1.json``,
``table2.json`` in its output folder); :func:`render` re-makes every table and figure from those files.
"""

from __future__ import annotations

import json
from pathlib import Path

from mimofm.reports._plot import plt, savefig, variant_styles

__all__ = ["COMMAND", "SNRS", "plot_fig2", "plot_fig3", "render", "summary", "table1_md", "table2_md"]

SNRS = [0.0, 10.0, 20.0, 30.0]
COMMAND = "python benchmarks/fm_paper.py --out {folder}"


def table1_md(t1: dict) -> list[str]:
    names = t1["datasets"]
    out = [
        "### Single-dataset models across datasets (Table I analogue), 20 dB",
        "",
        "Rows: the model (trained on one dataset's train positions, or the foundation model's default head); "
        "columns: the dataset whose test users it serves; entries: mean sum rate ÷ WMMSE.",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label in dict.fromkeys(r["model"] for r in t1["rows"]):
        v = {r["dataset"]: r["ratio_to_wmmse"] for r in t1["rows"] if r["model"] == label}
        out.append(f"| {label} | " + " | ".join(f"{v[n]:.3f}" for n in names) + " |")
    return out + [""]


def plot_fig2(doc: dict, path: Path) -> None:
    rows = doc["results"]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    m = {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}
    methods = list(dict.fromkeys(r["precoder"] for r in rows))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.3 * len(sites), 3.6), squeeze=False, sharey=True)
    style = variant_styles([p for p in methods if p != "dpc"])  # a refined variant: its base's colour, dotted
    for ax, s in zip(axes[0], sites):
        for p in methods:
            y = [m[(s, x, p)] / m[(s, x, "wmmse")] for x in SNRS]
            if p == "dpc":
                ax.plot(SNRS, y, "--k", label=p)
            else:
                ax.plot(SNRS, y, label=p, **style[p])
        ax.set_title(s)
        ax.set_xlabel("median single-user SNR (dB)")
        ax.set_ylim(0.0, 1.12)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sum rate ÷ WMMSE (test positions)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, path)


def plot_fig3(doc: dict, path: Path) -> None:
    from mimofm.evaluation.plots import plot_tradeoff

    plot_tradeoff(doc, path)


def table2_md(t2: dict) -> list[str]:
    r = {x["precoder"]: x for x in t2["reports"]}
    out = [
        "### Complexity at 4 users × 64 antennas (Table II analogue)",
        "",
        "Paper FLOPs: the fm paper's Table II formulas (WMMSE in its N_T-dimensional form, with the iteration "
        "count measured here; fm: the paper's own model). Measured: matmul-like FLOPs counted by PyTorch's "
        "FlopCounterMode on one call (a lower bound for the iterative solvers, whose eigen-decompositions "
        "and solves it does not count; nearly exact for fm, which is linear layers and attention). Time: "
        f"CPU, {r['fm']['threads']} threads, median of 5 calls ÷ batch (wmmse-antenna at batch 16 for the "
        "large-batch column).",
        "",
        "| precoder | iterations | paper FLOPs | measured FLOPs | mimofm multiplications | µs @ batch 1 | µs @ large batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in r.items():
        paper = next(iter(x["analytic"].values()), None)
        t = x["seconds_per_precoder"]
        big = t.get("1024", t.get("16"))
        fmt = lambda v: f"{v / 1e6:.3f} M" if v else "-"  # noqa: E731
        out.append(
            f"| {name} | {x['iterations']:.1f} | {fmt(paper)} | {fmt(x['measured_flops_matmul_only'])} | "
            f"{fmt(x['mimofm_multiplications'])} | {t['1'] * 1e6:.0f} | {big * 1e6:.1f} |"
            if x["iterations"]
            else f"| {name} | - | {fmt(paper)} | {fmt(x['measured_flops_matmul_only'])} | "
            f"{fmt(x['mimofm_multiplications'])} | {t['1'] * 1e6:.0f} | {big * 1e6:.1f} |"
        )
    fm, wa, wu = r["fm"], r["wmmse-antenna"], r["wmmse"]
    wa_paper = next(iter(wa["analytic"].values()))
    out += [
        "",
        f"fm measured FLOPs ÷ WMMSE paper-count FLOPs (N_T form): "
        f"{fm['measured_flops_matmul_only'] / wa_paper:.3f} (target ≤ 0.125).",
        f"fm ÷ mimofm's user-space WMMSE: multiplications {fm['measured_flops_matmul_only'] / 2 / wu['mimofm_multiplications']:.2f}× "
        "(fm FLOPs ÷ 2 vs WMMSE's real multiplications), "
        f"time {fm['seconds_per_precoder']['1'] / wu['seconds_per_precoder']['1']:.2f}× at batch 1 and "
        f"{fm['seconds_per_precoder']['1024'] / wu['seconds_per_precoder']['1024']:.2f}× at batch 1024.",
        "",
    ]
    return out


def summary(f2: dict, f3: dict) -> str:
    rows = f2["results"]
    sites = list(dict.fromkeys(r["site"] for r in rows))
    m = {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}
    methods = [p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "wmmse"]
    out = [
        "### Maximum sum rate on held-out sites (Fig. 2 analogue)",
        "",
        "Ratio of mean sum rates to WMMSE, test positions, averaged over " + ", ".join(sites) + ".",
        "",
        "| method | " + " | ".join(f"{s:g} dB" for s in SNRS) + " | mean |",
        "|---|" + "---|" * (len(SNRS) + 1),
    ]
    for p in methods:
        r = [sum(m[(s, x, p)] / m[(s, x, "wmmse")] for s in sites) / len(sites) for x in SNRS]
        out.append(f"| {p} | " + " | ".join(f"{v:.3f}" for v in r) + f" | {sum(r) / len(r):.3f} |")
    out += [
        "",
        "Per site (÷ WMMSE):",
        "",
        "| site | method | " + " | ".join(f"{s:g} dB" for s in SNRS) + " |",
        "|---|---|" + "---|" * len(SNRS),
    ]
    for s in sites:
        for p in methods:
            out.append(
                f"| {s} | {p} | "
                + " | ".join(f"{m[(s, x, p)] / m[(s, x, 'wmmse')]:.3f}" for x in SNRS)
                + " |"
            )
    above_zf = all(m[(s, x, "fm-zero")] > m[(s, x, "zf")] for s in sites for x in SNRS if x <= 20)
    out += ["", f"fm-zero above ZF at every site and SNR ≤ 20 dB: {'yes' if above_zf else 'no'}.", ""]
    r3 = f3["results"]
    out += [
        "### Rate-target mode (Fig. 3 analogue), 20 dB",
        "",
        "Means over test samples; energy E = γ·P_TX + P_RF·(antennas on), P_TX = 20 W, P_RF = 1 W. "
        "QoS / greedy: least energy reaching fm's achieved rates with all antennas / with greedy "
        "switch-off (greedy on the first samples only).",
        "",
        "| site | model | β | asked | got | rate error | error (feasible) | fm W | antennas | QoS W | greedy W | fm ÷ QoS | fm ÷ greedy | QoS feasible |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in dict.fromkeys(r["site"] for r in r3):
        for label in dict.fromkeys(r["model"] for r in r3):
            for beta in dict.fromkeys(r["beta"] for r in r3):
                sel = {r["method"]: r for r in r3 if (r["site"], r["model"], r["beta"]) == (s, label, beta)}
                fm, q, g = sel["fm"], sel["qos@fm-rates"], sel.get("greedy@fm-rates", {})
                fe = fm.get("rel_rate_error_feasible_mean")
                out.append(
                    f"| {s} | {label} | {beta} | {fm['requested_sum_rate_mean']:.2f} | "
                    f"{fm['achieved_sum_rate_mean']:.2f} | {100 * fm['rel_rate_error_mean']:.1f}% | "
                    f"{'-' if fe is None else f'{100 * fe:.1f}%'} | "
                    f"{fm['energy_w_mean']:.1f} | {fm['antennas_on_mean']:.1f} | {q.get('energy_w_mean', float('nan')):.1f} | "
                    f"{g.get('energy_w_mean', float('nan')):.1f} | {q.get('fm_energy_ratio') or float('nan'):.3f} | "
                    f"{g.get('fm_energy_ratio') or float('nan'):.3f} | {100 * sel['qos@requests']['feasible_fraction']:.0f}% |"
                )
    for label in dict.fromkeys(r["model"] for r in r3):
        fm = [r for r in r3 if r["model"] == label and r["method"] == "fm"]
        err = sum(r["rel_rate_error_mean"] for r in fm) / len(fm)
        fe = [
            r["rel_rate_error_feasible_mean"] for r in fm if r.get("rel_rate_error_feasible_mean") is not None
        ]
        q = [
            r["fm_energy_ratio"]
            for r in r3
            if r["model"] == label and r["method"] == "qos@fm-rates" and r.get("fm_energy_ratio")
        ]
        g = [
            r["fm_energy_ratio"]
            for r in r3
            if r["model"] == label and r["method"] == "greedy@fm-rates" and r.get("fm_energy_ratio")
        ]
        out.append(
            f"\n{label}: mean relative per-user rate error {100 * err:.1f}% over all requests, "
            f"{100 * sum(fe) / max(1, len(fe)):.1f}% over requests QoS can meet (target ≤ 3%); "
            f"energy ÷ greedy switch-off at the same rates {sum(g) / max(1, len(g)):.3f}; "
            f"energy ÷ QoS at the same rates {sum(q) / len(q):.3f} (target ≤ 1.10)."
        )
    return "\n".join(out) + "\n"


def render(folder: Path, out: Path) -> tuple[str, list[Path]]:
    """(Markdown, PNGs written into ``out``) from the stored results in ``folder``."""
    f2 = json.loads((folder / "fig2.json").read_text())
    f3 = json.loads((folder / "fig3.json").read_text())
    pngs = [out / "fm_fig2.png", out / "fm_fig3.png"]
    plot_fig2(f2, pngs[0])
    plot_fig3(f3, pngs[1])
    md = summary(f2, f3)
    if (folder / "table1.json").exists():
        md += "\n" + "\n".join(table1_md(json.loads((folder / "table1.json").read_text())))
    if (folder / "table2.json").exists():
        md += "\n" + "\n".join(table2_md(json.loads((folder / "table2.json").read_text())))
    return md, pngs
