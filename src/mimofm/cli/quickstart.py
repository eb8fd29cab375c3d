"""`mimofm quickstart`: the shipped neural precoders beside the classical ones and the DPC bound."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mimofm._io import write_json
from mimofm.channels.bundled import bundled_sites
from mimofm.cli._common import clean_errors, console, results_table, tradeoff_table
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.evaluation.plots import plot_complexity_vs_rate, plot_sum_rate_vs_snr, plot_tradeoff


@clean_errors
def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), help="Report folder."),
    samples: int = typer.Option(300, help="Multi-user samples per site."),
    seed: int = typer.Option(0, help="Seed of the user draws."),
) -> None:
    """Shipped neural precoders (fm, papp) zero-shot beside MRT, ZF, ZF-WF, RZF, WMMSE and the DPC bound on
    the bundled held-out sites over an SNR sweep; fm's rate-target mode; a report folder with plots."""
    t0 = time.perf_counter()
    sets = bundled_sites()
    from mimofm.models.loading import shipped_checkpoint

    neural = [n for n in ("fm", "papp") if shipped_checkpoint(n).with_suffix(".json").exists()]
    cfg = EvalConfig(precoders=["mrt", "zf", "zf-wf", "rzf", "wmmse", *neural, "dpc"], data=[f"bundled:{s.name}" for s in sets],
                     snr_db=[0.0, 10.0, 20.0, 30.0], num_ue=4, samples=samples, seed=seed)
    with console.status("evaluating the bundled sites") as status:
        result = evaluate_sets(sets, cfg, progress=lambda m: status.update(m))
    console.print(results_table(result, f"mimofm quickstart · 4 users · 64 antennas · {samples} samples per site"))
    console.print("[dim]bundled sites: held-out Sionna RT sites (etoile, florence scenes never used for "
                  "training); regenerate with `make bundled-sites`[/]")
    write_json(out / "results.json", result)
    pngs = [plot_sum_rate_vs_snr(result, out / "sum_rate_vs_snr.png"),
            plot_complexity_vs_rate(result, out / "complexity_vs_rate.png", 20.0)]
    trade = None
    if "fm" in neural:
        from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff
        from mimofm.models.loading import load_fm

        tcfg = TradeoffConfig(snr_db=[20.0], betas=[0.2, 0.5, 0.8], samples=min(samples, 100), greedy_samples=3,
                              seed=seed, positions="all")
        with console.status("fm rate-target mode vs QoS power minimization") as status:
            trade = evaluate_tradeoff(sets, tcfg, load_fm(None), progress=lambda m: status.update(m))
        console.print(tradeoff_table(trade, "fm rate-target mode at 20 dB (energy vs QoS power minimization)"))
        write_json(out / "tradeoff.json", trade)
        pngs.append(plot_tradeoff(trade, out / "fm_energy_vs_rate.png"))
    report = _report(result, trade, pngs, samples, seed)
    (out / "report.md").write_text(report)
    console.print(f"report folder: [bold]{out}[/] (report.md, results.json, {', '.join(p.name for p in pngs)}) · "
                  f"{time.perf_counter() - t0:.1f} s")


def _report(result: dict, trade: dict | None, pngs: list[Path], samples: int, seed: int) -> str:
    rows = result["results"]
    pre = list(dict.fromkeys(r["precoder"] for r in rows))
    lines = ["# mimofm quickstart", "",
             f"Command: `mimofm quickstart --samples {samples} --seed {seed}`. Bundled held-out sites, 4 users × 64 "
             "antennas, site-median SNR; mean sum rate (bit/s/Hz) over paired samples.", "",
             "| site | SNR | " + " | ".join(pre) + " |", "|---|---|" + "---|" * len(pre)]
    for site, snr in dict.fromkeys((r["site"], r["snr_db"]) for r in rows):
        v = {r["precoder"]: r["sum_rate_mean"] for r in rows if (r["site"], r["snr_db"]) == (site, snr)}
        lines.append(f"| {site} | {snr:g} dB | " + " | ".join(f"{v[p]:.2f}" for p in pre) + " |")
    if trade is not None:
        lines += ["", "fm rate-target mode (20 dB, random requests β·R_WMMSE): mean over samples.", "",
                  "| site | β | asked | fm got | fm rate error | fm energy (W) | QoS energy at fm's rates (W) |",
                  "|---|---|---|---|---|---|---|"]
        for site, beta in dict.fromkeys((r["site"], r["beta"]) for r in trade["results"]):
            sel = {r["method"]: r for r in trade["results"] if (r["site"], r["beta"]) == (site, beta)}
            fm, q = sel["fm"], sel["qos@fm-rates"]
            lines.append(f"| {site} | {beta} | {fm['requested_sum_rate_mean']:.2f} | {fm['achieved_sum_rate_mean']:.2f} | "
                         f"{100 * fm['rel_rate_error_mean']:.1f}% | {fm['energy_w_mean']:.1f} | "
                         f"{q.get('energy_w_mean') or float('nan'):.1f} |")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    return "\n".join(lines)
