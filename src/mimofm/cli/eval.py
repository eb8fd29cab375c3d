"""`mimofm eval`: paired comparison of precoders and bounds on channel files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mimofm._io import write_json
from mimofm.cli._common import (
    Listing,
    OutputFormat,
    clean_errors,
    emit,
    format_option,
    import_options,
    layout_option,
    max_memory_option,
    message_console,
    parse_floats,
    print_read_as,
    results_listing,
    subcarrier_option,
    tradeoff_listing,
    var_option,
    work_progress,
)
from mimofm.core.errors import MimofmInputError

if TYPE_CHECKING:
    from mimofm.channels.layouts import ImportOptions

__all__ = ["DEFAULT_PRECODERS", "eval_command"]

DEFAULT_PRECODERS = "mrt,zf,zf-wf,rzf,wmmse,dpc"


@clean_errors
def eval_command(
    precoder: str | None = typer.Option(
        None, help=f"Comma-separated precoders/bounds (default: {DEFAULT_PRECODERS})."
    ),
    data: list[Path] | None = typer.Option(
        None,
        "--data",
        help=(
            "Channel file: site file (.h5), .npz/.npy/.mat/HDF5 with H \\[num_positions, num_bs_ant], or a "
            "DeepMIMO, Sionna, QuaDRiGa array (see --var, --subcarrier, --layout); repeatable."
        ),
    ),
    task: str | None = typer.Option(
        None,
        help=(
            "wifoe: comma-separated 3GPP tasks (e.g. T1,G1); end-to-end sum rate with pilots and feedback on "
            "the task's test drops, vs perfect-CSI ZF and WMMSE. With --data: the wifoe branch that serves "
            "the file (default: picked from its antenna count)."
        ),
    ),
    snr_db: str | None = typer.Option(
        None, help="SNR points in dB, e.g. 0,10,20 (site-median single-user SNR by default)."
    ),
    noise_dbm: str | None = typer.Option(None, help="Absolute noise powers in dBm, e.g. -94,-104."),
    snr_convention: str | None = typer.Option(
        None,
        help=(
            "How --snr-db is read (default: site-median; for --task, the checkpoint's own): site-median (= "
            "received: median single-user SNR; the 3GPP tasks: E‖h‖² = SNR) | per-antenna (SNR = P/σ² with "
            "unit gain per antenna: median ‖h‖² = N_t·SNR) | none (P/σ² on normalized channels)."
        ),
    ),
    pilot_snr_db: float | None = typer.Option(
        None,
        help=(
            "wifoe: the pilot SNR (dB) at which one full-energy pilot symbol on a non-steered beam reaches a "
            "median user (default: the checkpoint's own rule, e.g. data SNR + 4 dB for the shipped one; "
            "full-energy pilots for a checkpoint without one)."
        ),
    ),
    tx_power_dbm: float = typer.Option(43.0103, help="Transmit power in dBm (20 W)."),
    system_loss_db: float = typer.Option(10.0, help="System loss in dB."),
    num_ue: int = typer.Option(4, help="Users per multi-user sample."),
    samples: int = typer.Option(1000, help="Multi-user samples per site."),
    seed: int = typer.Option(0, help="Seed of the user draws (same for every precoder)."),
    positions: str = typer.Option(
        "all", help="Draw users from all positions or one split: all, train, val, test."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results JSON here (atomically)."),
    checkpoint: Path | None = typer.Option(
        None,
        help=(
            "Checkpoint (stem, .json or .safetensors) of the one neural precoder in --precoder, instead of "
            "the shipped one."
        ),
    ),
    rate_targets: str | None = typer.Option(
        None,
        help=(
            "Trade-off mode (fm only): per-user requests in bit/s/Hz, e.g. 1,1,0.5,0.5, or 'random' (R*_u ~ "
            "U(0,1) scaled to β·R_WMMSE for each --betas)."
        ),
    ),
    betas: str = typer.Option(
        "0.2,0.4,0.6,0.8", help="With --rate-targets random: fractions β of each sample's WMMSE sum rate."
    ),
    greedy_samples: int = typer.Option(
        20, help="With --rate-targets: samples given the (slow) greedy antenna switch-off baseline."
    ),
    p_rf_w: float = typer.Option(
        1.0, help="With --rate-targets: circuit power per active antenna (W), eq. 4."
    ),
    exact_rates: bool = typer.Option(
        True,
        help=(
            "With --rate-targets: fm's exact power layer (least powers meeting the requests with fm's "
            "beams); --no-exact-rates: the network's own powers."
        ),
    ),
    csi_nmse_db: float | None = typer.Option(
        None,
        help="Imperfect CSI: precoders see H + E with this NMSE (dB, e.g. -10); rates are measured on H.",
    ),
    csi_denoise: bool = typer.Option(
        False,
        help=(
            "With --csi-nmse-db: denoise H + E in the array's angular domain before every precoder "
            "(mimofm.channels.denoise)."
        ),
    ),
    split: Path | None = typer.Option(
        None,
        "--split",
        help=(
            "Position split (split.npy from `mimofm adapt --out-dir`) for a --data file without one: "
            "with --positions test, score exactly the positions the adaptation held out."
        ),
    ),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
    fmt: OutputFormat = format_option(),
) -> None:
    """Evaluate classical precoders and bounds on the same multi-user samples (or fm's rate-target mode, or
    wifoe on 3GPP tasks).

    --format csv prints one line per (site, SNR, precoder) with the result fields; markdown the table; json
    the whole result (as --json writes it)."""
    # None: --precoder not given (each mode has its own default)
    given = None if precoder is None else precoder.strip()
    options = import_options(var, subcarrier, layout, max_memory)
    if split is not None and len(data or []) != 1:
        raise MimofmInputError("--split belongs to one --data file; give exactly one")
    if not data and options.given:
        raise MimofmInputError("--var, --subcarrier and --layout say how to read --data files; give one")
    if not data and (task is not None or given == "wifoe"):
        return _wifoe(
            given, task, snr_db, samples, seed, checkpoint, json_out, snr_convention, pilot_snr_db, fmt
        )
    if not data:
        raise MimofmInputError("give at least one --data channel file (or --task with --precoder wifoe)")
    if rate_targets is not None:
        if task is not None or pilot_snr_db is not None:
            raise MimofmInputError("--task and --pilot-snr-db are for wifoe; --rate-targets evaluates fm")
        return _tradeoff(
            given,
            data,
            snr_db,
            num_ue,
            samples,
            seed,
            positions,
            json_out,
            checkpoint,
            rate_targets,
            betas,
            greedy_samples,
            tx_power_dbm,
            system_loss_db,
            p_rf_w,
            exact_rates,
            options,
            fmt,
            split,
        )
    from mimofm.evaluation.evaluate import EvalConfig, assign_checkpoint, evaluate_sets

    cfg = EvalConfig(
        precoders=[p.strip() for p in (given or DEFAULT_PRECODERS).split(",") if p.strip()],
        data=[str(d) for d in data],
        snr_db=parse_floats(snr_db, "--snr-db"),
        noise_dbm=parse_floats(noise_dbm, "--noise-dbm"),
        snr_convention=snr_convention or "site-median",
        tx_power_dbm=tx_power_dbm,
        system_loss_db=system_loss_db,
        num_ue=num_ue,
        samples=samples,
        seed=seed,
        positions=positions,
        csi_nmse_db=csi_nmse_db,
        csi_denoise=csi_denoise,
        pilot_snr_db=pilot_snr_db,
        wifoe_task=task,
    )
    cfg.validate()
    if checkpoint is not None:
        cfg = assign_checkpoint(cfg, str(checkpoint))
    out = message_console(fmt)
    sets, read = _load_data(data, options, out, split)
    with work_progress("evaluating", out) as (describe, steps):
        result = evaluate_sets(sets, cfg, progress=describe, steps=steps)
    if read:
        result["data_read_as"] = read
    title = f"mimofm eval · {num_ue} users · {samples} samples · seed {seed}"
    emit(fmt, results_listing(result, title), result, result["results"])
    for r in result["results"]:
        if r["precoder"] == "wifoe":
            out.print(
                f"wifoe on {r['site']} at {r['snr_db']:g} dB: branch {r['wifoe_branch']}, pilot SNR "
                f"{r['resolved_pilot_snr_db']:.1f} dB at the median position "
                + (
                    "(full-energy pilots)"
                    if r["pilot_snr_db"] is None
                    else "(--pilot-snr-db)"
                    if pilot_snr_db is not None
                    else "(the checkpoint's pilot rule)"
                )
            )
    if json_out is not None:
        write_json(json_out, result)
        out.print(f"results written to [bold]{json_out}[/]")


def _load_data(
    data: list[Path], options: ImportOptions | None, out: Console, split: Path | None = None
) -> tuple[list, list[dict]]:
    """The channel sets of the --data files, each imported file's read-as line printed on ``out``; returns
    the sets and, for the result JSON, how each imported file was read. ``split``: a split.npy for the one
    file (which must have none of its own)."""
    import torch

    from mimofm.adaptation.common import read_split_file
    from mimofm.channels.io import load_channel_files

    loaded = load_channel_files(list(data), options)
    read = []
    for path, (_, read_as) in zip(data, loaded):
        print_read_as(path, read_as, out)
        if read_as is not None:
            read.append({"file": str(path), **read_as.to_dict()})
    sets = [cs for cs, _ in loaded]
    if split is not None:
        cs = sets[0]
        if cs.split is not None:
            raise MimofmInputError(f"{data[0]} has a position split of its own; drop --split")
        sets[0] = replace(cs, split=torch.from_numpy(read_split_file(split, cs)))
        out.print(f"position split: {split}", highlight=False)
    return sets, read


def _tradeoff(
    precoder,
    data,
    snr_db,
    num_ue,
    samples,
    seed,
    positions,
    json_out,
    checkpoint,
    rate_targets,
    betas,
    greedy_samples,
    tx_power_dbm,
    system_loss_db,
    p_rf_w,
    exact_rates=True,
    options: ImportOptions | None = None,
    fmt: OutputFormat = OutputFormat.table,
    split: Path | None = None,
) -> None:
    import torch

    from mimofm.core.linkbudget import LinkBudget
    from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff
    from mimofm.models.zoo import load_fm

    if precoder is not None and precoder != "fm":
        raise MimofmInputError("`--rate-targets` evaluates fm against the QoS baselines; use `--precoder fm`")
    budget = LinkBudget(tx_power_dbm, system_loss_db)
    random = rate_targets.strip().lower() == "random"
    cfg = TradeoffConfig(
        snr_db=parse_floats(snr_db, "--snr-db") or [10.0, 20.0],
        rate_targets=None if random else parse_floats(rate_targets, "--rate-targets"),
        betas=parse_floats(betas, "--betas"),
        num_ue=num_ue,
        samples=samples,
        seed=seed,
        positions=positions,
        p_tx_w=10 ** (tx_power_dbm / 10) / 1000,
        p_rf_w=p_rf_w,
        greedy_samples=greedy_samples,
        exact_rates=exact_rates,
    )
    cfg.validate()
    model = load_fm(str(checkpoint) if checkpoint else None)
    out = message_console(fmt)
    sets, read = _load_data(data, options, out, split)
    for cs in sets:
        model.check_input(torch.zeros(1, num_ue, cs.num_bs_ant, dtype=torch.complex64), None)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as prog:
        task = prog.add_task("evaluating", total=None)
        result = evaluate_tradeoff(
            sets, cfg, model, link_budget=budget, progress=lambda msg: prog.update(task, description=msg)
        )
    result["checkpoint"] = str(checkpoint) if checkpoint else "shipped"
    if read:
        result["data_read_as"] = read
    title = f"mimofm eval · fm rate targets · {num_ue} users · {samples} samples"
    emit(fmt, tradeoff_listing(result, title), result, result["results"])
    if json_out is not None:
        write_json(json_out, result)
        out.print(f"results written to [bold]{json_out}[/]")


def _wifoe(
    precoder,
    task,
    snr_db,
    samples,
    seed,
    checkpoint,
    json_out,
    snr_convention,
    pilot_snr_db,
    fmt: OutputFormat = OutputFormat.table,
) -> None:
    """``--precoder wifoe --task T1,G1``: the end-to-end FDD pipeline on 3GPP task test drops."""
    from mimofm.evaluation.wifoe_eval import (
        checkpoint_pilot_rule,
        checkpoint_positions,
        checkpoint_snrs,
        evaluate_wifoe,
        fallback_branches,
    )
    from mimofm.models.zoo import load_wifoe, shipped_checkpoint

    if precoder != "wifoe" or not task:
        raise MimofmInputError(
            "3GPP task evaluation is `--precoder wifoe --task NAME[,NAME]` (see `mimofm data tasks`)"
        )
    model = load_wifoe(str(checkpoint) if checkpoint else None)
    stem = str(checkpoint) if checkpoint else str(shipped_checkpoint("wifoe"))
    positions = checkpoint_positions(stem)
    own_snrs, own_conv = checkpoint_snrs(stem)  # defaults: the checkpoint's own SNRs and convention
    conv = {
        None: own_conv,
        "site-median": "received",
        "received": "received",
        "per-antenna": "per-antenna",
    }.get(snr_convention)
    if conv is None:
        raise MimofmInputError(
            f"the 3GPP tasks read --snr-db as received (site-median) or per-antenna, not {snr_convention!r}"
        )
    tasks = [t.strip() for t in task.split(",") if t.strip()]
    snrs = parse_floats(snr_db, "--snr-db") or (own_snrs if conv == own_conv else [0.0, 10.0, 20.0])
    offset, rule_conv = None, "received"
    if (
        pilot_snr_db is None
    ):  # the checkpoint's own pilot rule (e.g. a model trained with pilot SNR = SNR + offset)
        pilot_snr_db, offset, rule_conv = checkpoint_pilot_rule(stem)
    # a task without a branch of its own: a same-shape pretraining task's branch (zero-shot), else an error
    branches = fallback_branches(model, tasks)
    out = message_console(fmt)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as prog:
        bar = prog.add_task("evaluating", total=None)
        rows = evaluate_wifoe(
            model,
            tasks,
            snrs,
            samples=samples,
            seed=seed,
            branches=branches,
            progress=lambda msg: prog.update(bar, description=msg),
            positions=positions,
            convention=conv,
            pilot_snr_db=pilot_snr_db,
            pilot_snr_offset_db=offset,
            offset_convention=rule_conv,
        )
    listing = Listing(
        header=[
            "task",
            "branch",
            "L",
            "B",
            "SNR (dB)",
            "pilot SNR (dB)",
            "wifoe",
            "ZF (perfect CSI)",
            "WMMSE (perfect CSI)",
            "wifoe ÷ WMMSE",
        ],
        title=f"wifoe end to end (learned pilots, B-bit feedback) · mean sum rate (bit/s/Hz) over "
        f"K = 3..8, {samples} samples per K, test drops",
        no_wrap=False,
    )
    listing.right = frozenset(listing.header)
    listing.caption = (
        f"SNR read as {conv} ({'E‖h‖² = SNR' if conv == 'received' else 'E‖h‖² = N_t·SNR'}); pilot SNR "
        + (
            "full-energy pilots"
            if pilot_snr_db is None and offset is None
            else f"SNR {offset:+g} dB (the checkpoint's rule)"
            if offset is not None
            else f"{pilot_snr_db:g} dB"
        )
    )
    for r in rows:
        sh = model.branch(r["branch"]).shape
        listing.rows.append(
            [
                r["task"],
                r["branch"],
                str(sh.pilot_length),
                str(sh.feedback_bits),
                f"{r['snr_db']:g}",
                f"{r['resolved_pilot_snr_db']:.1f}",
                f"{r['rate']:.2f}",
                f"{r['zf']:.2f}",
                f"{r['wmmse']:.2f}",
                f"{r['ratio_to_wmmse']:.3f}",
            ]
        )
    result = {
        "precoder": "wifoe",
        "checkpoint": str(checkpoint) if checkpoint else "shipped",
        "samples_per_k": samples,
        "seed": seed,
        "snr_convention": conv,
        "pilot_snr_db": pilot_snr_db,
        "pilot_snr_offset_db": offset,
        "rows": rows,
    }
    emit(fmt, listing, result, rows)
    if json_out:
        write_json(json_out, result)
        out.print(f"wrote {json_out}")
