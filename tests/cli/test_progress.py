"""The CLI's bars with a time estimate: off when the console is not a terminal, and the classical benchmark
counts its precisions as one piece of work."""

import io

import torch
from rich.console import Console

from mimofm.cli._common import work_progress


def test_work_progress_writes_nothing_off_a_terminal():
    buf = io.StringIO()
    out = Console(file=buf, force_terminal=False)
    with work_progress("timing", out) as (describe, steps):
        describe("zf")
        steps(1, 2)
        steps(2, 2)
    assert buf.getvalue() == ""


def test_bench_classical_counts_every_precision_together():
    from mimofm.cli.bench import _classical_side_by_side
    from mimofm.evaluation.classical_speed import ClassicalSpeedConfig

    calls = []
    h = torch.randn(2, 2, 8, dtype=torch.complex64)
    cfg = ClassicalSpeedConfig(methods=["zf", "mrt"], precisions=["single", "double"], repeats=1)
    out = Console(file=io.StringIO())
    _classical_side_by_side(h, cfg, None, False, out, None, lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total >= 4 and calls == [(i, total) for i in range(total + 1)]
