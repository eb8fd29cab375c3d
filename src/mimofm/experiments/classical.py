"""The classical study: time per precoder of the classical precoders and bounds on the CPU, with ratios
to ZF (``benchmarks/bench_precoders.py``, ``make bench``).

Not a test: timings depend on the machine; the result records the machine and the thread count. The
textbook N_T-dimensional WMMSE costs O(N_T³) per iteration; its large batch is capped
(``antenna_batch_cap``) so the full run stays within minutes.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass

import torch

from mimofm.core.rates import user_rates
from mimofm.evaluation.complexity import complexity
from mimofm.precoders.linear import zf
from mimofm.precoders.qos import qos_power_min
from mimofm.reports.tables import markdown_table

__all__ = ["METHODS", "QUICK", "ClassicalSpec", "qos", "render", "table_rows", "time_precoders"]

log = logging.getLogger(__name__)


def qos(h: torch.Tensor):
    """QoS power minimization with targets at half of each user's ZF rate (always feasible).

    ``h``: complex ``[batch, num_ue, num_bs_ant]``; returns :func:`qos_power_min`'s result.
    """
    targets = 0.5 * user_rates(h.to(torch.complex128), zf(h).to(torch.complex128))
    return qos_power_min(h, targets)


METHODS = ("zf", "zf-wf", "rzf", "wmmse", "wmmse-antenna", "dpc", "qos")


@dataclass(frozen=True)
class ClassicalSpec:
    """Array sizes, batch sizes and repeats of the timing study (defaults: the full run)."""

    num_bs_ant: tuple[int, ...] = (16, 64, 256)
    num_ue: tuple[int, ...] = (2, 4, 8, 16)
    batches: tuple[int, ...] = (1, 1024)
    repeats: int = 3
    antenna_batch_cap: int = 16


QUICK = ClassicalSpec(num_bs_ant=(16, 64), num_ue=(2, 4), batches=(1, 64), repeats=1)


def time_precoders(spec: ClassicalSpec) -> dict:
    """One row per (N_T, N_U ≤ N_T, method): iterations, seconds per precoder per batch size (keys: the
    batch as a string), the ratio to ZF at the same batch, operation counts; plus the machine."""
    cap = spec.antenna_batch_cap
    t_start = time.perf_counter()
    rows = []
    for n in spec.num_bs_ant:
        for k in spec.num_ue:
            if k > n:
                continue
            zf_t = None
            for name in METHODS:
                m = qos if name == "qos" else name
                used = {x: (min(x, cap) if name == "wmmse-antenna" else x) for x in spec.batches}
                r = complexity(m, k, n, batch_sizes=tuple(dict.fromkeys(used.values())), repeats=spec.repeats)
                t = {str(x): r.seconds_per_precoder[used[x]] for x in spec.batches}
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
                        "batch_used": {str(x): used[x] for x in spec.batches},
                    }
                )
                log.info(
                    "N_T=%d N_U=%d %s: %s", n, k, name, ", ".join(f"b{x} {t[x] * 1e6:.1f} µs" for x in t)
                )
    return {
        "rows": rows,
        "seconds_total": time.perf_counter() - t_start,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def table_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the timing table: µs per precoder and ×ZF at each batch size."""
    batches = list(doc["rows"][0]["seconds_per_precoder"]) if doc["rows"] else []
    header = ["N_T", "N_U", "precoder", "iters"]
    for x in batches:
        header += [f"µs @ b{x}", f"×ZF @ b{x}"]
    rows = []
    for r in doc["rows"]:
        cells = []
        for x in batches:
            cells += [f"{r['seconds_per_precoder'][x] * 1e6:.1f}", f"{r['ratio_to_zf'][x]:.1f}"]
        it = f"{r['iterations']:.1f}" if r["iterations"] else "-"
        rows.append([str(r["num_bs_ant"]), str(r["num_ue"]), r["precoder"], it, *cells])
    return header, rows


def render(doc: dict) -> str:
    """The timing table as Markdown, with the machine it ran on."""
    header, rows = table_rows(doc)
    lines = [
        f"### Seconds per precoder (CPU, {doc['threads']} threads) and ratio to ZF",
        "",
        *markdown_table(header, rows),
        "",
        f"Total {doc['seconds_total']:.0f} s; {doc['platform']}, torch {doc['torch']}.",
    ]
    return "\n".join(lines) + "\n"
