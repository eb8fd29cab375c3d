"""`mimofm bench`: latency (PyTorch and ONNX Runtime, the real-time budget), scaling in N_T and N_U, training
cost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mimofm._io import write_json
from mimofm.cli._common import (
    Listing,
    OutputFormat,
    clean_errors,
    console,
    emit,
    format_option,
    import_options,
    layout_option,
    max_memory_option,
    message_console,
    parse_floats,
    print_read_as,
    subcarrier_option,
    var_option,
    work_progress,
)
from mimofm.core.errors import MimofmInputError
from mimofm.evaluation.classical_names import DEFAULT_METHODS
from mimofm.reports import write_html

if TYPE_CHECKING:
    from mimofm.evaluation.classical_speed import ClassicalSpeedConfig

__all__ = [
    "bench_app",
    "classical_command",
    "cost_command",
    "crossover_command",
    "latency_command",
    "scaling_command",
    "suite_command",
]

bench_app = typer.Typer(add_completion=False, no_args_is_help=True)


def _emit_and_save(fmt: OutputFormat, listing: Listing | None, res: dict, json_out: Path | None, out) -> None:
    """Print ``listing`` in ``fmt`` (``res`` and its rows for json/csv; None: print nothing) and write ``res``
    to ``json_out`` when given, saying so on ``out``."""
    if listing is not None:
        emit(fmt, listing, res, res["rows"])
    if json_out:
        write_json(json_out, res)
        out.print(f"results written to [bold]{json_out}[/]")


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
    from mimofm.evaluation.latency import LatencyConfig, latency

    cfg = LatencyConfig(batches=[int(b) for b in parse_floats(batches, "--batches")], repeats=repeats)
    if methods is not None:
        cfg.methods = [m.strip() for m in methods.split(",") if m.strip()]
    if quick:
        cfg.batches, cfg.repeats = [1, 64], 2
    if threads < 0:
        raise MimofmInputError(f"--threads must be >= 0, got {threads}")
    cfg.threads = threads
    out = message_console(fmt)
    with work_progress("timing", out) as (describe, steps):
        res = latency(cfg, progress=describe, steps=steps)
    header = ["method", "batch", "µs / precoder", "p99 µs", "÷ WMMSE", "precoders / s", "of a cell's need"]
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
                "" if r.get("p99_seconds") is None else f"{r['p99_seconds'] * 1e6:.1f}",
                f"{r['ratio_to_wmmse']:.3f}",
                f"{r['precoders_per_second']:.0f}",
                f"{100 * r['budget_fraction']:.1f}%",
            ]
        )
    listing.caption = (
        f"need: {res['needed_per_second']:,} precoders/s per cell (100 MHz NR, 30 kHz SCS, 4-RB "
        "subbands, 0.5 ms slots); fm-onnx's graph outputs W, papp-onnx includes the float64 K×K step "
        "forming W; batch 1: "
        "p50 and p99 of 200 calls after 10 warm-up calls"
    )
    _emit_and_save(fmt, listing, res, json_out, out)


def _numpy_reference(path: Path | None) -> dict | None:
    """The kernels of the NumPy reference file (default: the repository's benchmarks/numpy_reference.py), or
    None when there is no such file (an installed package without the repository)."""
    import importlib.util

    import mimofm

    if path is None:
        path = Path(mimofm.__file__).resolve().parents[2] / "benchmarks" / "numpy_reference.py"
        if not path.is_file():
            return None
    elif not path.is_file():
        raise MimofmInputError(f"--reference {path}: no such file")
    spec = importlib.util.spec_from_file_location("mimofm_numpy_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, "REFERENCES", None), dict):
        raise MimofmInputError(f"--reference {path} must define REFERENCES = {{method: function}}")
    return module.REFERENCES


def _bench_channels(data: Path | None, options, num_ue: int, batch: int, snr_db: float, seed: int, out):
    """``[batch, num_ue, N]`` SNR-scaled channels (site-median convention) from ``data`` or the first bundled
    held-out site's test positions, and the name of their source."""
    from mimofm.channels.bundled import bundled_sites
    from mimofm.channels.io import load_channel_files
    from mimofm.core.linkbudget import LinkBudget, SNRSpec
    from mimofm.evaluation.evaluate import sample_users

    if data is None:
        cs, positions = bundled_sites()[0], "test"
    else:
        [(cs, read_as)] = load_channel_files([data], options)
        print_read_as(data, read_as, out)
        positions = "all"
    scale, _ = SNRSpec(snr_db=snr_db, relative_to="site-median").scale_for(cs.h, LinkBudget())
    h = sample_users(cs, num_ue, batch, seed, positions) * scale  # [B, K, N]
    return h, f"{cs.name} ({positions} positions)"


def _classical_side_by_side(
    h, cfg: ClassicalSpeedConfig, reference: Path | None, sionna: bool, out, progress, steps=None
):
    """:func:`classical_speed` of ``cfg`` with the NumPy reference (when found) and Sionna's kernels (when
    ``sionna`` and installed), one precision after the other; ``steps(done, total)`` counts the timings
    of all precisions together."""
    from mimofm.evaluation.classical_speed import (
        ClassicalSpeedConfig,
        classical_speed,
        classical_speed_steps,
        sionna_kernels,
    )

    refs = {}
    numpy_ref = _numpy_reference(reference)
    if numpy_ref is None:
        out.print("[yellow]no NumPy reference (benchmarks/numpy_reference.py is not beside this install)[/]")
    else:
        refs["numpy"] = numpy_ref
    res: dict = {}
    parts = []
    for prec in cfg.precisions:
        sk = sionna_kernels(prec) if sionna else {}
        one = ClassicalSpeedConfig(cfg.methods, [prec], cfg.repeats, cfg.threads, cfg.device)
        parts.append((one, refs | ({"sionna": sk} if sk else {})))
    total = sum(classical_speed_steps(one, part_refs) for one, part_refs in parts)
    before = 0
    if steps is not None:
        steps(0, total)
    for one, part_refs in parts:

        def part_steps(done: int, _: int, base: int = before) -> None:
            if done and steps is not None:  # each part's (0, its total) is the whole's (before, total)
                steps(base + done, total)

        part = classical_speed(h, one, part_refs, progress=progress, steps=part_steps)
        before += classical_speed_steps(one, part_refs)
        res = part if not res else res | {"rows": res["rows"] + part["rows"]}
    return res | {"config": cfg.__dict__}


@bench_app.command("classical")
@clean_errors
def classical_command(
    data: Path | None = typer.Option(
        None, "--data", help="Channel file to draw users from (default: the first bundled held-out site)."
    ),
    snr_db: float = typer.Option(10.0, help="Median single-user SNR of the drawn users (dB, site median)."),
    num_ue: int = typer.Option(4, help="Users per sample."),
    batch: int = typer.Option(1024, help="Samples per timed call."),
    methods: str = typer.Option(",".join(DEFAULT_METHODS), help="Methods to time."),
    precision: str = typer.Option("single,double", help="Arithmetic: single, double or both."),
    threads: int = typer.Option(1, help="CPU threads for PyTorch and NumPy's BLAS (0: leave as is)."),
    repeats: int = typer.Option(7, help="Timed calls per contender (median)."),
    device: str = typer.Option(
        "cpu",
        help="Where mimofm's and Sionna's kernels run (cpu, cuda); the NumPy reference runs on the CPU.",
    ),
    reference: Path | None = typer.Option(
        None, help="NumPy reference file (default: the repository's benchmarks/numpy_reference.py)."
    ),
    sionna: bool = typer.Option(True, help="Time Sionna PHY's precoders too (where installed)."),
    seed: int = typer.Option(0, help="Seed of the user draw."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results JSON here."),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
    fmt: OutputFormat = format_option(),
) -> None:
    """Classical precoders side by side with a plain NumPy reference and Sionna, in one run: precoders/s,
    speed-up and mean sum rate of each, on the same channels."""
    from mimofm.evaluation.classical_speed import ClassicalSpeedConfig

    cfg = ClassicalSpeedConfig(
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        precisions=[p.strip() for p in precision.split(",") if p.strip()],
        repeats=repeats,
        threads=threads,
        device=device,
    )
    cfg.validate()
    if batch < 1 or num_ue < 1:
        raise MimofmInputError(f"--batch and --num-ue must be >= 1, got {batch}, {num_ue}")
    options = import_options(var, subcarrier, layout, max_memory)
    if data is None and options.given:
        raise MimofmInputError("--var, --subcarrier and --layout say how to read --data; give one")
    out = message_console(fmt)
    h, source = _bench_channels(data, options, num_ue, batch, snr_db, seed, out)
    with work_progress("timing", out) as (describe, steps):
        res = _classical_side_by_side(h, cfg, reference, sionna, out, describe, steps)
    res |= {"data": source, "snr_db": snr_db}
    header = ["method", "precision", "implementation", "precoders / s", "× NumPy", "× Sionna", "sum rate"]
    listing = Listing(
        header=header,
        title=f"classical precoders · {num_ue} users × {h.shape[-1]} antennas · batch {batch} · "
        f"{res['machine']['device']}, {res['machine']['threads']} CPU thread(s) · {source} at {snr_db:g} dB",
        right=frozenset(["precoders / s", "× NumPy", "× Sionna", "sum rate"]),
        no_wrap=False,
    )
    for r in res["rows"]:
        sp = r.get("speedup_vs", {})
        listing.rows.append(
            [
                r["method"],
                r["precision"],
                r["implementation"],
                f"{r['precoders_per_second']:,.0f}",
                f"{sp['numpy']:.2f}" if "numpy" in sp else "",
                f"{sp['sionna']:.2f}" if "sionna" in sp else "",
                f"{r['sum_rate_mean']:.4f}",
            ]
        )
    listing.caption = (
        "× NumPy / × Sionna: that implementation's time ÷ mimofm's in this run (> 1: mimofm is faster); "
        "sum rate in bit/s/Hz of what each returned, recomputed in float64. Sionna's ZF/MRT/RZF put equal "
        "power on every user; mimofm's zf, mrt and rzf one global scale (rzf-eq is Sionna's variant)"
    )
    _emit_and_save(fmt, listing, res, json_out, out)


@bench_app.command("crossover")
@clean_errors
def crossover_command(
    antennas: str = typer.Option("16,32,64,128,256,512,1024", help="N_T grid."),
    users: str = typer.Option("2,4,8,16,32,64", help="N_U grid (points with N_U > N_T are skipped)."),
    iterations: int = typer.Option(3, help="WMMSE updates per precoder."),
    threads: int = typer.Option(1, help="CPU threads (0: leave as is)."),
    repeats: int = typer.Option(3, help="Timed calls per point (median)."),
    quick: bool = typer.Option(False, help="N_T 16,64 × N_U 2,8, one repeat (seconds)."),
    plot: Path | None = typer.Option(None, help="Write the crossover plot (PNG) here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results JSON here."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Where WMMSE's user-space (K×K) and textbook (N_T×N_T) forms cross: time per precoder over N_T, N_U."""
    from mimofm.evaluation.classical_speed import CrossoverConfig, form_crossover

    ints = lambda s, flag: [int(x) for x in parse_floats(s, flag)]  # noqa: E731
    cfg = (
        CrossoverConfig.quick()
        if quick
        else CrossoverConfig(
            ints(antennas, "--antennas"), ints(users, "--users"), iterations, repeats, threads
        )
    )
    if cfg.iterations < 1 or cfg.repeats < 1:
        raise MimofmInputError("--iterations and --repeats must be >= 1")
    out = message_console(fmt)
    with work_progress("timing", out) as (describe, steps):
        res = form_crossover(cfg, progress=describe, steps=steps)
    listing = Listing(
        header=["N_T", "N_U", "user form µs", "textbook form µs", "textbook ÷ user"],
        title=f"WMMSE forms · {cfg.iterations} updates · {res['machine']['threads']} thread(s)",
        right=frozenset(["N_T", "N_U", "user form µs", "textbook form µs", "textbook ÷ user"]),
    )
    by = {(r["num_bs_ant"], r["num_ue"], r["form"]): r["seconds_per_precoder"] for r in res["rows"]}
    for n, k, f in by:
        if f == "user":
            u, a = by[(n, k, "user")], by[(n, k, "antenna")]
            listing.rows.append([str(n), str(k), f"{u * 1e6:.1f}", f"{a * 1e6:.1f}", f"{a / u:.2f}"])
    _emit_and_save(fmt, listing, res, None, out)
    if plot:
        from mimofm.evaluation.plots import plot_crossover

        plot_crossover(res, plot)
        out.print(f"plot written to [bold]{plot}[/]")
    _emit_and_save(fmt, None, res, json_out, out)


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
    from mimofm.evaluation.scaling import ScalingConfig, scaling

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
    with work_progress("scaling", out) as (describe, steps):
        res = scaling(cfg, progress=describe, steps=steps)
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
    _emit_and_save(fmt, listing, res, json_out, out)


@bench_app.command("cost")
@clean_errors
def cost_command(
    json_out: Path | None = typer.Option(None, "--json", help="Write the rows JSON here."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Training cost of the shipped checkpoints (steps, samples, wall-clock, hardware) from their cards."""
    from mimofm.evaluation.training_cost import training_cost

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
    _emit_and_save(fmt, listing, {"rows": rows}, json_out, message_console(fmt))


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
    """Quality on the bundled held-out sites, latency, scaling, the classical kernels side by side with NumPy
    and Sionna, WMMSE's form crossover and training cost in one run, then the page."""
    from mimofm.channels.bundled import bundled_sites
    from mimofm.evaluation.classical_speed import ClassicalSpeedConfig, CrossoverConfig, form_crossover
    from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
    from mimofm.evaluation.latency import LatencyConfig, latency
    from mimofm.evaluation.scaling import ScalingConfig, scaling
    from mimofm.experiments.benchmarks_page import PageInputs, benchmarks_page
    from mimofm.models.zoo import shipped_checkpoint

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
    ccfg = ClassicalSpeedConfig(repeats=2 if quick else 7)
    xcfg = CrossoverConfig.quick() if quick else CrossoverConfig()
    if quick:
        lcfg.batches, lcfg.repeats = [1, 64], 2
    with console.status("benchmark suite") as status:
        write_json(
            out / "eval.json", evaluate_sets(sets, ecfg, progress=lambda m: status.update(f"quality · {m}"))
        )
        write_json(out / "latency.json", latency(lcfg, progress=lambda m: status.update(f"latency · {m}")))
        write_json(out / "scaling.json", scaling(scfg, progress=lambda m: status.update(f"scaling · {m}")))
        h, source = _bench_channels(None, None, 4, 128 if quick else 1024, 10.0, 0, console)
        classical = _classical_side_by_side(
            h, ccfg, None, True, console, lambda m: status.update(f"classical · {m}")
        )
        write_json(out / "classical.json", classical | {"data": source, "snr_db": 10.0})
        write_json(out / "crossover.json", form_crossover(xcfg, lambda m: status.update(f"crossover · {m}")))
    cmd = f"mimofm bench suite --out {out}" + (" --quick" if quick else f" --samples {n}")
    inputs = PageInputs(
        eval=out / "eval.json",
        eval_command=cmd,
        latency=out / "latency.json",
        latency_command=cmd,
        scaling=out / "scaling.json",
        scaling_command=cmd,
        classical=out / "classical.json",
        classical_command=cmd,
        crossover=out / "crossover.json",
        crossover_command=cmd,
        figures=out,
        page_dir=out,
    )
    page = benchmarks_page(inputs, made=f"`{cmd}`")
    (out / "BENCHMARKS.md").write_text(page + "\n")

    write_html(out / "BENCHMARKS.md", command=cmd)
    console.print(
        f"benchmark page: [bold]{out / 'BENCHMARKS.md'}[/] (and .html, the JSONs, scaling.png) · "
        f"{time.perf_counter() - t0:.0f} s"
    )
