"""`mimofm adapt fm|papp --data FILE --shots N|full --num-ue K` (a site-adapted checkpoint, from one user
file: K from the option, N_t from the file, a position split made when the file has none) and
`mimofm adapt wifoe --task T10 --budget 2000` (a new task branch on the frozen pretrained trunk).

fm and papp print a before/after table (zero-shot vs adapted on held-out local positions: ratio to WMMSE,
rate error, energy) with Rich on a terminal and as plain text otherwise; the numbers are in the run's
``adaptation.json``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mimofm.cli._common import (
    clean_errors,
    console,
    import_options,
    layout_option,
    max_memory_option,
    print_read_as,
    subcarrier_option,
    var_option,
)
from mimofm.core.errors import MimofmInputError

__all__ = ["adapt_command", "report_lines", "report_table"]

# (column title, report key, format): the before/after table's columns
_COLUMNS = (
    ("ratio to WMMSE", "ratio_to_wmmse", "{:.3f}"),
    ("rate error", "rel_rate_error", "{:.1%}"),
    ("energy", "energy_ratio", "{:.3f}"),
)
_CAPTION = (
    "ratio to WMMSE: maximum-rate sum rate ÷ WMMSE's on the same samples; rate error: mean "
    "|r_u − R*_u| / max(R*_u, 0.1) on requests QoS can meet; energy: E(Ω, γ) ÷ all antennas on at full "
    "power; —: not served (maximum sum rate only)"
)


def _cells(row: dict) -> list[str]:
    return ["—" if row.get(key) is None else fmt.format(row[key]) for _, key, fmt in _COLUMNS]


def report_table(report: dict, title: str) -> Table:
    """A Rich table of an adaptation report (``{"zero-shot": {...}, "adapted": {...}}``): one row per model,
    columns ratio to WMMSE, rate error, energy."""
    table = Table(title=title, caption=_CAPTION, pad_edge=False)
    table.add_column("", no_wrap=True)
    for name, _, _ in _COLUMNS:
        table.add_column(name, justify="right", no_wrap=True)
    for label, row in report.items():
        table.add_row(label, *_cells(row))
    return table


def report_lines(report: dict, title: str) -> list[str]:
    """The same table as plain text lines, caption last (for a stdout that is not a terminal)."""
    rows = [["", *(name for name, _, _ in _COLUMNS)]] + [[label, *_cells(r)] for label, r in report.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [title]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return [*lines, _CAPTION]


def _print_report(report: dict, title: str) -> None:
    if console.is_terminal:
        console.print(report_table(report, title))
    else:
        for line in report_lines(report, title):
            typer.echo(line)


def _print_metrics(metrics: dict) -> None:
    """The final evaluation of a run as ``name  value`` lines (a table on a terminal)."""
    if console.is_terminal:
        table = Table(show_header=False, pad_edge=False)
        for k, v in metrics.items():
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        console.print(table)
    else:
        width = max((len(k) for k in metrics), default=0)
        for k, v in metrics.items():
            typer.echo(f"{k.ljust(width)}  {f'{v:.4g}' if isinstance(v, float) else v}")


@clean_errors
def adapt_command(
    family: str = typer.Argument(
        ...,
        help="Model family: fm (new head), papp (fine-tune the whole model) or wifoe "
        "(new task branch, frozen trunk).",
    ),
    data: Path | None = typer.Option(
        None,
        help="fm/papp: channel file of the deployment site, any importable format (its train-split "
        "positions are the local data; a file without a split gets one, saved in --out-dir).",
    ),
    task: str | None = typer.Option(None, help="wifoe: the new 3GPP task (mimofm data tasks), e.g. T10."),
    budget: int = typer.Option(
        2000, help="wifoe: training samples of the new task (0: every train position)."
    ),
    snr_convention: str | None = typer.Option(
        None,
        help="wifoe: how the training SNRs are read, received | per-antenna (default: the checkpoint's).",
    ),
    pilot_snr_db: float | None = typer.Option(
        None,
        help="wifoe: a fixed pilot SNR in dB (default: the checkpoint's "
        "pilot rule; full-energy pilots if it has none).",
    ),
    pilot_snr_offset_db: float | None = typer.Option(None, help="wifoe: pilot SNR = data SNR + this (dB)."),
    val_fraction: float = typer.Option(
        0.0,
        help="wifoe: share of the budget held out (on positions of its own) to "
        "choose the best of 20 evaluations over the run; the checkpoint is "
        "then best.*, not last.*.",
    ),
    shots: str = typer.Option(
        "10", help="Local samples (e.g. 10, 40), or 'full' for every local train position."
    ),
    checkpoint: Path | None = typer.Option(None, help="Pretrained checkpoint (default: the shipped one)."),
    num_ue: int = typer.Option(
        4,
        "--num-ue",
        help="fm/papp: users per sample (K <= the file's antennas; fixed-configuration "
        "checkpoints only serve their own K and N_t).",
    ),
    top_n: int = typer.Option(
        5, help="fm few-shot: number of most similar heads (user-form checkpoint) or training datasets."
    ),
    steps: int | None = typer.Option(None, help="Training steps (default: fm 300, papp 200, wifoe 800)."),
    lr: float | None = typer.Option(None, help="Learning rate (default 1e-3)."),
    seed: int = typer.Option(
        0, help="Seed of the shots, the report's draws and (fm/papp) the split made for a file without one."
    ),
    out_dir: Path = typer.Option(
        Path("runs/adapt"),
        help="The adapted checkpoint goes here (last.*; wifoe with --val-fraction: best.*).",
    ),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
) -> None:
    """Adapt a pretrained model to a new site: fm few-shot/full (a new head), papp fine-tuning (whole
    model)."""
    ckpt = str(checkpoint) if checkpoint else None
    if family in ("fm", "papp") and data is None:
        raise MimofmInputError(f"`mimofm adapt {family}` needs --data FILE")
    options = import_options(var, subcarrier, layout, max_memory)
    if options.given and data is None:
        raise MimofmInputError("--var, --subcarrier and --layout say how to read --data; give one")
    if family != "wifoe" and val_fraction:
        raise MimofmInputError(
            f"--val-fraction is for wifoe; `mimofm adapt {family}` trains a fixed number of steps"
        )
    if family != "wifoe" and (snr_convention or pilot_snr_db is not None or pilot_snr_offset_db is not None):
        raise MimofmInputError(
            f"--snr-convention / --pilot-snr-db / --pilot-snr-offset-db are for wifoe, not {family}"
        )
    if family == "wifoe":
        if not task:
            raise MimofmInputError(
                "`mimofm adapt wifoe` needs --task NAME (e.g. T10; see `mimofm data tasks`)"
            )
        point = {
            k: v
            for k, v in (
                ("snr_convention", snr_convention),
                ("pilot_snr_db", pilot_snr_db),
                ("pilot_snr_offset_db", pilot_snr_offset_db),
            )
            if v is not None
        }
        from mimofm.adaptation.wifoe import finetune_wifoe

        out = finetune_wifoe(
            task,
            budget,
            checkpoint=ckpt,
            steps=steps or 800,
            lr=lr or 1e-3,
            seed=seed,
            val_fraction=val_fraction,
            out_dir=str(out_dir),
            **point,
        )
    elif family == "fm":
        from mimofm.adaptation.fm import adapt_fm

        out = adapt_fm(
            _site(data, options),
            shots,
            checkpoint=ckpt,
            num_ue=num_ue,
            top_n=top_n,
            steps=steps or 300,
            lr=lr or 1e-3,
            seed=seed,
            out_dir=str(out_dir),
            progress=console.is_terminal,
            log=_log,
        )
    elif family == "papp":
        from mimofm.adaptation.papp import finetune_papp

        out = finetune_papp(
            _site(data, options),
            shots,
            checkpoint=ckpt,
            num_ue=num_ue,
            steps=steps or 200,
            lr=lr or 1e-3,
            seed=seed,
            out_dir=str(out_dir),
            progress=console.is_terminal,
            log=_log,
        )
    else:
        raise MimofmInputError(f"adaptation is implemented for fm, papp and wifoe, not {family!r}")
    if family == "wifoe":
        console.print(f"adapted wifoe: {out['checkpoint']}.safetensors", highlight=False)
        _print_metrics(out["metrics"])
        return
    from mimofm.adaptation.common import RECORD_FILE

    held = out["held_out"]
    trained = "every train position" if str(shots) == "full" else f"{shots} shots"
    _print_report(
        out["report"],
        f"{family} on {data.name} ({num_ue} users, {trained}): zero-shot vs adapted on "
        f"{held['num_positions']} held-out positions ({held['positions']})",
    )
    console.print(
        f"adapted {family}: {out['checkpoint']}.safetensors; numbers in {Path(out_dir) / RECORD_FILE}",
        highlight=False,
        soft_wrap=True,
    )


def _site(data: Path, options):
    """The channel set of ``data`` read with the import ``options``, its read-as line printed."""
    from mimofm.channels.io import load_channel_files

    [(cs, read_as)] = load_channel_files([data], options)
    print_read_as(data, read_as, console)
    return cs


def _log(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)
