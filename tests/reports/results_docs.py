"""Synthetic result JSONs of every kind `mimofm report` renders, shaped as `mimofm eval` / `mimofm bench`
write them (the keys the renderer reads; numbers chosen so the tables can be checked by hand)."""

from __future__ import annotations

import json
from pathlib import Path

SNRS = [0.0, 10.0, 20.0]
MACHINE = {"platform": "Linux-test", "threads": 2, "torch": "2.13.0+cpu", "device": "cpu"}


def eval_doc() -> dict:
    """Two sites × three SNRs × (zf, wmmse, fm, dpc); zf, fm and dpc: 0.5, 0.9 and 1.1 × WMMSE."""
    rows = []
    for site in ("s1", "s2"):
        for snr in SNRS:
            w = 2.0 + snr / 5
            for p, f in (("zf", 0.5), ("wmmse", 1.0), ("fm", 0.9), ("dpc", 1.1)):
                rows.append(
                    {
                        "site": site,
                        "precoder": p,
                        "kind": "bound" if p == "dpc" else "precoder",
                        "snr_db": snr,
                        "noise_dbm": -30.0,
                        "sum_rate_mean": f * w,
                        "sum_rate_ci95": 0.05,
                        "num_samples": 100,
                        "seconds_per_precoder": {"zf": 5e-6, "wmmse": 4e-4, "fm": 1e-4, "dpc": 1e-3}[p],
                        "ratio_to_wmmse": f,
                    }
                )
    cfg = {"num_ue": 4, "samples": 100, "seed": 0, "snr_convention": "site-median", "csi_nmse_db": None}
    return {"mimofm_result": "eval", "config": cfg, "machine": MACHINE, "results": rows}


def tradeoff_doc() -> dict:
    """fm's rate-target mode at one site, 20 dB, β 0.2 and 0.5."""
    rows = []
    for beta in (0.2, 0.5):
        base = {"site": "s1", "snr_db": 20.0, "beta": beta}
        rows += [
            {
                **base,
                "method": "fm",
                "num_samples": 50,
                "feasible_fraction": 1.0,
                "requested_sum_rate_mean": 10 * beta,
                "achieved_sum_rate_mean": 10 * beta + 0.1,
                "energy_w_mean": 30.0,
                "rel_rate_error_mean": 0.042,
                "rel_rate_error_feasible_mean": 0.031,
                "antennas_on_mean": 40.0,
            },
            {**base, "method": "qos@fm-rates", "requested_sum_rate_mean": 10 * beta, "fm_energy_ratio": 0.45},
            {
                **base,
                "method": "greedy@fm-rates",
                "requested_sum_rate_mean": 10 * beta,
                "fm_energy_ratio": 0.9,
            },
            {
                **base,
                "method": "qos@requests",
                "requested_sum_rate_mean": 10 * beta,
                "feasible_fraction": 0.97,
            },
        ]
    cfg = {"samples": 50, "p_tx_w": 20.0, "p_rf_w": 1.0}
    return {"mimofm_result": "tradeoff", "config": cfg, "machine": MACHINE, "results": rows}


def wifoe_doc() -> dict:
    """`mimofm eval --precoder wifoe --task T4 --json`: one task, two SNRs."""
    rows = [
        {
            "task": "T4",
            "branch": "T4",
            "snr_db": s,
            "resolved_pilot_snr_db": s + 6.0,
            "rate": 0.8 * (3 + s / 5),
            "zf": 0.7 * (3 + s / 5),
            "wmmse": 3 + s / 5,
            "ratio_to_wmmse": 0.8,
        }
        for s in (10.0, 20.0)
    ]
    return {"precoder": "wifoe", "samples_per_k": 20, "snr_convention": "received", "rows": rows}


def latency_doc() -> dict:
    """`mimofm bench latency --json` with zf and wmmse at batches 1 and 64."""
    rows = []
    for b in (1, 64):
        for m, s in (("zf", 2e-5), ("wmmse", 4e-4)):
            rows.append(
                {
                    "method": m,
                    "batch": b,
                    "seconds_per_precoder": s / b**0.5,
                    "ratio_to_wmmse": s / 4e-4,
                    "precoders_per_second": b**0.5 / s,
                    "budget_fraction": b**0.5 / s / 138000,
                    "p99_seconds": 1.5 * s if b == 1 else None,
                }
            )
    cfg = {"num_ue": 4, "num_bs_ant": 64, "batches": [1, 64], "repeats": 5}
    return {"config": cfg, "needed_per_second": 138000, "rows": rows, "machine": MACHINE}


def crossover_doc() -> dict:
    """`mimofm bench crossover --json`: the textbook form is 3× slower at every point."""
    rows = [
        {
            "num_bs_ant": n,
            "num_ue": k,
            "form": f,
            "batch": 16,
            "seconds_per_precoder": (3 if f == "antenna" else 1) * 1e-5 * n,
        }
        for n in (16, 64)
        for k in (2, 8)
        for f in ("user", "antenna")
    ]
    return {"config": {"iterations": 3}, "rows": rows, "machine": MACHINE}


def classical_doc() -> dict:
    """`mimofm bench classical --json`: zf in mimofm and numpy."""
    rows = [
        {
            "method": "zf",
            "implementation": impl,
            "precision": "single",
            "precoders_per_second": pps,
            "sum_rate_mean": 5.5,
            "speedup_vs": {"numpy": 2.5} if impl == "mimofm" else {},
        }
        for impl, pps in (("mimofm", 250000.0), ("numpy", 100000.0))
    ]
    return {
        "num_ue": 4,
        "num_bs_ant": 64,
        "data": "s1 (test positions)",
        "snr_db": 10.0,
        "rows": rows,
        "machine": MACHINE,
    }


def write(folder: Path, name: str, doc: dict) -> Path:
    """``doc`` as ``folder/name.json``; its path."""
    path = Path(folder) / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path
