"""A Markdown page as one standalone HTML file: a title, the mimofm version and the command that made it, a
list of the sections, tables, and every figure embedded (a ``data:`` URI) with a numbered caption, so the
page opens offline and can be mailed or archived as a single file."""

from __future__ import annotations

import base64
import html
import re
import time
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
    "margin-top:2em}\n"
    "figure{margin:1.2em 0}figcaption{font-size:.9em;color:#444;margin-top:.3em}\n"
    ".meta{color:#555;font-size:.9em}nav ul{margin:.3em 0}"
)
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_IMG_PARAGRAPH = re.compile(r"<p>\s*(<img [^>]*>)\s*</p>")
_IMG = re.compile(r"<img [^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_H2 = re.compile(r'<h2 id="([^"]+)">(.*?)</h2>')


def _data_uri(src: str, folder: Path) -> str:
    """``src`` as a ``data:`` URI when it names an image file beside the page; else ``src`` unchanged."""
    if ":" in src.split("/")[0]:  # http:, data:, file: ... left as they are
        return src
    file = folder / html.unescape(src)
    mime = _MIME.get(file.suffix.lower())
    if mime is None or not file.is_file():
        return src
    return f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode('ascii')}"


def _figures(body: str, folder: Path) -> str:
    """Each image on a paragraph of its own becomes a numbered ``<figure>`` whose caption is the image's
    Markdown title (``![alt](file.png "caption")``), else its alt text; every local image is embedded."""
    count = 0

    def embed(tag: str) -> str:
        attrs = dict(_ATTR.findall(tag))
        src = _data_uri(attrs.get("src", ""), folder)
        return f'<img alt="{attrs.get("alt", "")}" src="{src}">'

    def figure(m: re.Match) -> str:
        nonlocal count
        count += 1
        attrs = dict(_ATTR.findall(m.group(1)))
        caption = attrs.get("title") or attrs.get("alt", "")
        return (
            f"<figure>{embed(m.group(1))}<figcaption><b>Figure {count}.</b> {caption}</figcaption></figure>"
        )

    body = _IMG_PARAGRAPH.sub(figure, body)
    # images inside other text (a table cell, a sentence): embedded, no caption
    return _IMG.sub(lambda m: m.group(0) if "data:" in m.group(0) else embed(m.group(0)), body)


def _version() -> str:
    """The installed mimofm's version (read from the package metadata: ``mimofm/__init__`` is a layer
    above this one)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mimofm")
    except PackageNotFoundError:
        return "(version unknown: not installed)"


def write_html(md_path: Path, command: str | None = None) -> Path:
    """``X.html`` next to the Markdown file ``X.md``: the same page as one standalone file; returns its path.

    The page carries the Markdown's first ``# `` heading as its title, a line with the mimofm version, the
    date and ``command`` (the command that made the page, when given), a list of its ``## `` sections when
    there are two or more, and each image beside the Markdown embedded as a ``data:`` URI inside a figure
    whose caption is the image's Markdown title (or alt text)."""
    import markdown  # deferred: only the HTML output needs it

    md_path = Path(md_path)
    text = md_path.read_text()
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), md_path.stem)
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])
    body = _figures(body, md_path.parent)
    meta = f"mimofm {html.escape(_version())} · {time.strftime('%Y-%m-%d %H:%M')}"
    if command:
        meta += f" · made by <code>{html.escape(command)}</code>"
    head = f'<p class="meta">{meta}</p>'
    sections = _H2.findall(body)
    if len(sections) >= 2:
        items = "".join(f'<li><a href="#{i}">{t}</a></li>' for i, t in sections)
        head += f'<nav aria-label="sections"><b>Sections</b><ul>{items}</ul></nav>'
    h1 = re.search(r"<h1[^>]*>.*?</h1>", body, flags=re.S)
    body = body[: h1.end()] + head + body[h1.end() :] if h1 else f"<h1>{html.escape(title)}</h1>{head}{body}"
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
    path = md_path.with_suffix(".html")
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path
