"""One report of the three papers' analogues, re-made from stored benchmark results (`mimofm report`).

Each paper's experiment (:mod:`.fm_paper`, :mod:`.papp_paper`, :mod:`.wifoe_paper`) writes JSON files
into its run folder; its ``render`` turns those files into the tables and figures, so the same code makes
the benchmark's own ``summary.md`` and this report, and a figure can be re-made without re-running
anything.
"""

from __future__ import annotations

import time
from pathlib import Path

from mimofm.core.validation import MimofmInputError
from mimofm.experiments import fm_paper, papp_paper, wifoe_paper
from mimofm.reports.html import write_html

__all__ = ["FAMILIES", "build_report"]

FAMILIES = ("fm", "papp", "wifoe")
_MODULES = {"fm": fm_paper, "papp": papp_paper, "wifoe": wifoe_paper}
_TITLES = {
    "fm": "fm: maximum sum rate, rate targets, Tables I–II (held-out ray-traced sites)",
    "papp": "papp: zero-shot, DeepAll and fine-tuning (held-out ray-traced sites)",
    "wifoe": "wifoe: end-to-end FDD on the 3GPP 38.901 tasks",
}


def build_report(folders: dict[str, Path], out: Path, command: str | None = None) -> Path:
    """Write ``out/report.md`` (and the same as the standalone ``out/report.html``, made by ``command``) and
    its PNGs from the benchmark folders ``{family: folder}`` (families not given are skipped). A given
    folder that does not exist raises :class:`MimofmInputError` before anything is written."""
    for fam in FAMILIES:
        folder = folders.get(fam)
        if folder is not None and not Path(folder).is_dir():
            raise MimofmInputError(
                f"{fam}: results folder {str(folder)!r} does not exist (run the command in "
                f"docs/{fam}.md, or leave the option out)"
            )
    if not any(folders.get(fam) is not None for fam in FAMILIES):
        raise MimofmInputError("no results folder given (--fm, --papp, --wifoe)")
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# mimofm: the papers' analogues",
        "",
        f"Re-made by `mimofm report` on {time.strftime('%Y-%m-%d %H:%M')} from stored results; each section "
        "names the command that produced its data.",
        "",
    ]
    for fam in FAMILIES:
        folder = folders.get(fam)
        if folder is None:
            continue
        folder = Path(folder)
        mod = _MODULES[fam]
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
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_html(path, command=command)
    return path
