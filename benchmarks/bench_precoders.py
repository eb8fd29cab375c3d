"""Time per precoder of the classical precoders and bounds on the CPU, with ratios to ZF.

    python benchmarks/bench_precoders.py [--nt 16,64,256] [--nu 2,4,8,16] [--batch 1,1024]
                                         [--repeats 3] [--quick] [--json out.json]

Not a test: timings depend on the machine. The table and JSON record the machine and thread count.
The textbook N_T-dimensional WMMSE costs O(N_T³) per iteration; its large batch is capped
(``--antenna-batch-cap``) so the full run stays within minutes, and the cap is printed. The study
itself is :mod:`mimofm.experiments.classical`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.classical import QUICK, ClassicalSpec, table_rows, time_precoders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nt", default="16,64,256")
    ap.add_argument("--nu", default="2,4,8,16")
    ap.add_argument("--batch", default="1,1024")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--antenna-batch-cap", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="small sizes and batches (< 1 minute)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    spec = ClassicalSpec(ints(a.nt), ints(a.nu), ints(a.batch), a.repeats, a.antenna_batch_cap)
    if a.quick:
        spec = replace(QUICK, antenna_batch_cap=a.antenna_batch_cap)
    setup_logging()
    doc = time_precoders(spec)
    header, rows = table_rows(doc)
    table = Table(title=f"seconds per precoder (CPU, {torch.get_num_threads()} threads) and ratio to ZF")
    for col in header:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*r)
    table.caption = (
        f"wmmse-antenna timed at batch ≤ {spec.antenna_batch_cap}; total {doc['seconds_total']:.0f} s; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    Console().print(table)
    if a.json:
        a.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
