"""`mimofm data`: inspect channel files, import them as site files, export them as ``.npz``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.text import Text

from mimofm.cli._common import (
    Listing,
    OutputFormat,
    clean_errors,
    console,
    emit,
    err_console,
    format_option,
    import_options,
    layout_option,
    max_memory_option,
    message_console,
    print_read_as,
    row_progress,
    subcarrier_option,
    var_option,
)
from mimofm.core.errors import MimofmInputError

if TYPE_CHECKING:
    from mimofm.channels.layouts import ImportOptions

__all__ = ["data_app", "export_command", "import_command", "info_command"]

data_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Channel data files: inspect (info), import as site files, export as .npz.",
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # unreachable


def _check_out(src: Path, out: Path, suffixes: tuple[str, ...], force: bool) -> None:
    """``--out``: the right suffix, not a directory, not the source; an existing file or symlink (even a
    dangling one) only with ``--force``, which replaces the link itself, never the file it points to."""
    if out.suffix.lower() not in suffixes:
        raise MimofmInputError(f"`--out` {str(out)!r} must end in {' or '.join(suffixes)}")
    link = out.is_symlink()
    if out.is_dir() and not link:
        raise MimofmInputError(f"`--out` {str(out)!r} is a directory")
    if (out.exists() or link) and not force:
        what = "is a symlink" if link else "already exists"
        raise MimofmInputError(f"`--out` {str(out)!r} {what}; pass --force to replace it")
    if not link and src.resolve() == out.resolve():
        raise MimofmInputError("`--out` must differ from the source file")


def _load(src: Path, name: str | None, options: ImportOptions):
    """The channel set of ``src``, its format and how it was read (printed: one line)."""
    from mimofm.channels.formats import detect_format
    from mimofm.channels.io import read_channels

    fmt = detect_format(src)
    with console.status(f"reading {escape(str(src))} ({fmt})…"):
        cs, read_as = read_channels(src, name, options)
    print_read_as(src, read_as)
    return cs, fmt, read_as


@data_app.command("info")
@clean_errors
def info_command(
    file: Path = typer.Argument(..., help="Any importable channel file (.h5/.hdf5, .npz, .npy, .mat)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (same as --format json)."),
    fmt: OutputFormat = format_option(),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
) -> None:
    """Summarize a channel file: size, LOS ratio, median gain, split, metadata, checksum."""
    from mimofm.channels.io import site_info

    if as_json:
        if fmt not in (OutputFormat.table, OutputFormat.json):
            raise MimofmInputError(f"--json prints JSON; it cannot go with --format {fmt.value}")
        fmt = OutputFormat.json
    options = import_options(var, subcarrier, layout, max_memory)
    with row_progress(f"reading {escape(file.name)}", message_console(fmt)) as update:
        info = site_info(file, options, progress=update)
    ok = info["checksum_ok"]
    rows: list[list] = [
        ["file", info["file"]],
        ["format", info["format"] + (f" (schema {info['schema']})" if info["schema"] is not None else "")],
        ["read as", "—" if info["read_as"] is None else info["read_as"]],
        ["positions", str(info["num_positions"])],
        ["BS antennas", str(info["num_bs_ant"])],
        ["dtype", info["dtype"]],
        ["LOS ratio", "—" if info["los_ratio"] is None else f"{info['los_ratio']:.3f}"],
        ["median gain", f"{info['median_gain_db']:.1f} dB"],
        ["positions stored", "yes" if info["has_positions"] else "no"],
        [
            "split",
            "—"
            if info["split_counts"] is None
            else ", ".join(f"{k} {v}" for k, v in info["split_counts"].items()),
        ],
        ["file size", _size(info["file_size_bytes"])],
        ["created (UTC)", info["created_utc"] or "—"],
        [
            "checksum",
            "— (not a site file)"
            if ok is None
            else Text.assemble(("ok" if ok else "MISMATCH", "green" if ok else "bold red"), " ")
            + Text(info["checksum_sha256"]),
        ],
    ]
    for k, v in sorted(info["meta"].items()):
        text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        rows.append([f"meta.{k}", text if len(text) <= 200 else text[:197] + "…"])
    listing = Listing(
        header=["field", "value"],
        rows=rows,
        title=info["name"],
        show_header=False,
        no_wrap=False,
        overflow="fold",
    )
    emit(fmt, listing, info, [info], sort_keys=True)
    if info["checksum_ok"] is False:
        err_console.print(
            f"[bold red]error:[/] site file {escape(repr(str(file)))}: checksum mismatch "
            "(corrupted or edited); re-generate or re-import the site",
            highlight=False,
        )
        raise typer.Exit(code=2)


@data_app.command("import")
@clean_errors
def import_command(
    src: Path = typer.Argument(
        ..., help="Any importable channel file (.h5/.hdf5, .npz, .npy, .mat v5 or v7.3)."
    ),
    out: Path = typer.Option(..., "--out", help="The site file to write (.h5)."),
    name: str | None = typer.Option(
        None, "--name", help="Site name (default: the source's name or file stem)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    split: float | None = typer.Option(
        None,
        "--split",
        help="Write a position split: this share of the positions train, the rest halved into val and "
        "test (seeded permutation; replaces the source's split). `mimofm adapt` makes the same split "
        "(0.7, --split-seed = its --seed) for a file without one.",
    ),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the --split permutation."),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
) -> None:
    """Import a channel file as a mimofm site file (HDF5, schema 1, checksummed, written atomically).

    DeepMIMO, Sionna, QuaDRiGa and other layouts are detected and explained in one line (see
    docs/byo-channels.md); --var, --subcarrier and --layout override the detection. The file is checked
    from its header before any data is read, then read and written in blocks (bounded memory, a
    progress bar on a terminal); a failure or a kill leaves --out as it was.
    """
    from mimofm.adaptation.common import fraction_split
    from mimofm.channels.io import import_site
    from mimofm.channels.types import SPLIT_NAMES

    options = import_options(var, subcarrier, layout, max_memory)
    _check_out(src, out, (".h5", ".hdf5"), force)
    if split is not None and not 0 < split < 1:
        raise MimofmInputError(f"`--split` must be a fraction in (0, 1), got {split}")
    note = []

    def prepare(stream):
        print_read_as(src, stream.read_as)
        meta = {k: v for k, v in stream.meta.items() if k != "name"}  # the site's `name` attribute rules
        source = {"file": src.name, "format": stream.format}
        if stream.read_as is not None:
            source["read_as"] = stream.read_as.line()
            source["options"] = options.reading()
        meta["imported_from"] = source
        made = None
        if split is not None:
            made = fraction_split(stream.shape[0], split, split_seed)
            meta["split_made"] = {"train_fraction": split, "seed": split_seed}
            counts = ", ".join(f"{n} {int((made == c).sum())}" for c, n in enumerate(SPLIT_NAMES))
            replaced = " (replacing the source's)" if stream.split is not None else ""
            note.append(f"; split {counts}{replaced}")
        return meta, made

    with row_progress(f"importing {escape(src.name)}") as update:
        stream = import_site(src, out, name, options, prepare=prepare, progress=update, overwrite=force)
    num_positions, num_bs_ant = stream.shape
    console.print(
        f"imported [bold]{escape(stream.name)}[/]: {num_positions} positions × {num_bs_ant} antennas "
        f"→ [bold]{escape(str(out))}[/]{''.join(note)}"
    )


@data_app.command("export")
@clean_errors
def export_command(
    src: Path = typer.Argument(..., help="Any importable channel file (a site file, .npz, .npy, .mat, .h5)."),
    out: Path = typer.Option(..., "--out", help="The .npz file to write."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    var: str | None = var_option(),
    subcarrier: str | None = subcarrier_option(),
    layout: str | None = layout_option(),
    max_memory: str | None = max_memory_option(),
) -> None:
    """Export a channel file as .npz (H, los, positions, split, meta_json), written atomically."""
    from mimofm.channels.io import export_npz

    options = import_options(var, subcarrier, layout, max_memory)
    _check_out(src, out, (".npz",), force)
    cs, _, _ = _load(src, None, options)
    with console.status(f"writing {out}…"):
        export_npz(cs, out)
    console.print(
        f"exported [bold]{escape(cs.name)}[/]: {cs.num_positions} positions × {cs.num_bs_ant} antennas "
        f"→ [bold]{escape(str(out))}[/]"
    )
