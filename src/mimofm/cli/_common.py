"""CLI helpers: clean errors (no traceback, non-zero exit), list parsing, the results table, the channel-file
import options (``--var``, ``--subcarrier``, ``--layout``)."""

from __future__ import annotations

import functools
import math

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mimofm.channels.layouts import ImportOptions
from mimofm.core.validation import MimofmInputError

console = Console()
err_console = Console(stderr=True)


def clean_errors(fn):
    """Turn :class:`MimofmInputError` into a one-line message on stderr and exit code 2.

    The message is printed literally: Rich markup in it (shapes such as ``[num_positions, num_bs_ant]``,
    file names with brackets) is escaped, so nothing in it is taken for a style and dropped.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MimofmInputError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


# the import options of every command that reads channel files (`data import|export|info`, `eval --data`)
VAR_HELP = (
    "Imported files: the array holding the channel (default: H, else the one of channel/channels "
    "(DeepMIMO), h_freq/h_f/cfr/a/cir (Sionna), coeff (QuaDRiGa), h; an HDF5 path like grp/H is accepted)."
)
SUBCARRIER_HELP = (
    "Imported arrays with a subcarrier axis: an index (0, 1, ...), `mean` (the average complex response over "
    "the band; the default) or `all` (every subcarrier a position)."
)
LAYOUT_HELP = (
    "Imported arrays: one label per axis, comma-separated, instead of auto-detection: n (positions; several "
    "are flattened), ntx (BS antennas), sc (subcarriers), path (summed), t (time, size 1), nrx (UE antennas, "
    "size 1), 1 (other size-1 axis). E.g. ntx,n reads a transposed H, n,nrx,ntx,sc a DeepMIMO v4 channel "
    "(docs/byo-channels.md)."
)


def var_option():
    """The ``--var`` option (see :data:`VAR_HELP`)."""
    return typer.Option(None, "--var", help=VAR_HELP)


def subcarrier_option():
    """The ``--subcarrier`` option (see :data:`SUBCARRIER_HELP`)."""
    return typer.Option(None, "--subcarrier", help=SUBCARRIER_HELP)


def layout_option():
    """The ``--layout`` option (see :data:`LAYOUT_HELP`)."""
    return typer.Option(None, "--layout", help=LAYOUT_HELP)


def import_options(var: str | None, subcarrier: str | None, layout: str | None) -> ImportOptions:
    """The flags as :class:`~mimofm.channels.layouts.ImportOptions` (validated)."""
    return ImportOptions(var=var, subcarrier=subcarrier, layout=layout)


def print_read_as(file, read_as) -> None:
    """The one line that says how an imported file was read (nothing for a site file)."""
    if read_as is not None:
        console.print(
            f"[dim]{escape(str(file))}:[/] {escape(read_as.line())}", highlight=False, soft_wrap=True
        )


def parse_floats(text: str | None, name: str) -> list[float] | None:
    """``"0,10,20"`` -> ``[0.0, 10.0, 20.0]`` (None stays None); raises naming the flag ``name`` for a bad
    list."""
    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise MimofmInputError(f"`{name}` must be comma-separated numbers, got {text!r}") from None
        if not math.isfinite(v):
            raise MimofmInputError(f"`{name}` values must be finite, got {part!r}")
        out.append(v)
    if not out:
        raise MimofmInputError(f"`{name}` is empty")
    return out


def results_table(result: dict, title: str) -> Table:
    """One row per (site, SNR point), one column per precoder: mean sum rate (bit/s/Hz).

    The 95% confidence half-widths are in the JSON; the caption gives the largest one.
    """
    rows = result["results"]
    precoders = list(dict.fromkeys(r["precoder"] for r in rows))
    table = Table(title=title, show_lines=False, pad_edge=False)
    table.add_column("site", no_wrap=True)
    table.add_column("SNR", justify="right", no_wrap=True)
    for p in precoders:
        table.add_column(p, justify="right", no_wrap=True)
    keys = list(
        dict.fromkeys((r["site"], r["snr_db"], r["noise_dbm"] if r["snr_db"] is None else None) for r in rows)
    )
    flagged = 0
    for site, snr, noise in keys:
        sel = {
            r["precoder"]: r
            for r in rows
            if r["site"] == site and r["snr_db"] == snr and (snr is not None or r["noise_dbm"] == noise)
        }
        label = f"{snr:g} dB" if snr is not None else f"{noise:g} dBm"
        cells = []
        for p in precoders:
            r = sel[p]
            cell = f"{r['sum_rate_mean']:.2f}"
            if r.get("samples_above_dpc"):
                cell = f"[red]{cell}*[/]"
                flagged += 1
            cells.append(cell)
        table.add_row(site, label, *cells)
    ci = max(r["sum_rate_ci95"] for r in rows)
    conv = rows[0].get("snr_convention", "site-median")
    table.caption = (
        f"mean sum rate in bit/s/Hz over paired samples (largest 95% CI ±{ci:.2f}); "
        f"SNR = {'site-median single-user SNR' if conv == 'site-median' else conv}"
    )
    if flagged:
        table.caption += f"; [red]* {flagged} cells with samples above the DPC bound[/]"
    return table


def tradeoff_table(result: dict, title: str) -> Table:
    """One row per (site, SNR, β): requested and achieved sum rates, fm's rate error and the energies."""
    rows = result["results"]
    table = Table(title=title, pad_edge=False)
    for c in (
        "site",
        "SNR",
        "β",
        "asked",
        "fm got",
        "fm err",
        "err|ok",
        "fm W",
        "fm ant",
        "QoS W",
        "greedy W",
        "QoS ok",
    ):
        table.add_column(c, justify="left" if c == "site" else "right", no_wrap=True)
    keys = list(dict.fromkeys((r["site"], r["snr_db"], r["beta"]) for r in rows))
    for site, snr, beta in keys:
        sel = {r["method"]: r for r in rows if (r["site"], r["snr_db"], r["beta"]) == (site, snr, beta)}
        fm, q, g, qr = sel["fm"], sel["qos@fm-rates"], sel.get("greedy@fm-rates"), sel["qos@requests"]
        fmt = lambda r, k, f="{:.1f}": f.format(r[k]) if r is not None and r.get(k) is not None else "-"  # noqa: E731
        table.add_row(
            site,
            f"{snr:g} dB",
            str(beta),
            fmt(fm, "requested_sum_rate_mean", "{:.2f}"),
            fmt(fm, "achieved_sum_rate_mean", "{:.2f}"),
            f"{100 * fm['rel_rate_error_mean']:.1f}%",
            "-"
            if fm.get("rel_rate_error_feasible_mean") is None
            else f"{100 * fm['rel_rate_error_feasible_mean']:.1f}%",
            fmt(fm, "energy_w_mean"),
            fmt(fm, "antennas_on_mean"),
            fmt(q, "energy_w_mean"),
            fmt(g, "energy_w_mean"),
            f"{100 * qr['feasible_fraction']:.0f}%",
        )
    table.caption = (
        "mean sum rates asked/got (bit/s/Hz); fm err: mean |r_u − R*_u| / max(R*_u, floor), err|ok: "
        "the same on requests QoS can meet; energy "
        "E = γ·P_TX + P_RF·(antennas on) (eq. 4, watts); QoS and greedy (antenna switch-off) reach "
        "fm's achieved rates with least power; QoS ok: requests reachable at full power"
    )
    return table
