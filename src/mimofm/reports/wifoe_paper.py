"""wifoe paper analogues from stored results (``benchmarks/wifoe_paper.py report``'s JSON files):
Table II, Fig. 3, Fig. 4, Table III and Fig. 5 on the 3GPP tasks."""

from __future__ import annotations

import json
from pathlib import Path

from mimofm.reports._plot import plt, savefig

__all__ = [
    "BUDGETS",
    "COMMAND",
    "DG",
    "FIG4_VAL_COMMAND",
    "FIG4_VAL_HEADING",
    "PRETRAIN",
    "SCALE",
    "SNRS",
    "STRATEGIES",
    "UNSEEN",
    "fig4_lines",
    "fig4_val_markdown",
    "fig4_val_title",
    "plot_fig4",
    "plots",
    "render",
    "summary",
]

COMMAND = (
    "python benchmarks/wifoe_paper.py train --out {folder} --shard i/2 (i = 0, 1); "
    "python benchmarks/wifoe_paper.py report --out {folder}"
)

FIG4_VAL_HEADING = "Fig. 4 with the fine-tuning length chosen on validation"
FIG4_VAL_COMMAND = (
    "python benchmarks/wifoe_fig4_val.py train --shard i/2 --threads 1 (i = 0, 1); "
    "python benchmarks/wifoe_fig4_val.py report"
)

PRETRAIN = [f"T{i}" for i in range(1, 10)]
UNSEEN = ["T10", "T11", "T12"]
DG = {"G1": "T1", "G2": "T2", "G3": "T3"}  # target task -> source task with the same array and ratios
SNRS = [0.0, 5.0, 10.0, 15.0, 20.0]
FIG3 = ("zf", "wmmse", "lmmse", "dsc", "cep", "stl", "mtl")
BUDGETS = [500, 2000, 8000]
STRATEGIES = ["pretrained", "random", "train", "finetune"]
STRATEGY_LABELS = {
    "pretrained": "MTL trunk (frozen) + new branch",
    "random": "random trunk (frozen) + new branch",
    "train": "STL (whole model, random init)",
    "finetune": "MTL trunk as init, all trained",
}
SCALE = {  # Fig. 5: trunk variants of the reference (2 blocks, d 128, FFN 256)
    "moe-e2": dict(moe=True, num_experts=2, top_k=2),
    "moe-e4": dict(moe=True, num_experts=4, top_k=2),
    "moe-e8": dict(moe=True, num_experts=8, top_k=2),
    "dense-256": dict(moe=False, d_ff=256),
    "dense-512": dict(moe=False, d_ff=512),
    "dense-1024": dict(moe=False, d_ff=1024),
}


def _ok(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _avg(doc: dict, method: str, snr: float) -> float:
    return sum(doc["rates"][f"{t}@{snr:g}"][method] for t in PRETRAIN) / len(PRETRAIN)


def plots(t2: dict, f4: dict, f5: dict, fig_dir: Path) -> None:
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8.2, 3.8))
    for m, style in (
        ("wmmse", "k--"),
        ("zf", "k:"),
        ("lmmse", "C7-."),
        ("mtl", "C0-o"),
        ("stl", "C1-s"),
        ("cep", "C2-^"),
        ("dsc", "C3-v"),
    ):
        label = {
            "wmmse": "WMMSE (perfect CSI)",
            "zf": "ZF (perfect CSI)",
            "lmmse": "LMMSE est. from L pilots + WMMSE (unquantized feedback)",
        }.get(m, m.upper())
        ax.plot(SNRS, [_avg(t2, m, s) for s in SNRS], style, label=label)
    ax.set_xlabel("beamformed SNR P·E‖h‖²/σ² (dB)"), ax.set_ylabel("sum rate (bit/s/Hz), mean of T1–T9")
    ax.grid(alpha=0.3), ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title("wifoe Fig. 3 analogue (3GPP 38.901 test drops)", fontsize=9)
    fig.tight_layout(), savefig(fig, fig_dir / "wifoe_fig3.png")

    plot_fig4(f4, fig_dir / "wifoe_fig4.png")

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for kind, style in (("moe", "C0-o"), ("dense", "C3-s")):
        names = [n for n in SCALE if n.startswith(kind)]
        xs = [f5[n]["bs_flops_k8"] / 1e6 for n in names]
        ax.plot(xs, [f5[n]["rate"] for n in names], style, label=f"{kind} scaling")
        for n, x in zip(names, xs):
            ax.annotate(
                f"{f5[n]['trunk_params'] / 1e6:.2f}M",
                (x, f5[n]["rate"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(3, 3),
            )
    ax.set_xlabel("BS-side MFLOPs per sample (K = 8)"), ax.set_ylabel("sum rate at 10 dB, mean of T1–T9")
    (
        ax.grid(alpha=0.3),
        ax.legend(fontsize=8),
        ax.set_title("wifoe Fig. 5 analogue (labels: trunk parameters)", fontsize=9),
    )
    fig.tight_layout(), savefig(fig, fig_dir / "wifoe_fig5.png")


def plot_fig4(f4: dict, path: Path, title: str = "") -> None:
    """Sum rate vs training samples per unseen task, one line per strategy (the budgets it was run at)."""
    fig, axes = plt.subplots(1, len(UNSEEN), figsize=(11, 3.6 if title else 3.4), sharey=False)
    for ax, t in zip(axes, UNSEEN):
        for s, style in zip(STRATEGIES, ("C0-o", "C3-v", "C1-s", "C2-^")):
            runs = f4["rates"][t].get(s, {})
            budgets = [b for b in BUDGETS if str(b) in runs]
            if budgets:
                ax.semilogx(budgets, [runs[str(b)] for b in budgets], style, label=STRATEGY_LABELS[s])
        ax.axhline(f4["rates"][t]["wmmse"], color="k", ls="--", lw=0.8, label="WMMSE (perfect CSI)")
        ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS]), ax.minorticks_off()
        ax.set_title(t, fontsize=9), ax.set_xlabel("training samples"), ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"sum rate at {f4.get('snr_db', 10.0):g} dB (bit/s/Hz)"), axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(), savefig(fig, path)


def fig4_lines(f4: dict) -> list[str]:
    """Fig. 4's table (– where a strategy was not run at a budget) and its two targets."""
    runs = lambda t, s: f4["rates"][t].get(s, {})  # noqa: E731
    lines = [
        "| task | strategy | " + " | ".join(str(b) for b in BUDGETS) + " |",
        "|---|---|" + "---|" * len(BUDGETS),
    ]
    beats, within, points = True, [], 0
    for t in UNSEEN:
        for s in (s for s in STRATEGIES if runs(t, s)):
            lines.append(
                f"| {t} | {STRATEGY_LABELS[s]} | "
                + " | ".join(f"{runs(t, s)[str(b)]:.2f}" if str(b) in runs(t, s) else "–" for b in BUDGETS)
                + " |"
            )
        wins = [runs(t, "pretrained")[str(b)] > runs(t, "random")[str(b)] for b in BUDGETS]
        beats, points = beats and all(wins), points + sum(wins)
        if "2000" in runs(t, "train"):
            within.append(runs(t, "pretrained")["2000"] / runs(t, "train")["2000"])
    stl = (
        f"ratios {', '.join(f'{w:.3f}' for w in within)} — {_ok(all(w >= 0.99 for w in within))}"
        if within
        else "STL not run"
    )
    return lines + [
        "",
        f"- frozen pretrained trunk beats a frozen random trunk at every budget: {_ok(beats)} "
        f"({points} of {len(UNSEEN) * len(BUDGETS)} points)",
        f"- within 1% of STL at 2000 samples: {stl}",
        "",
    ]


def _seeds(doc: dict) -> str:
    n = len(doc["seeds"])
    return f"{n} seed" if n == 1 else f"{n} seeds"


def fig4_val_title(doc: dict) -> str:
    """The validated Fig. 4 plot's title."""
    return (
        f"mean of {_seeds(doc)}; fine-tuning length chosen on {doc['val_fraction']:.0%} of each budget held out "
        f"(best of 20 evaluations, ≤ {doc['max_steps']} steps)"
    )


def fig4_val_markdown(doc: dict) -> str:
    """``benchmarks/wifoe_fig4_val.py``'s Fig. 4: the table (mean over seeds), the targets, each seed's
    rates and the validated step counts."""
    lines = [
        f"Each run trains up to {doc['max_steps']} steps, holds {doc['val_fraction']:.0%} of its budget out on "
        "positions of its own, and keeps the weights of its best evaluation on them (every "
        f"{doc['max_steps'] // 20} steps); the rates are on the test drops at {doc['snr_db']:g} dB, "
        f"{doc['samples_per_k']} samples per K = 3..8, mean of {_seeds(doc)} (each its own budget samples, "
        "batches and initial branch).",
        "",
    ]
    lines += fig4_lines(doc)
    lines += [
        "Per seed (test-drop rate / steps of the kept weights, chosen on validation):",
        "",
        "| task | strategy | " + " | ".join(str(b) for b in BUDGETS) + " |",
        "|---|---|" + "---|" * len(BUDGETS),
    ]
    for t, per in doc["per_seed"].items():
        for s, runs in per.items():
            cells = [
                " · ".join(f"{r:.2f} / {n}" for r, n in zip(runs[str(b)], doc["best_steps"][t][s][str(b)]))
                if str(b) in runs
                else "–"
                for b in BUDGETS
            ]
            lines.append(f"| {t} | {STRATEGY_LABELS[s]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(t2: dict, f4: dict, t3: dict, f5: dict, checkpoint: str) -> str:
    m10 = {m: _avg(t2, m, 10.0) for m in ("mtl", "stl", "cep", "dsc", "zf", "wmmse", "lmmse")}
    ratio_params = t2["params"]["mtl"]["total"] / t2["params"]["stl"]["total"]
    lines = [
        f"# wifoe paper benchmarks (MTL checkpoint `{checkpoint}`)",
        "",
        "## Table II analogue: sum rate (bit/s/Hz) at 10 dB, test drops, mean over K = 3..8",
        "",
        "LMMSE: classical reference with the task's L random pilots, LMMSE estimation (train-set covariance) "
        "and WMMSE on the estimate, fed back **unquantized**.",
        "",
        "| task | ZF | WMMSE | LMMSE | DSC | CEP | STL | MTL | MTL ÷ WMMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in PRETRAIN:
        r = t2["rates"][f"{t}@10"]
        lines.append(
            f"| {t} | {r['zf']:.2f} | {r['wmmse']:.2f} | {r['lmmse']:.2f} | {r['dsc']:.2f} | {r['cep']:.2f} | "
            f"{r['stl']:.2f} | {r['mtl']:.2f} | {r['mtl'] / r['wmmse']:.3f} |"
        )
    lines.append(
        f"| **mean** | {m10['zf']:.2f} | {m10['wmmse']:.2f} | {m10['lmmse']:.2f} | {m10['dsc']:.2f} | "
        f"{m10['cep']:.2f} | {m10['stl']:.2f} | **{m10['mtl']:.2f}** | {m10['mtl'] / m10['wmmse']:.3f} |"
    )
    p = t2["params"]
    lines += [
        "",
        f"Parameters, total over the 9 tasks: MTL {p['mtl']['total'] / 1e6:.2f} M (trunk "
        f"{p['mtl']['trunk'] / 1e6:.2f} M + branches), STL {p['stl']['total'] / 1e6:.2f} M, "
        f"CEP {p['cep']['total'] / 1e6:.2f} M, DSC {p['dsc']['total'] / 1e6:.2f} M. FLOPs per sample (K = 8, "
        f"mean over tasks): "
        + ", ".join(f"{m.upper()} {sum(v.values()) / len(v) / 1e6:.2f} M" for m, v in t2["flops"].items())
        + ".",
        "",
    ]
    lines += [
        "Targets:",
        "",
        f"- MTL mean ≥ STL mean: {m10['mtl']:.2f} vs {m10['stl']:.2f} — {_ok(m10['mtl'] >= m10['stl'])}",
        f"- MTL parameters ≤ 1/4 of STL's: {ratio_params:.3f} — {_ok(ratio_params <= 0.25)}",
        f"- MTL ≥ 90% of perfect-CSI WMMSE: {m10['mtl'] / m10['wmmse']:.3f} — {_ok(m10['mtl'] >= 0.9 * m10['wmmse'])} "
        f"(the classical LMMSE reference with the same pilots and unquantized feedback reaches "
        f"{m10['lmmse'] / m10['wmmse']:.3f})",
        f"- MTL ahead of CEP ({m10['cep']:.2f}) and DSC ({m10['dsc']:.2f}): "
        f"{_ok(m10['mtl'] > max(m10['cep'], m10['dsc']))}",
        "",
    ]
    lines += [
        "## Fig. 3 analogue: mean over T1–T9 per SNR (docs/figures/wifoe_fig3.png)",
        "",
        "| SNR (dB) | " + " | ".join(m.upper() for m in FIG3) + " |",
        "|---" * (len(FIG3) + 1) + "|",
    ]
    for s in SNRS:
        lines.append(f"| {s:g} | " + " | ".join(f"{_avg(t2, m, s):.2f}" for m in FIG3) + " |")
    lines += [
        "",
        "## Fig. 4 analogue: unseen tasks, sum rate at 10 dB vs training samples (docs/figures/wifoe_fig4.png)",
        "",
    ]
    lines += fig4_lines(f4)
    lines += [
        "## Table III analogue: zero-shot domain generalization to UMa (G1–G3), mean sum rate",
        "",
        "| SNR | method | source–source | source–target | D_sub | D_div |",
        "|---|---|---|---|---|---|",
    ]
    for s, row in t3.items():
        for m in ("mtl", "stl", "cep", "dsc"):
            r = row[m]
            lines.append(
                f"| {s} dB | {m.upper()} | {r['source_source']:.2f} | {r['source_target']:.2f} | "
                f"{r['d_sub']:.2f} | {100 * r['d_div']:.1f}% |"
            )
        lines.append(f"| {s} dB | target–target (STL on G) | {row['target_target_stl']:.2f} | | | |")
    smallest = all(t3[s]["mtl"]["d_div"] < min(t3[s][m]["d_div"] for m in ("stl", "cep", "dsc")) for s in t3)
    lines += [
        "",
        f"- MTL's relative degradation smaller than STL's, CEP's and DSC's at every SNR: {_ok(smallest)}",
        "",
    ]
    lines += [
        "## Fig. 5 analogue: MoE vs dense trunk scaling (docs/figures/wifoe_fig5.png)",
        "",
        "| trunk | experts (top-k) | trunk params | BS MFLOPs (K = 8) | rate @10 dB |",
        "|---|---|---|---|---|",
    ]
    for n, r in f5.items():
        ex = f"{r['experts']} (top-{r['top_k']})" if r["experts"] else "dense"
        lines.append(
            f"| {n} | {ex} | {r['trunk_params'] / 1e6:.3f} M | {r['bs_flops_k8'] / 1e6:.2f} | {r['rate']:.2f} |"
        )
    eq = f5["moe-e4"]["rate"] > f5["dense-512"]["rate"]
    lines += [
        "",
        f"- MoE (4 experts, top-2, FFN 256) beats the dense trunk of equal FLOPs (FFN 512): "
        f"{f5['moe-e4']['rate']:.2f} vs {f5['dense-512']['rate']:.2f} — {_ok(eq)}",
        "",
    ]
    return "\n".join(lines)


def render(folder: Path, out: Path, checkpoint: str = "shipped wifoe") -> tuple[str, list[Path]]:
    t2, f4, t3, f5 = (
        json.loads((folder / f).read_text())
        for f in ("table2_fig3.json", "fig4.json", "table3.json", "fig5.json")
    )
    plots(t2, f4, f5, out)
    md, pngs = summary(t2, f4, t3, f5, checkpoint), [out / f"wifoe_fig{i}.png" for i in (3, 4, 5)]
    val = folder / "fig4_val" / "fig4.json"  # benchmarks/wifoe_fig4_val.py's default output, when it was run
    if val.exists():
        doc = json.loads(val.read_text())
        pngs.append(out / "wifoe_fig4_val.png")
        plot_fig4(doc, pngs[-1], fig4_val_title(doc))
        md += (
            f"\n## {FIG4_VAL_HEADING} (wifoe_fig4_val.png)\n\n"
            f"Data: `{val.parent}`, produced by `{FIG4_VAL_COMMAND}`.\n\n" + fig4_val_markdown(doc) + "\n"
        )
    return md, pngs
