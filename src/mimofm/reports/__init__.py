"""One report of the three papers' analogues, re-made from stored benchmark results (`mimofm report`).

Each paper's benchmark script (``benchmarks/{fm,papp,wifoe}_paper.py``) writes JSON files into its
output folder; the modules here turn those files into the tables and figures, so the same code makes
the benchmark's own ``summary.md`` and this report, and a figure can be re-made without re-running
anything.
"""

from __future__ import annotations

import time
from pathlib import Path

from mimofm.core.validation import MimofmInputError

__all__ = ["FAMILIES", "build_report", "write_html"]

FAMILIES = ("fm", "papp", "wifoe")
_TITLES = {
    "fm": "fm: maximum sum rate, rate targets, Tables I–II (held-out ray-traced sites)",
    "papp": "papp: zero-shot, DeepAll and fine-tuning (held-out ray-traced sites)",
    "wifoe": "wifoe: end-to-end FDD on the 3GPP 38.901 tasks",
}


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f6f6f6;padding:0 .2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}"""


def write_html(md_path: Path) -> Path:
    """``report.html`` next to ``md_path``: the same Markdown as a standalone page (tables, figures beside it)."""
    import html

    import markdown

    md_path = Path(md_path)
    text = md_path.read_text()
    title = next((ln[2:] for ln in text.splitlines() if ln.startswith("# ")), md_path.stem)
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
    path = md_path.with_suffix(".html")
    path.write_text(page)
    return path


def build_report(folders: dict[str, Path], out: Path) -> Path:
    """Write ``out/report.md`` (and the same as ``out/report.html``) and its PNGs from the benchmark folders
    ``{family: folder}`` (missing ones skipped)."""
    from importlib import import_module

    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# mimofm: the papers' analogues",
        "",
        f"Re-made by `mimofm report` on {time.strftime('%Y-%m-%d %H:%M')} from stored results; each section "
        "names the command that produced its data.",
        "",
    ]
    done = []
    for fam in FAMILIES:
        folder = folders.get(fam)
        if folder is None:
            continue
        folder = Path(folder)
        if not folder.is_dir():
            raise MimofmInputError(
                f"{fam}: results folder {str(folder)!r} does not exist (run the command in "
                f"docs/{fam}.md, or leave the option out)"
            )
        mod = import_module(f"mimofm.reports.{fam}_paper")
        try:
            md, pngs = mod.render(folder, out)
        except FileNotFoundError as e:
            raise MimofmInputError(
                f"{fam}: {e.filename} is missing; re-run `{mod.COMMAND.format(folder=folder)}`"
            ) from None
        lines += [
            f"## {_TITLES[fam]}",
            "",
            f"Data: `{folder}`, produced by `{mod.COMMAND.format(folder=folder)}`.",
            "",
        ]
        lines += md.splitlines() + [""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
        done.append(fam)
    if not done:
        raise MimofmInputError("no results folder given (--fm, --papp, --wifoe)")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_html(path)
    return path
