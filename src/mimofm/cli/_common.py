"""CLI helpers: the shared consoles, clean errors (no traceback, non-zero exit), list parsing, the output
formats (``--format table|csv|markdown|json``), the results table, the channel-file import options
(``--var``, ``--subcarrier``, ``--layout``).

Start-up: every ``mimofm`` call imports this module and all the command modules (Typer reads the commands'
signatures), so none of them imports PyTorch, NumPy or a mimofm module that does at module level; each
command imports what it needs inside its body (tests/cli/test_startup.py keeps PyTorch out)."""

from __future__ import annotations

import enum
import functools
import json
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mimofm.core.errors import MimofmInputError
from mimofm.reports.tables import csv_table, markdown_table

if TYPE_CHECKING:
    from mimofm.channels.layouts import ImportOptions

# the width of output that goes to a pipe, a file or a captured stream: wide enough that no table is cut
PIPE_WIDTH = 1000


class _OutputConsole(Console):
    """A :class:`~rich.console.Console` that is as wide as the terminal when it writes to one, and
    :data:`PIPE_WIDTH` columns otherwise (a pipe, a file, a test runner), so that a table sent to ``| cat`` or
    ``> file`` keeps every cell whole. Jupyter and an explicit width (``COLUMNS``) keep Rich's own choice."""

    @property
    def size(self) -> ConsoleDimensions:
        """The console's (width, height), :data:`PIPE_WIDTH` wide when not writing to a terminal."""
        size = Console.size.fget(self)
        if self._width is None and not self.is_jupyter and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


def make_console(stderr: bool = False) -> Console:
    """The one way the CLI makes a console: stdout (or stderr) at the terminal's width, or
    :data:`PIPE_WIDTH` columns when the stream is not a terminal."""
    return _OutputConsole(stderr=stderr)


console = make_console()
err_console = make_console(stderr=True)


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


MAX_MEMORY_HELP = (
    "Memory budget for reading channel files, e.g. 512M or 8G (default: half the available memory). Files "
    "whose declared sizes need more are refused before any data is read; `data import` and `data info` "
    "read in blocks and need little."
)


def max_memory_option():
    """The ``--max-memory`` option (see :data:`MAX_MEMORY_HELP`)."""
    return typer.Option(None, "--max-memory", help=MAX_MEMORY_HELP)


def import_options(
    var: str | None, subcarrier: str | None, layout: str | None, max_memory: str | None = None
) -> ImportOptions:
    """The flags as :class:`~mimofm.channels.layouts.ImportOptions` (validated)."""
    from mimofm.channels.layouts import ImportOptions  # deferred: loads NumPy, h5py and PyTorch

    return ImportOptions(var=var, subcarrier=subcarrier, layout=layout, max_memory=max_memory)


@contextmanager
def row_progress(description: str, out: Console | None = None):
    """A progress bar over the rows of a channel file; yields ``update(rows_done, total)``. Shown only on a
    terminal, and removed when done."""
    out = out or console
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
        TimeRemainingColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def work_progress(description: str, out: Console | None = None):
    """A bar over a long evaluation's or benchmark's units of work: the running unit, units done of the total,
    elapsed time and the time remaining. Yields ``(describe, steps)``, the callbacks the evaluation functions
    take as ``progress(message)`` and ``steps(done, total)`` (:mod:`mimofm.evaluation.steps`). Shown only on
    a terminal, and removed when done."""
    out = out or console
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def describe(message: str) -> None:
            bar.update(task, description=message)

        def steps(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield describe, steps


def print_read_as(file, read_as, out: Console | None = None) -> None:
    """The one line that says how an imported file was read (nothing for a site file), on ``out`` (default:
    stdout)."""
    if read_as is not None:
        (out or console).print(
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


class OutputFormat(enum.StrEnum):
    """What a command that lists results prints on stdout (``--format``)."""

    table = "table"
    csv = "csv"
    markdown = "markdown"
    json = "json"


FORMAT_HELP = (
    "Output on stdout: table (for a terminal), csv (one line per record, full-precision numbers), markdown "
    "(a pipe table) or json (the whole result). With csv, markdown or json stdout holds only the data; "
    "progress and notes go to stderr."
)


def format_option():
    """The ``--format`` option (see :data:`FORMAT_HELP`)."""
    return typer.Option(OutputFormat.table, "--format", case_sensitive=False, help=FORMAT_HELP)


def message_console(fmt: OutputFormat) -> Console:
    """Where a command's notes and progress go: stdout with the table, stderr when stdout carries data."""
    return console if fmt is OutputFormat.table else err_console


Cell = str | Text  # a Text cell keeps its style in the table and is its plain text elsewhere


@dataclass
class Listing:
    """A table of plain cells, printed as a Rich table, a Markdown pipe table or CSV.

    ``rows`` hold ``str`` (printed literally: no Rich markup) or :class:`~rich.text.Text` (styled in the
    Rich table, plain text in Markdown and CSV). ``right``: the columns justified right in the Rich table.
    """

    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    title: str | Text = ""
    caption: str | Text = ""
    right: frozenset[str] = frozenset()
    show_header: bool = True
    no_wrap: bool = True
    overflow: str = "ellipsis"  # Rich's handling of a cell too wide for a narrow terminal ("fold": wrap it)

    def rich(self) -> Table:
        """The Rich table (title, caption and cells are literal text, never markup)."""
        table = Table(
            title=_text(self.title) if self.title else None,
            caption=_text(self.caption) if self.caption else None,
            show_header=self.show_header,
            pad_edge=False,
        )
        for c in self.header:
            table.add_column(
                c,
                justify="right" if c in self.right else "left",
                no_wrap=self.no_wrap,
                overflow=self.overflow,
            )
        for r in self.rows:
            table.add_row(*(_text(c) for c in r))
        return table

    def markdown(self) -> str:
        """The table as GitHub-flavoured Markdown (``|`` in a cell escaped, newlines as spaces)."""
        return "\n".join(
            markdown_table([_md(c) for c in self.header], [[_md(c) for c in r] for r in self.rows])
        )

    def csv(self) -> str:
        """The table's cells as CSV text (header line first)."""
        return csv_table(self.header, [[str(c) for c in r] for r in self.rows])


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _md(cell: object) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def records_csv(records: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """CSV of dict records, one line each: ``columns`` (default: every key holding a scalar, in order of first
    appearance; nested lists and dicts are left to JSON), numbers at full precision, ``None`` or a missing key
    as an empty cell, booleans as true/false, a list or dict in a given column as JSON."""
    if columns is None:
        columns = list(
            dict.fromkeys(k for r in records for k, v in r.items() if not isinstance(v, (list, dict)))
        )

    def cell(v: object) -> object:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, dict)):
            return json.dumps(v, sort_keys=True)
        return v

    return csv_table(columns, [[cell(r.get(c)) for c in columns] for r in records])


def emit(
    fmt: OutputFormat,
    listing: Listing,
    data: object,
    records: Sequence[dict] | None = None,
    sort_keys: bool = False,
) -> None:
    """Print a result in ``fmt``: the Rich table of ``listing``, its Markdown, CSV (of ``records`` when given,
    else of the listing's cells) or ``data`` as JSON."""
    if fmt is OutputFormat.table:
        console.print(listing.rich())
    elif fmt is OutputFormat.markdown:
        typer.echo(listing.markdown())
    elif fmt is OutputFormat.csv:
        typer.echo(listing.csv() if records is None else records_csv(records), nl=False)
    else:
        typer.echo(json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False))


def results_listing(result: dict, title: str) -> Listing:
    """One row per (site, SNR point), one column per precoder: mean sum rate (bit/s/Hz); a cell with samples
    above the DPC bound is red and starred.

    The 95% confidence half-widths are in the JSON; the caption gives the largest one.
    """
    rows = result["results"]
    precoders = list(dict.fromkeys(r["precoder"] for r in rows))
    keys = list(
        dict.fromkeys((r["site"], r["snr_db"], r["noise_dbm"] if r["snr_db"] is None else None) for r in rows)
    )
    out = Listing(header=["site", "SNR", *precoders], title=title, right=frozenset(["SNR", *precoders]))
    flagged = 0
    for site, snr, noise in keys:
        sel = {
            r["precoder"]: r
            for r in rows
            if r["site"] == site and r["snr_db"] == snr and (snr is not None or r["noise_dbm"] == noise)
        }
        label = f"{snr:g} dB" if snr is not None else f"{noise:g} dBm"
        cells: list[Cell] = []
        for p in precoders:
            r = sel[p]
            cell: Cell = f"{r['sum_rate_mean']:.2f}"
            if r.get("samples_above_dpc"):
                cell = Text(f"{cell}*", style="red")
                flagged += 1
            cells.append(cell)
        out.rows.append([site, label, *cells])
    ci = max(r["sum_rate_ci95"] for r in rows)
    conv = rows[0].get("snr_convention", "site-median")
    caption = Text(
        f"mean sum rate in bit/s/Hz over paired samples (largest 95% CI ±{ci:.2f}); "
        f"SNR = {'site-median single-user SNR' if conv == 'site-median' else conv}"
    )
    if flagged:
        caption.append(f"; * {flagged} cells with samples above the DPC bound", style="red")
    out.caption = caption
    return out


def results_table(result: dict, title: str) -> Table:
    """:func:`results_listing` as a Rich table."""
    return results_listing(result, title).rich()


def tradeoff_listing(result: dict, title: str) -> Listing:
    """One row per (site, SNR, β): requested and achieved sum rates, fm's rate error and the energies."""
    rows = result["results"]
    header = [
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
    ]
    out = Listing(header=header, title=title, right=frozenset(header[1:]))
    keys = list(dict.fromkeys((r["site"], r["snr_db"], r["beta"]) for r in rows))
    for site, snr, beta in keys:
        sel = {r["method"]: r for r in rows if (r["site"], r["snr_db"], r["beta"]) == (site, snr, beta)}
        fm, q, g, qr = sel["fm"], sel["qos@fm-rates"], sel.get("greedy@fm-rates"), sel["qos@requests"]
        fmt = lambda r, k, f="{:.1f}": f.format(r[k]) if r is not None and r.get(k) is not None else "-"  # noqa: E731
        out.rows.append(
            [
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
            ]
        )
    out.caption = (
        "mean sum rates asked/got (bit/s/Hz); fm err: mean |r_u − R*_u| / max(R*_u, floor), err|ok: "
        "the same on requests QoS can meet; energy "
        "E = γ·P_TX + P_RF·(antennas on) (eq. 4, watts); QoS and greedy (antenna switch-off) reach "
        "fm's achieved rates with least power; QoS ok: requests reachable at full power"
    )
    return out


def tradeoff_table(result: dict, title: str) -> Table:
    """:func:`tradeoff_listing` as a Rich table."""
    return tradeoff_listing(result, title).rich()
