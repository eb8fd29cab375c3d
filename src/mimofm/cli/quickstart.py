"""`mimofm quickstart`: the classical precoders and the DPC bound on the bundled sites."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mimofm._io import write_json
from mimofm.channels.bundled import bundled_sites
from mimofm.cli._common import clean_errors, console, results_table
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.evaluation.plots import plot_sum_rate_vs_snr


@clean_errors
def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), help="Report folder."),
    samples: int = typer.Option(300, help="Multi-user samples per site."),
    seed: int = typer.Option(0, help="Seed of the user draws."),
) -> None:
    """Compare MRT, ZF, ZF-WF, RZF, WMMSE and the DPC bound on the bundled sites over an SNR sweep."""
    t0 = time.perf_counter()
    sets = bundled_sites()
    from mimofm.models.loading import shipped_checkpoint

    neural = ["fm"] if shipped_checkpoint("fm").with_suffix(".json").exists() else []
    cfg = EvalConfig(precoders=["mrt", "zf", "zf-wf", "rzf", "wmmse", *neural, "dpc"], data=[f"bundled:{s.name}" for s in sets],
                     snr_db=[0.0, 10.0, 20.0, 30.0], num_ue=4, samples=samples, seed=seed)
    with console.status("evaluating the bundled sites") as status:
        result = evaluate_sets(sets, cfg, progress=lambda m: status.update(m))
    console.print(results_table(result, f"mimofm quickstart · 4 users · 64 antennas · {samples} samples per site"))
    console.print("[dim]bundled sites: held-out Sionna RT sites (etoile, florence scenes never used for "
                  "training); regenerate with `make bundled-sites`[/]")
    write_json(out / "results.json", result)
    png = plot_sum_rate_vs_snr(result, out / "sum_rate_vs_snr.png")
    console.print(f"report folder: [bold]{out}[/] (results.json, {png.name}) · {time.perf_counter() - t0:.1f} s")
