"""Generic tables: Markdown and CSV from a header and rows of already formatted cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from mimofm._io import atomic_path

__all__ = ["csv_table", "markdown_table", "write_csv"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """The lines of a GitHub-flavoured Markdown table (cells are written with ``str``)."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"a row has {len(r)} cells for a header of {len(header)}")
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return out


def csv_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The same table as CSV text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """:func:`csv_table` written atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(csv_table(header, rows))
    return path
