"""A Markdown page as a standalone HTML page (tables, fenced code, figures beside it)."""

from __future__ import annotations

import html
from pathlib import Path

from mimofm._io import atomic_path

__all__ = ["write_html"]

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;"
    "line-height:1.45}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;"
    "padding:.25em .6em;text-align:right}\n"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;"
    "border:1px solid #eee}\n"
    "code{background:#f6f6f6;padding:0 .2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;"
    "margin-top:2em}"
)


def write_html(md_path: Path) -> Path:
    """``X.html`` next to the Markdown file ``X.md``: the same page, standalone; returns its path."""
    import markdown  # deferred: only the HTML output needs it

    md_path = Path(md_path)
    text = md_path.read_text()
    title = next((ln[2:] for ln in text.splitlines() if ln.startswith("# ")), md_path.stem)
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
    path = md_path.with_suffix(".html")
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path
