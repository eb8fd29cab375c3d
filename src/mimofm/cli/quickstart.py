"""`mimofm quickstart`: the shipped neural precoders beside the classical ones and the DPC bound."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mimofm._io import write_json
from mimofm.cli._common import clean_errors, console, results_table, tradeoff_table
from mimofm.reports import write_html

__all__ = ["quickstart_command"]


@clean_errors
def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), help="Report folder."),
    samples: int = typer.Option(300, help="Multi-user samples per site."),
    seed: int = typer.Option(0, help="Seed of the user draws."),
) -> None:
    """Shipped neural precoders (fm, papp, papp-hbf) zero-shot beside MRT, ZF, ZF-WF, RZF, WMMSE and the DPC
    bound on the bundled held-out sites over an SNR sweep; fm's rate-target mode; wifoe end to end on a 3GPP
    task; a report folder with plots."""
    from mimofm.channels.bundled import bundled_sites
    from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
    from mimofm.evaluation.plots import plot_complexity_vs_rate, plot_sum_rate_vs_snr, plot_tradeoff
    from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff
    from mimofm.models.zoo import load_fm, shipped_checkpoint

    t0 = time.perf_counter()
    sets = bundled_sites()

    neural = [n for n in ("fm", "papp", "papp-hbf") if shipped_checkpoint(n).with_suffix(".json").exists()]
    cfg = EvalConfig(
        precoders=["mrt", "zf", "zf-wf", "rzf", "wmmse", *neural, "dpc"],
        data=[f"bundled:{s.name}" for s in sets],
        snr_db=[0.0, 10.0, 20.0, 30.0],
        num_ue=4,
        samples=samples,
        seed=seed,
    )
    with console.status("evaluating the bundled sites") as status:
        result = evaluate_sets(sets, cfg, progress=lambda m: status.update(m))
    console.print(
        results_table(result, f"mimofm quickstart · 4 users · 64 antennas · {samples} samples per site")
    )
    console.print(
        "[dim]bundled sites: held-out Sionna RT sites (etoile, florence scenes never used for "
        "training); regenerate with `make bundled-sites`[/]"
    )
    write_json(out / "results.json", result)
    pngs = [
        plot_sum_rate_vs_snr(result, out / "sum_rate_vs_snr.png"),
        plot_complexity_vs_rate(result, out / "complexity_vs_rate.png", 20.0),
    ]
    trade = None
    if "fm" in neural:
        tcfg = TradeoffConfig(
            snr_db=[20.0],
            betas=[0.2, 0.5, 0.8],
            samples=min(samples, 100),
            greedy_samples=3,
            seed=seed,
            positions="all",
        )
        with console.status("fm rate-target mode vs QoS power minimization") as status:
            trade = evaluate_tradeoff(sets, tcfg, load_fm(None), progress=lambda m: status.update(m))
        console.print(
            tradeoff_table(trade, "fm rate-target mode at 20 dB (energy vs QoS power minimization)")
        )
        write_json(out / "tradeoff.json", trade)
        pngs.append(plot_tradeoff(trade, out / "fm_energy_vs_rate.png"))
    report = _report(result, trade, pngs, samples, seed)
    if shipped_checkpoint("wifoe").with_suffix(".json").exists():
        report += _wifoe(out, min(samples, 50), seed)
    (out / "report.md").write_text(report)

    write_html(out / "report.md", command=f"mimofm quickstart --out {out} --samples {samples} --seed {seed}")
    console.print(
        f"report folder: [bold]{out}[/] (report.md, report.html, results.json, "
        f"{', '.join(p.name for p in pngs)}) · "
        f"{time.perf_counter() - t0:.1f} s"
    )


def _wifoe(out: Path, samples: int, seed: int, task: str = "T4") -> str:
    """The shipped wifoe end to end on one 3GPP task's test drops (generated with Sionna on first use)."""
    from mimofm.evaluation.wifoe_eval import checkpoint_pilot_rule, checkpoint_snrs, evaluate_wifoe
    from mimofm.models.zoo import load_wifoe, shipped_checkpoint

    stem = shipped_checkpoint("wifoe")
    snrs, conv = checkpoint_snrs(stem)  # the shipped model's own operating point
    fixed, offset, rule_conv = checkpoint_pilot_rule(stem)
    with console.status(f"wifoe on 3GPP task {task} (channels generated with Sionna on first use)") as status:
        rows = evaluate_wifoe(
            load_wifoe(None),
            [task],
            snrs,
            samples=samples,
            seed=seed,
            progress=lambda m: status.update(f"wifoe {m}"),
            convention=conv,
            pilot_snr_db=fixed,
            pilot_snr_offset_db=offset,
            offset_convention=rule_conv,
        )
    write_json(out / "wifoe.json", {"task": task, "samples_per_k": samples, "rows": rows})
    lines = [
        "",
        f"## wifoe end to end on 3GPP task {task}",
        "",
        f"The shipped wifoe on task {task}'s test drops: the base station sends learned pilots, each user "
        f"feeds back B bits, and the network precodes from that feedback alone; mean sum rate (bit/s/Hz) "
        f"over K = 3..8 users, {samples} samples per K, {conv} SNR. ZF and WMMSE are given the perfect "
        "channel, so wifoe ÷ WMMSE is what the pilots, the B-bit feedback and the network cost together "
        "(1.000: nothing lost); the pilot SNR is the checkpoint's own rule.",
        "",
        "| SNR | pilot SNR | wifoe | ZF | WMMSE | wifoe ÷ WMMSE |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['snr_db']:g} dB | {r['resolved_pilot_snr_db']:.1f} dB | {r['rate']:.2f} | {r['zf']:.2f} | "
            f"{r['wmmse']:.2f} | {r['ratio_to_wmmse']:.3f} |"
        )
    console.print("\n".join(lines[3:]))
    return "\n".join(lines) + "\n"


def _report(result: dict, trade: dict | None, pngs: list[Path], samples: int, seed: int) -> str:
    rows = result["results"]
    pre = list(dict.fromkeys(r["precoder"] for r in rows))
    captions = {
        "sum_rate_vs_snr": "Mean sum rate against the median single-user SNR, one column per held-out site "
        "(bands: 95% confidence interval); bottom row: each precoder's sum rate ÷ WMMSE's on the same "
        "samples (DPC, the capacity bound, lies above 1).",
        "complexity_vs_rate": "Sum rate ÷ WMMSE at 20 dB (mean over the sites) against the measured time per "
        "precoder on this CPU (batched); up and to the left is better.",
        "fm_energy_vs_rate": "fm's energy ÷ the least energy that reaches fm's own achieved rates, with "
        "every antenna on (QoS power minimization) or with greedy antenna switch-off, against the request "
        "level β; below 1, fm spends less.",
    }
    lines = [
        "# mimofm quickstart",
        "",
        "The shipped neural precoders zero-shot beside the classical precoders and the DPC capacity bound, "
        "on the bundled held-out ray-traced sites (never used for training): 4 users × 64 antennas, "
        "site-median SNR, the same (paired) user draws for every precoder.",
        "",
        "## Sum rate on the held-out sites",
        "",
        "Mean sum rate (bit/s/Hz):",
        "",
        "| site | SNR | " + " | ".join(pre) + " |",
        "|---|---|" + "---|" * len(pre),
    ]
    for site, snr in dict.fromkeys((r["site"], r["snr_db"]) for r in rows):
        v = {r["precoder"]: r["sum_rate_mean"] for r in rows if (r["site"], r["snr_db"]) == (site, snr)}
        lines.append(f"| {site} | {snr:g} dB | " + " | ".join(f"{v[p]:.2f}" for p in pre) + " |")
    if trade is not None:
        lines += [
            "",
            "## fm rate-target mode",
            "",
            "fm can also serve per-user rate requests R*_u instead of maximizing the sum rate; it then "
            "switches antennas off and scales its power to save energy. Requests are drawn at random and "
            "scaled to β × the sample's WMMSE sum rate, at 20 dB; means over the samples. *Rate error*: the "
            "mean relative per-user error |r_u − R*_u| / max(R*_u, 0.1) (0%: every request met exactly). "
            "Energy E = γ·P_TX + P_RF·(antennas on) with P_TX = 20 W, P_RF = 1 W; the last column is the "
            "least energy QoS power minimization needs, all antennas on, to reach the rates fm achieved.",
            "",
            "| site | β | asked | fm got | fm rate error | fm energy (W) | QoS energy at fm's rates (W) |",
            "|---|---|---|---|---|---|---|",
        ]
        for site, beta in dict.fromkeys((r["site"], r["beta"]) for r in trade["results"]):
            sel = {r["method"]: r for r in trade["results"] if (r["site"], r["beta"]) == (site, beta)}
            fm, q = sel["fm"], sel["qos@fm-rates"]
            lines.append(
                f"| {site} | {beta} | {fm['requested_sum_rate_mean']:.2f} | "
                f"{fm['achieved_sum_rate_mean']:.2f} | "
                f"{100 * fm['rel_rate_error_mean']:.1f}% | {fm['energy_w_mean']:.1f} | "
                f"{q.get('energy_w_mean') or float('nan'):.1f} |"
            )
    lines += ["", "## Figures", ""]
    for p in pngs:
        lines += [f'![{p.stem}]({p.name} "{captions.get(p.stem, p.stem)}")', ""]
    return "\n".join(lines)
