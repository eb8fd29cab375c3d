"""`mimofm bench`: latency (PyTorch and ONNX Runtime, the real-time budget), scaling in N_T and N_U, training
cost."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from mimofm._io import write_json
from mimofm.channels.bundled import bundled_sites
from mimofm.cli._common import (
    Listing,
    OutputFormat,
    clean_errors,
    console,
    emit,
    format_option,
    message_console,
    parse_floats,
)
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.evaluation.latency import LatencyConfig, latency
from mimofm.evaluation.scaling import ScalingConfig, scaling
from mimofm.evaluation.training_cost import training_cost
from mimofm.experiments.benchmarks_page import PageInputs, benchmarks_page
from mimofm.models.zoo import shipped_checkpoint
from mimofm.reports import write_html

__all__ = ["bench_app", "cost_command", "latency_command", "scaling_command", "suite_command"]

bench_app = typer.Typer(add_completion=False, no_args_is_help=True)


@bench_app.command("latency")
@clean_errors
def latency_command(
    methods: str | None = typer.Option(
        None,
        help="Contenders (registry names, fm-onnx, papp-onnx, wifoe, "
        "wifoe-onnx); default: LatencyConfig's list (classical, neural, ONNX and "
        "refined precoders).",
    ),
    batches: str = typer.Option("1,1024", help="Batch sizes."),
    repeats: int = typer.Option(5, help="Timed calls per point (median)."),
    threads: int = typer.Option(
        0, help="CPU threads for PyTorch and ONNX Runtime (0: PyTorch's default; 1: one core)."
    ),
    quick: bool = typer.Option(False, help="Batches 1 and 64, 2 repeats (seconds)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results JSON here."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Time per precoder at each batch, as a ratio to WMMSE in the same run, and precoders/s vs a cell's
    need."""
    cfg = LatencyConfig(batches=[int(b) for b in parse_floats(batches, "--batches")], repeats=repeats)
    if methods is not None:
        cfg.methods = [m.strip() for m in methods.split(",") if m.strip()]
    if quick:
        cfg.batches, cfg.repeats = [1, 64], 2
    if threads < 0:
        raise MimofmInputError(f"--threads must be >= 0, got {threads}")
    cfg.threads = threads
    out = message_console(fmt)
    with out.status("timing") as status:
        res = latency(cfg, progress=lambda m: status.update(m))
    header = ["method", "batch", "µs / precoder", "÷ WMMSE", "precoders / s", "of a cell's need"]
    listing = Listing(
        header=header,
        title=f"time per precoder · {cfg.num_ue} users × {cfg.num_bs_ant} antennas · CPU, "
        f"{res['machine']['threads']} threads",
        right=frozenset(header),
        no_wrap=False,
    )
    for r in res["rows"]:
        listing.rows.append(
            [
                r["method"],
                str(r["batch"]),
                f"{r['seconds_per_precoder'] * 1e6:.1f}",
                f"{r['ratio_to_wmmse']:.3f}",
                f"{r['precoders_per_second']:.0f}",
                f"{100 * r['budget_fraction']:.1f}%",
            ]
        )
    listing.caption = (
        f"need: {res['needed_per_second']:,} precoders/s per cell (100 MHz NR, 30 kHz SCS, 4-RB "
        "subbands, 0.5 ms slots); the ONNX contenders include the float64 K×K step forming W"
    )
    emit(fmt, listing, res, res["rows"])
    if json_out:
        write_json(json_out, res)
        out.print(f"results written to [bold]{json_out}[/]")


@bench_app.command("scaling")
@clean_errors
def scaling_command(
    antennas: str = typer.Option("16,32,64,128,256", help="N_T sweep (at --users-fixed users)."),
    users: str = typer.Option("2,4,8,16", help="N_U sweep (at --antennas-fixed antennas)."),
    users_fixed: int = typer.Option(4, help="N_U of the antenna sweep."),
    antennas_fixed: int = typer.Option(64, help="N_T of the user sweep."),
    methods: str = typer.Option("mrt,zf,rzf,wmmse,fm,papp", help="Registry precoders and fm, papp."),
    batch: int = typer.Option(256, help="Channels per point (timed as one batched call; rates averaged)."),
    repeats: int = typer.Option(3, help="Timed calls per point (median)."),
    wifoe_task: str = typer.Option("T4", help="3GPP task of the wifoe user sweep ('' for none)."),
    quick: bool = typer.Option(False, help="N_T 16,64, N_U 2,4, batch 32, 1 repeat (about 20 s)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results JSON here."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Time per precoder and sum rate ÷ WMMSE as N_T and N_U grow (neural models where they can)."""
    ints = lambda s, flag: [int(x) for x in parse_floats(s, flag)]  # noqa: E731
    cfg = ScalingConfig(
        antennas=ints(antennas, "--antennas"),
        users=ints(users, "--users"),
        users_fixed=users_fixed,
        antennas_fixed=antennas_fixed,
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        batch=batch,
        repeats=repeats,
        wifoe_task=wifoe_task or None,
    )
    if quick:
        q = ScalingConfig.quick()
        cfg.antennas, cfg.users, cfg.batch, cfg.repeats = q.antennas, q.users, q.batch, q.repeats
    out = message_console(fmt)
    with out.status("scaling") as status:
        res = scaling(cfg, progress=lambda m: status.update(m))
    listing = Listing(
        header=["sweep", "N_T", "N_U", "method", "µs / precoder", "time ÷ WMMSE", "rate ÷ WMMSE", "note"],
        title=f"scaling · CPU, {res['machine']['threads']} threads · batch {cfg.batch}",
        right=frozenset(["N_T", "N_U", "µs / precoder", "time ÷ WMMSE", "rate ÷ WMMSE"]),
        no_wrap=False,
    )
    for r in res["rows"]:
        ratio = "-" if r["ratio_to_wmmse"] is None else f"{r['ratio_to_wmmse']:.3f}"
        listing.rows.append(
            [
                r["sweep"],
                str(r["num_bs_ant"]),
                str(r["num_ue"]),
                r["method"],
                f"{r['seconds_per_precoder'] * 1e6:.1f}",
                f"{r['time_ratio_to_wmmse']:.3f}",
                ratio,
                r["note"],
            ]
        )
    listing.caption = (
        f"N_T sweep at N_U = {cfg.users_fixed}, N_U sweep at N_T = {cfg.antennas_fixed}: clustered channels, "
        "10 dB; fm/papp serve the size they were trained at (elsewhere: their architecture with random "
        f"weights, timed only); wifoe: end to end on {cfg.wifoe_task}'s test drops at "
        f"{cfg.wifoe_snr_db:g} dB received (pilots by the checkpoint's rule) vs perfect-CSI WMMSE"
    )
    emit(fmt, listing, res, res["rows"])
    if json_out:
        write_json(json_out, res)
        out.print(f"results written to [bold]{json_out}[/]")


@bench_app.command("cost")
@clean_errors
def cost_command(
    json_out: Path | None = typer.Option(None, "--json", help="Write the rows JSON here."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Training cost of the shipped checkpoints (steps, samples, wall-clock, hardware) from their cards."""
    rows = training_cost()
    listing = Listing(
        header=["checkpoint", "steps", "samples", "wall-clock", "hardware", "quality reached"],
        title="training cost of the shipped checkpoints (from their cards)",
        right=frozenset(["steps", "samples", "wall-clock"]),
        no_wrap=False,
    )
    for r in rows:
        samples = "?" if r["samples"] is None else f"{r['samples']:,}"
        hw = f"{r['device']} ×{r['threads']} threads, {r['world_size']} proc, {r['precision']}"
        listing.rows.append(
            [r["name"], str(r["steps"]), samples, f"{r['seconds'] / 60:.1f} min", hw, r["quality"]]
        )
    emit(fmt, listing, {"rows": rows}, rows)
    if json_out:
        write_json(json_out, {"rows": rows})
        message_console(fmt).print(f"results written to [bold]{json_out}[/]")


@bench_app.command("suite")
@clean_errors
def suite_command(
    out: Path = typer.Option(Path("runs/bench"), help="Folder for the JSONs, the plots and BENCHMARKS.md."),
    quick: bool = typer.Option(
        False,
        help="Smoke check in a few minutes on 2 cores: 100 samples per site, quick latency and scaling.",
    ),
    samples: int = typer.Option(1000, help="Multi-user samples per site and SNR (full mode)."),
) -> None:
    """Quality on the bundled held-out sites, latency, scaling and training cost in one run, then the page."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    n = 100 if quick else samples
    sets = bundled_sites()
    neural = [m for m in ("fm", "papp", "papp-hbf") if shipped_checkpoint(m).with_suffix(".json").exists()]
    ecfg = EvalConfig(
        precoders=["mrt", "zf", "zf-wf", "rzf", "wmmse", *neural, "dpc"],
        data=[f"bundled:{s.name}" for s in sets],
        snr_db=[0.0, 10.0, 20.0, 30.0],
        samples=n,
        positions="test",
        seed=0,
    )
    lcfg = LatencyConfig()
    scfg = ScalingConfig.quick() if quick else ScalingConfig()
    if quick:
        lcfg.batches, lcfg.repeats = [1, 64], 2
    with console.status("benchmark suite") as status:
        write_json(
            out / "eval.json", evaluate_sets(sets, ecfg, progress=lambda m: status.update(f"quality · {m}"))
        )
        write_json(out / "latency.json", latency(lcfg, progress=lambda m: status.update(f"latency · {m}")))
        write_json(out / "scaling.json", scaling(scfg, progress=lambda m: status.update(f"scaling · {m}")))
    cmd = f"mimofm bench suite --out {out}" + (" --quick" if quick else f" --samples {n}")
    inputs = PageInputs(
        eval=out / "eval.json",
        eval_command=cmd,
        latency=out / "latency.json",
        latency_command=cmd,
        scaling=out / "scaling.json",
        scaling_command=cmd,
        figures=out,
        page_dir=out,
    )
    page = benchmarks_page(inputs, made=f"`{cmd}`")
    (out / "BENCHMARKS.md").write_text(page + "\n")

    write_html(out / "BENCHMARKS.md")
    console.print(
        f"benchmark page: [bold]{out / 'BENCHMARKS.md'}[/] (and .html, the JSONs, scaling.png) · "
        f"{time.perf_counter() - t0:.0f} s"
    )
