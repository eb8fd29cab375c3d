"""`mimofm report`: a readable report (Markdown + one standalone HTML file with its plots) of any result
JSON of `mimofm eval` / `mimofm bench`, or of the three papers' tables and figures from stored benchmark
results."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from mimofm.cli._common import clean_errors, console
from mimofm.core.errors import MimofmInputError

_DEFAULTS = {"fm": Path("runs/fm_paper"), "papp": Path("runs/papp_paper"), "wifoe": Path("runs/wifoe_paper")}


def _folder_option(family: str):
    return typer.Option(
        None,
        help=f"Output folder of benchmarks/{family}_paper.py (default: {_DEFAULTS[family]} when it exists; "
        "'' to skip).",
        show_default=False,
    )


@clean_errors
def report_command(
    results: list[Path] | None = typer.Argument(
        None,
        help="Result JSON files of `mimofm eval --json` (also --rate-targets, --task) or `mimofm bench "
        "latency|scaling|classical|crossover|cost --json`; given, the report is of these files alone.",
        show_default=False,
        metavar="RESULT.json",
    ),
    fm: Path | None = _folder_option("fm"),
    papp: Path | None = _folder_option("papp"),
    wifoe: Path | None = _folder_option("wifoe"),
    out: Path = typer.Option(Path("runs/report"), help="Report folder (report.md, report.html, PNGs)."),
) -> None:
    """Render result JSON files (`mimofm report runs/eval.json runs/latency.json --out runs/myreport`) into
    tables, plots and one standalone HTML page; with no files, re-make every paper-analogue table and figure
    from the benchmarks' results folders."""
    command = shlex.join(["mimofm", *sys.argv[1:]]) if sys.argv[1:2] == ["report"] else None
    if results:
        from mimofm.reports.results import render_results  # deferred: loads matplotlib

        path = render_results(list(results), out, command=command)
    else:
        given = {"fm": fm, "papp": papp, "wifoe": wifoe}
        folders = {}
        for fam, folder in given.items():
            if folder is None:  # the default: used when it is there
                if _DEFAULTS[fam].is_dir():
                    folders[fam] = _DEFAULTS[fam]
            elif str(folder) not in ("", "."):
                folders[fam] = folder
        if not folders and all(v is None for v in given.values()):
            raise MimofmInputError(
                "nothing to report: give result JSON files (`mimofm report runs/eval.json`) or results "
                "folders (--fm, --papp, --wifoe; none of the defaults "
                f"{', '.join(map(str, _DEFAULTS.values()))} exists)"
            )
        from mimofm.experiments.report import build_report  # deferred: loads the models and matplotlib

        path = build_report(folders, out, command=command)
    console.print(
        f"report: [bold]{path}[/] and {path.with_suffix('.html').name} "
        f"({', '.join(p.name for p in sorted(out.glob('*.png')))})"
    )
