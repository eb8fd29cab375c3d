"""Write docs/api.md, the reference of mimofm's public surface (``mimofm.__all__``), from its docstrings.

Run ``python scripts/gen_api_docs.py`` (or ``make docs-api``) after changing a public name's signature or
docstring; tests/test_api_docs.py fails while docs/api.md is stale. ``--output PATH`` writes elsewhere.
Uses :mod:`inspect` only: each name's signature and docstring (classes: their public methods and
properties too), with Sphinx roles (``:func:`x```) rendered as code.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import mimofm

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc):`(~?)([^`]+)`")
HEADER = """# Python API reference

The public surface of `mimofm` (`mimofm.__all__`): `import mimofm` is cheap, each name is imported on first
use. Shapes follow [the conventions](conventions.md): a channel `h` is complex `[..., K, N]` (users × BS
antennas, row `u` is `h_u^H`), a precoder `W` complex `[..., N, K]`; rates in bit/s/Hz at unit noise, power
in units of the budget (`‖W‖_F² ≤ 1`). The command line is in [cli.md](cli.md).

Generated from the docstrings by `python scripts/gen_api_docs.py` (`make docs-api`); do not edit by hand.
"""


def _role(match: re.Match) -> str:
    """A Sphinx role as code: ``:func:`~a.b.c``` -> ````c````, ``:func:`a.b```  -> ````a.b````."""
    tilde, target = match.groups()
    return f"``{target.rsplit('.', 1)[-1] if tilde else target}``"


def _text(doc: str | None) -> str:
    """A docstring as Markdown: Sphinx roles as code, reST double backticks as single ones."""
    doc = ROLE.sub(_role, inspect.cleandoc(doc or "")).replace("``", "`")
    return "\n".join(_sections(doc.splitlines()))


def _sections(lines: list[str]) -> list[str]:
    """Google-style ``Args:`` / ``Returns:`` blocks as bold headings and bullet lists (indented text would
    be a code block in Markdown)."""
    out, in_block = [], False
    for line in lines:
        if line.rstrip() in ("Args:", "Returns:", "Raises:"):
            out += [f"**{line.strip()[:-1]}**", ""]
            in_block = True
        elif in_block and line.startswith("        "):
            out[-1] += " " + line.strip()  # continuation of the entry above
        elif in_block and line.startswith("    "):
            name, sep, rest = line.strip().partition(": ")
            out.append(f"- `{name}`: {rest}" if sep and " " not in name else f"- {line.strip()}")
        else:
            in_block = False  # an unindented line ends the block
            out.append(line)
    return out


class _Source:
    """An annotation or default shown as written (``list[str]``, not ``'list[str]'``)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _default(value) -> object:
    """A parameter's default as shown: its repr, or ``...`` where that would be long or hold an address."""
    text = repr(value)
    return _Source("..." if len(text) > 40 or " at 0x" in text else text)


def _signature(name: str, obj) -> str:
    """``name(params) -> return`` with annotations as written in the source, one parameter a line when
    long."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    params = []
    for prm in sig.parameters.values():
        ann = prm.annotation
        prm = prm.replace(annotation=ann if ann is prm.empty else _Source(str(ann)))
        params.append(prm if prm.default is prm.empty else prm.replace(default=_default(prm.default)))
    empty, ret = inspect.Signature.empty, sig.return_annotation
    ret = empty if inspect.isclass(obj) or ret is empty else _Source(str(ret))  # a class: no "-> None"
    sig = sig.replace(parameters=params, return_annotation=ret)
    text = f"{name}{sig}"
    if len(text) <= 100:
        return text
    parts, star = [], False
    for prm in sig.parameters.values():
        if prm.kind is prm.KEYWORD_ONLY and not star:
            parts.append("*")  # the marker str(sig) writes on one line
        star = star or prm.kind in (prm.KEYWORD_ONLY, prm.VAR_POSITIONAL)
        parts.append(str(prm))
    body = ",\n".join(f"    {part}" for part in parts)
    tail = "" if sig.return_annotation is inspect.Signature.empty else f" -> {sig.return_annotation!r}"
    return f"{name}(\n{body},\n){tail}"


def _members(cls) -> list[str]:
    """The public methods and properties defined on ``cls`` (not inherited), as Markdown."""
    out = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, property):
            out.append(f"- **`{attr}`** (property): {_text(value.__doc__)}")
        elif inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
            fn = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
            out.append(f"- **`{_signature(attr, fn)}`**: {_text(fn.__doc__)}")
    return [line.replace("\n", "\n  ") for line in out]


def _section(name: str, obj) -> list[str]:
    """One public name's section."""
    if not callable(obj):
        return [f"## `{name}`", "", f"`{name} = {obj!r}`: the package version.", ""]
    kind = (
        "exception"
        if inspect.isclass(obj) and issubclass(obj, Exception)
        else ("class" if inspect.isclass(obj) else "function")
    )
    lines = [f"## `{name}`", "", f"*{kind}* `{obj.__module__}.{obj.__qualname__}`", ""]
    if kind != "exception":
        lines += ["```python", _signature(name, obj), "```", ""]
    lines += [_text(obj.__doc__), ""]
    if kind == "class" and (members := _members(obj)):
        lines += ["Members:", "", *members, ""]
    return lines


def render() -> str:
    """docs/api.md's text."""
    names = sorted(mimofm.__all__, key=lambda n: (n.startswith("_"), n.lower()))
    lines = [HEADER, "## Contents", ""]
    lines += [f"- [`{n}`](#{n.lower()})" for n in names] + [""]
    for n in names:
        lines += _section(n, getattr(mimofm, n))
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    """Write :func:`render` to ``--output`` (default: docs/api.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "api.md")
    args = parser.parse_args()
    args.output.write_text(render())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
