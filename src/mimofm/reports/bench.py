"""Markdown sections and plots of the `mimofm bench` results: scaling in N_T/N_U and training cost."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mimofm.reports.plots import plt, savefig

__all__ = ["cost_markdown", "scaling_figure", "scaling_markdown", "tradeoff_markdown"]


def _sweeps(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in doc["rows"]:
        out[r["sweep"]].append(r)
    return out


def scaling_markdown(doc: dict, command: str, figure: str | None = None) -> list[str]:
    """One table per sweep: per size, each method's ``rate ÷ WMMSE · time ÷ WMMSE`` and WMMSE's µs."""
    c, m = doc["config"], doc["machine"]
    out = [
        "## Scaling in N_T and N_U (CPU)",
        "",
        f"Each point: {c['batch']} seeded clustered channels (median single-user SNR 10 dB) precoded by "
        "every "
        "contender; cells are **sum rate ÷ WMMSE · time ÷ WMMSE** on the same channels in the same run "
        "(median of "
        f"{c['repeats']} batched calls ÷ batch). fm and papp serve the size they were trained at (4 × 64): "
        "their "
        "input layers are sized by K and N (fm: the 2N+1 CSI embedding and the K-wide rate token; papp: the "
        "CNN "
        "feature over K × N), so elsewhere their architecture is timed with random weights (`-` for the "
        "rate) — "
        "quality there needs a model trained at that size. wifoe's branch serves any K: its row runs the "
        "shipped "
        f"checkpoint end to end (pilots with noise, B-bit feedback) on {c['wifoe_task']}'s test drops at "
        f"{c['wifoe_snr_db']:g} dB received (pilots by the checkpoint's rule) against perfect-CSI WMMSE; it "
        "was "
        "trained on K = 3..8.",
        "",
    ]
    for sweep, rows in _sweeps(doc).items():
        methods = list(dict.fromkeys(r["method"] for r in rows))
        sizes = list(dict.fromkeys((r["num_bs_ant"], r["num_ue"]) for r in rows))
        cell = {(r["num_bs_ant"], r["num_ue"], r["method"]): r for r in rows}
        out += [
            f"**{sweep}**",
            "",
            "| N_T | N_U | WMMSE µs | " + " | ".join(x for x in methods if x != "wmmse") + " |",
            "|---|---|---|" + "---|" * (len(methods) - 1),
        ]
        for n, k in sizes:
            cells = []
            for x in methods:
                if x == "wmmse":
                    continue
                r = cell.get((n, k, x))
                if r is None:
                    cells.append("")
                    continue
                rate = "-" if r["ratio_to_wmmse"] is None else f"{r['ratio_to_wmmse']:.3f}"
                cells.append(f"{rate} · {r['time_ratio_to_wmmse']:.3f}")
            out.append(
                f"| {n} | {k} | {cell[(n, k, 'wmmse')]['seconds_per_precoder'] * 1e6:.0f} | "
                + " | ".join(cells)
                + " |"
            )
        out.append("")
    if figure:
        out += [f"![scaling]({figure})", ""]
    out += [
        f"Command: `{command}`  ",
        f"Machine: {m['platform']}, torch {m['torch']}, {m['threads']} threads, {m['device']}.",
        "",
    ]
    return out


def scaling_figure(doc: dict, path: Path) -> Path:
    """2 × 2: time per precoder (log) and rate ÷ WMMSE against N_T (left) and N_U (right); a colour, marker
    and line style per method."""
    from mimofm.evaluation.plots import method_styles  # deferred: the page's Markdown needs no plots

    sweeps = _sweeps(doc)
    styles = method_styles(list(dict.fromkeys(r["method"] for r in doc["rows"])))
    fig, ax = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for col, (sweep, xkey, label) in enumerate(
        (("N_T", "num_bs_ant", "BS antennas N_T (N_U = 4)"), ("N_U", "num_ue", "users N_U (N_T = 64)"))
    ):
        rows = sweeps.get(sweep, [])
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["method"] == method]
            xs = [r[xkey] for r in mine]
            ax[0, col].plot(
                xs, [r["seconds_per_precoder"] * 1e6 for r in mine], label=method, **styles[method]
            )
            q = [(r[xkey], r["ratio_to_wmmse"]) for r in mine if r["ratio_to_wmmse"] is not None]
            if q:
                ax[1, col].plot(*zip(*q), label=method, **styles[method])
        wf = [
            r
            for r in sweeps.get(next((s for s in sweeps if s.startswith("wifoe")), ""), [])
            if r["method"] == "wifoe"
        ]
        if col == 1 and wf:
            ax[1, 1].plot(
                [r["num_ue"] for r in wf],
                [r["ratio_to_wmmse"] for r in wf],
                "s--",
                color="k",
                label=f"wifoe (end to end, {doc['config']['wifoe_task']})",
            )
            ax[0, 1].plot(
                [r["num_ue"] for r in wf],
                [r["seconds_per_precoder"] * 1e6 for r in wf],
                "s--",
                color="k",
                label=f"wifoe (end to end, {doc['config']['wifoe_task']})",
            )
        ax[0, col].set_yscale("log")
        ax[0, col].set_xscale("log", base=2)
        ax[0, col].set_ylabel("µs per precoder")
        ax[1, col].set_ylabel("sum rate ÷ WMMSE")
        ax[1, col].set_xlabel(label)
        for a in ax[:, col]:
            a.grid(alpha=0.3)
    handles = {}
    for a in ax.flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.setdefault(lab.split(" (")[0], h)
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8)
    fig.suptitle(
        f"scaling · CPU, {doc['machine']['threads']} threads · fm/papp rates only at their trained size · "
        f"wifoe end to end on {doc['config']['wifoe_task']} (vs perfect-CSI WMMSE on the same drops)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return savefig(fig, path)


def cost_markdown(rows: list[dict], command: str) -> list[str]:
    """The training-cost table, one row per checkpoint (``rows``: ``training_cost()``)."""
    out = [
        "## Training cost of the shipped checkpoints",
        "",
        "From each checkpoint's card: the steps and channel samples of its recipe, the training loop's "
        "wall-clock, "
        "the hardware `--ship-as` recorded, and the held-out quality the card carries. Samples = steps × the "
        "samples one step draws over all processes (cards written before the loop recorded it: recomputed "
        "from "
        "the saved recipe, marked *). Every checkpoint was trained once from scratch with its command; no "
        "hyper-parameter search is included in these times.",
        "",
        "| checkpoint | steps | channel samples | wall-clock | hardware | quality reached | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        samples = "?" if r["samples"] is None else f"{r['samples']:,}" + ("*" if r["derived"] else "")
        hw = f"{r['device']}, {r['threads']} threads, {r['world_size']} process, {r['precision']}"
        out.append(
            f"| {r['name']} | {r['steps']:,} | {samples} | {r['seconds'] / 60:.1f} min | {hw} | "
            f"{r['quality']} | "
            f"`{r['command']}` |"
        )
    return out + ["", f"Command: `{command}`", ""]


def _share(x: float) -> str:
    """A fraction as a percentage; ``–`` for a result without it (made before it was recorded)."""
    return "–" if x != x else f"{100 * x:.0f}%"


def tradeoff_markdown(variants: dict[str, dict], command: str) -> list[str]:
    """fm's rate-target mode, one row per (variant, SNR, β), means over the sites of each
    ``mimofm eval --rate-targets`` result in ``variants`` ``{label: result JSON}``."""
    out = [
        "## fm rate-target mode: exact power layer vs the network's powers (held-out sites)",
        "",
        "Zero-shot (shipped checkpoint) on the bundled held-out sites' test positions, random requests "
        "R*_u ~ U(0,1) scaled to β × the sample's WMMSE sum rate; means over the sites. Rate error: mean "
        "relative "
        "per-user error |r_u − R*_u| / max(R*_u, 0.1), over all requests and over the requests QoS power "
        "minimization can meet at all. Energy E = γ·P_TX + P_RF·(antennas on) (P_TX = 20 W, P_RF = 1 W); QoS "
        "/ "
        "greedy: least energy reaching fm's achieved rates with every antenna on / with greedy antenna "
        "switch-off (greedy on the first samples only). fm on QoS beams: the share of samples whose "
        "requests fm's own beams could not meet but the QoS power-minimizing beams could, which the exact "
        "layer then transmits (`mimofm.precoders.structured.exact_rates_or_keep`). The fm section's Fig. 3 "
        "analogue above uses the exact layer (the default) at 20 dB.",
        "",
        "| fm powers | SNR | β | rate error | error (QoS-feasible) | fm W | antennas | fm ÷ QoS | fm ÷ "
        "greedy | "
        "QoS feasible | fm on QoS beams |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, doc in variants.items():
        rows = doc["results"]
        keys = list(dict.fromkeys((r["snr_db"], r["beta"]) for r in rows))
        for snr, beta in keys:
            sel = [r for r in rows if (r["snr_db"], r["beta"]) == (snr, beta)]

            def mean(method, key, sel=sel):
                v = [r[key] for r in sel if r["method"] == method and r.get(key) is not None]
                return sum(v) / len(v) if v else float("nan")

            out.append(
                f"| {label} | {snr:g} dB | {beta} | {100 * mean('fm', 'rel_rate_error_mean'):.1f}% | "
                f"{100 * mean('fm', 'rel_rate_error_feasible_mean'):.1f}% | "
                f"{mean('fm', 'energy_w_mean'):.1f} | "
                f"{mean('fm', 'antennas_on_mean'):.1f} | {mean('qos@fm-rates', 'fm_energy_ratio'):.3f} | "
                f"{mean('greedy@fm-rates', 'fm_energy_ratio'):.3f} | "
                f"{100 * mean('qos@requests', 'feasible_fraction'):.0f}% | "
                f"{_share(mean('fm', 'qos_beams_fraction'))} |"
            )
    return out + ["", f"Command: `{command}`", ""]
