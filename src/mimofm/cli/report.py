"""`mimofm report`: the three papers' tables and figures, re-made from stored benchmark results."""

from __future__ import annotations

from pathlib import Path

import typer

from mimofm.cli._common import clean_errors, console


@clean_errors
def report_command(
    fm: Path | None = typer.Option(
        Path("runs/fm_paper"), help="Output folder of benchmarks/fm_paper.py ('' to skip)."
    ),
    papp: Path | None = typer.Option(
        Path("runs/papp_paper"), help="Output folder of benchmarks/papp_paper.py ('' to skip)."
    ),
    wifoe: Path | None = typer.Option(
        Path("runs/wifoe_paper"), help="Output folder of benchmarks/wifoe_paper.py ('' to skip)."
    ),
    out: Path = typer.Option(Path("runs/report"), help="Report folder (report.md, report.html, PNGs)."),
) -> None:
    """Re-make every paper-analogue table and figure from the benchmarks' JSON results into one report."""
    from mimofm.experiments.report import build_report  # deferred: loads the models and matplotlib

    folders = {
        k: v for k, v in (("fm", fm), ("papp", papp), ("wifoe", wifoe)) if v and str(v) not in ("", ".")
    }
    path = build_report(folders, out)
    console.print(
        f"report: [bold]{path}[/] and {path.with_suffix('.html').name} "
        f"({', '.join(p.name for p in sorted(out.glob('*.png')))})"
    )
