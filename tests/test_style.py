"""Source style that ruff does not check: every reshape/view/permute/einsum carries a shape comment, on its
statement's lines or on the line just above the statement."""

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mimofm"
SHAPING = re.compile(r"\.(reshape|view|permute|transpose|flatten|unflatten|movedim)\(|einsum\(")


def _statement_starts(tree: ast.AST) -> dict[int, int]:
    """Line → first line of the innermost statement spanning it (1-based)."""
    start: dict[int, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            span = node.end_lineno - node.lineno
            for line in range(node.lineno, node.end_lineno + 1):
                if line not in start or span < start[line][1]:
                    start[line] = (node.lineno, span)
    return {line: s for line, (s, _) in start.items()}


def test_every_shaping_line_has_a_shape_comment():
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        lines, starts = text.splitlines(), _statement_starts(ast.parse(text))
        for n, line in enumerate(lines, start=1):
            if line.lstrip().startswith("#") or not SHAPING.search(line):
                continue
            first = starts.get(n, n)
            if not any("#" in x for x in lines[max(first - 2, 0) : n]):
                missing.append(f"{path.relative_to(SRC.parent)}:{n}: {line.strip()}")
    assert not missing, "add a shape comment (e.g. `# [B, K, N] -> [B, K*N]`):\n" + "\n".join(missing)
