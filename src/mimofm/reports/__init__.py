"""Generic report building blocks: Markdown/CSV tables (:mod:`.tables`), plots (:mod:`.plots`), HTML
pages (:mod:`.html`) and the sections of the `mimofm bench` results (:mod:`.bench`).

Nothing here knows a paper or a model: the experiments (:mod:`mimofm.experiments`) own their constants
and turn their stored results into pages with these helpers.
"""

from __future__ import annotations

from mimofm.reports.html import write_html
from mimofm.reports.tables import csv_table, markdown_table, write_csv

__all__ = ["csv_table", "markdown_table", "write_csv", "write_html"]
