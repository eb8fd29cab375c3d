"""Time per precoder of the classical precoders and bounds on the CPU, with ratios to ZF.

    python benchmarks/bench_precoders.py [--nt 16,64,256] [--nu 2,4,8,16] [--batch 1,1024]
                                         [--repeats 3] [--quick] [--json out.json]

Not a test: timings depend on the machine. The table and JSON record the machine and thread count.
The textbook N_T-dimensional WMMSE costs O(N_T³) per iteration; its large batch is capped
(``--antenna-batch-cap``) so the full run stays within minutes, and the cap is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.core.rates import user_rates
from mimofm.evaluation.complexity import complexity
from mimofm.precoders.linear import zf
from mimofm.precoders.qos import qos_power_min


def qos(h: torch.Tensor):
    """QoS power minimization with targets at half of each user's ZF rate (always feasible)."""
    targets = 0.5 * user_rates(h.to(torch.complex128), zf(h).to(torch.complex128))
    return qos_power_min(h, targets)


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
    if a.quick:
        a.nt, a.nu, a.batch, a.repeats = "16,64", "2,4", "1,64", 1
    nts = [int(x) for x in a.nt.split(",")]
    nus = [int(x) for x in a.nu.split(",")]
    batches = tuple(int(x) for x in a.batch.split(","))
    methods = ["zf", "zf-wf", "rzf", "wmmse", "wmmse-antenna", "dpc", qos]
    console = Console()
    t_start = time.perf_counter()
    rows = []
    for n in nts:
        for k in nus:
            if k > n:
                continue
            zf_t = None
            for m in methods:
                name = m if isinstance(m, str) else m.__name__
                b = batches
                if name == "wmmse-antenna":
                    b = tuple(min(x, a.antenna_batch_cap) for x in batches)
                r = complexity(m, k, n, batch_sizes=tuple(dict.fromkeys(b)), repeats=a.repeats)
                t = {
                    str(x): r.seconds_per_precoder[
                        min(x, a.antenna_batch_cap) if name == "wmmse-antenna" else x
                    ]
                    for x in batches
                }
                if name == "zf":
                    zf_t = t
                rows.append(
                    {
                        "num_bs_ant": n,
                        "num_ue": k,
                        "precoder": name,
                        "iterations": r.iterations,
                        "seconds_per_precoder": t,
                        "ratio_to_zf": {x: t[x] / zf_t[x] for x in t},
                        "mimofm_multiplications": r.mimofm_multiplications,
                        "analytic": r.analytic,
                        "batch_used": {
                            str(x): (min(x, a.antenna_batch_cap) if name == "wmmse-antenna" else x)
                            for x in batches
                        },
                    }
                )
                console.log(f"N_T={n} N_U={k} {name}: " + ", ".join(f"b{x} {t[x] * 1e6:.1f} µs" for x in t))
    total = time.perf_counter() - t_start
    table = Table(title=f"seconds per precoder (CPU, {torch.get_num_threads()} threads) and ratio to ZF")
    for col in ("N_T", "N_U", "precoder", "iters"):
        table.add_column(col, justify="right")
    for x in batches:
        table.add_column(f"µs @ b{x}", justify="right")
        table.add_column(f"×ZF @ b{x}", justify="right")
    for r in rows:
        cells = []
        for x in batches:
            cells += [f"{r['seconds_per_precoder'][str(x)] * 1e6:.1f}", f"{r['ratio_to_zf'][str(x)]:.1f}"]
        it = f"{r['iterations']:.1f}" if r["iterations"] else "-"
        table.add_row(str(r["num_bs_ant"]), str(r["num_ue"]), r["precoder"], it, *cells)
    table.caption = (
        f"wmmse-antenna timed at batch ≤ {a.antenna_batch_cap}; total {total:.0f} s; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    console.print(table)
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "seconds_total": total,
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "platform": platform.platform(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
