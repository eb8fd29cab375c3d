"""Time per precoder of PyTorch and ONNX Runtime contenders, side by side, and the real-time budget.

Every contender runs on the same seeded clustered channels (``mimofm.evaluation.complexity``) at each
batch size (the networks' forward passes under ``torch.inference_mode``); the median of ``repeats`` calls
(after a warm-up) divided by the batch is the time per precoder (at batch 1: the p50 of 200 calls after
10 warm-up calls, with the p99 beside it), reported with its ratio to WMMSE measured in the same run.
ONNX sessions are created before timing; the ONNX contenders include the float64 ``K × K`` step that
forms ``W`` from the graph's outputs. wifoe runs end to end on its task with the same antenna count (T4:
64): pilots with noise, the users' B-bit feedback and the BS decoder — everything an FDD deployment
computes per precoder.

Real-time budget: a 100 MHz NR carrier at 30 kHz subcarrier spacing (273 resource blocks, 0.5 ms
slots) precoded per subband of 4 resource blocks needs ``69 × 2000 = 138,000`` precoders per second
per cell — the assumption behind ``budget_fraction`` (precoders/s sustained ÷ that need).
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mimofm.channels.tr38901 import get_task
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.complexity import _channels, _timed, mimofm_multiplications
from mimofm.evaluation.steps import StepCallback, StepCounter
from mimofm.export import (
    export_fm_onnx,
    export_papp_onnx,
    export_wifoe_onnx,
    ort_session,
    run_onnx,
    run_wifoe_onnx,
    wifoe_onnx_sessions,
)
from mimofm.models.wifoe import TaskShape, WiFoE, wifoe_flops
from mimofm.models.zoo import build_precoder, load_fm, load_papp, load_wifoe

__all__ = ["NEEDED_PER_SECOND", "LatencyConfig", "latency"]

NEEDED_PER_SECOND = 69 * 2000  # subbands of 4 RBs in 273 RBs, times 2000 slots/s (see module docstring)


@dataclass
class LatencyConfig:
    """What ``mimofm bench latency`` times: contenders, ``num_ue × num_bs_ant``, batch sizes, repeats, seed
    and
    thread count (0: PyTorch's default)."""

    methods: list[str] = field(
        default_factory=lambda: [
            "zf",
            "rzf",
            "rzf-refined",
            "wmmse",
            "fm",
            "fm-onnx",
            "fm-refined",
            "papp",
            "papp-onnx",
            "papp-refined",
            "papp-lite",
            "wifoe",
            "wifoe-onnx",
        ]
    )
    num_ue: int = 4
    num_bs_ant: int = 64
    batches: list[int] = field(default_factory=lambda: [1, 1024])
    repeats: int = 5
    seed: int = 0
    threads: int = 0  # > 0: PyTorch and ONNX Runtime on this many threads (1: the one-core real-time budget)


_LOADERS = {"fm": load_fm, "papp": load_papp, "wifoe": load_wifoe}


def _shipped(held: dict[str, torch.nn.Module], family: str) -> torch.nn.Module:
    """The shipped model of ``family``, loaded on first use and held in ``held`` for the rest of the run."""
    if family not in held:
        held[family] = _LOADERS[family]()
    return held[family]


def _wifoe_task(model: WiFoE, num_bs_ant: int) -> str:
    for t in model.branches:
        if get_task(t).num_bs_ant == num_bs_ant:
            return t
    raise MimofmInputError(
        f"the shipped wifoe has no task with {num_bs_ant} antennas (its tasks: {', '.join(model.branches)})"
    )


def _wifoe_contender(
    name: str, cfg: LatencyConfig, tmp: Path, held: dict
) -> Callable[[torch.Tensor], object]:
    """wifoe end to end on its task with ``cfg.num_bs_ant`` antennas: pilots and noise, the users' B-bit
    feedback, the BS decoder (PyTorch, or the exported user and BS graphs with ONNX Runtime)."""
    model = _shipped(held, "wifoe")
    task = _wifoe_task(model, cfg.num_bs_ant)
    if name == "wifoe":
        return lambda h: model(h, task, generator=torch.Generator().manual_seed(0))
    export_wifoe_onnx(model, task, tmp / "wifoe")
    sessions = wifoe_onnx_sessions(tmp / "wifoe", cfg.threads)
    rng = np.random.default_rng(0)
    L = sessions[0].shape[-1]

    def run(h: torch.Tensor):
        noise = (
            rng.standard_normal((*h.shape[:2], L)) + 1j * rng.standard_normal((*h.shape[:2], L))
        ) * 0.5**0.5
        return run_wifoe_onnx(tmp / "wifoe", h.numpy(), noise, sessions=sessions)

    return run


def _contender(name: str, cfg: LatencyConfig, tmp: Path, held: dict) -> Callable[[torch.Tensor], object]:
    if name in ("wifoe", "wifoe-onnx"):
        return _wifoe_contender(name, cfg, tmp, held)
    if name in ("fm-onnx", "papp-onnx"):
        path = (
            export_fm_onnx(_shipped(held, "fm"), tmp / "fm.onnx")
            if name == "fm-onnx"
            else export_papp_onnx(_shipped(held, "papp"), tmp / "papp.onnx")
        )
        session = ort_session(path, cfg.threads)
        return lambda h: run_onnx(path, h.numpy(), session=session)
    spec = build_precoder(name)
    if spec.kind != "precoder":
        raise MimofmInputError(f"{name!r} is a bound; time precoders only")
    return spec.run


def _counts(name: str, fn: Callable, cfg: LatencyConfig, held: dict) -> dict:
    """Operations of one precoder: mimofm's real-multiplication count and the matmul FLOPs PyTorch counts
    on one call (``None`` for the ONNX contenders: the same graph as their PyTorch model)."""
    if name.endswith("-onnx"):
        return {"multiplications": None, "measured_flops_matmul_only": None}
    k, n = cfg.num_ue, cfg.num_bs_ant
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused path hides its matmuls from the counter
    try:
        with FlopCounterMode(display=False) as fc:
            fn(_channels(1, k, n, cfg.seed, "cpu"))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    if name == "wifoe":
        model = _shipped(held, "wifoe")
        mults = wifoe_flops(model.cfg, TaskShape.of(get_task(_wifoe_task(model, n))), k)["total"] / 2
    else:
        out = fn(_channels(64, k, n, cfg.seed, "cpu"))
        its = getattr(out, "iterations", None)
        mults = mimofm_multiplications(name, k, n, None if its is None else float(its.double().mean()))
    return {"multiplications": mults, "measured_flops_matmul_only": int(fc.get_total_flops())}


BATCH1_CALLS = 200  # timed batch-1 calls (after 10 warm-up calls) behind the p50/p99 latencies


def _percentiles(fn: Callable, h: torch.Tensor, calls: int) -> dict[str, float]:
    """p50 and p99 seconds of ``calls`` single calls of ``fn(h)`` after 10 warm-up calls."""
    for _ in range(10):
        fn(h)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(h)
        times.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(times, [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def latency(
    cfg: LatencyConfig, progress: Callable[[str], None] | None = None, *, steps: StepCallback | None = None
) -> dict:
    """``{"rows": [...], "machine": ...}``: seconds per precoder, ratio to WMMSE, precoders/s, budget
    share. ``progress(message)`` as each (batch, method) timing starts, ``steps(done, total)`` as it
    finishes (total: batches × methods)."""
    if "wmmse" not in cfg.methods:
        raise MimofmInputError("include wmmse: every time is reported as a ratio to it")
    rows = []
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    held: dict[str, torch.nn.Module] = {}  # the shipped models this run needs, each loaded once
    counter = StepCounter(len(cfg.batches) * len(cfg.methods), steps)
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        fns = {m: _contender(m, cfg, Path(d), held) for m in cfg.methods}
        for b in cfg.batches:
            h = _channels(b, cfg.num_ue, cfg.num_bs_ant, cfg.seed, "cpu")
            t, tails = {}, {}
            for m, fn in fns.items():
                if progress:
                    progress(f"batch {b} · {m}")
                if b == 1:  # one precoder per call: the latency distribution, not just its median
                    tails[m] = _percentiles(fn, h, max(cfg.repeats, BATCH1_CALLS))
                    t[m] = tails[m]["p50"]
                else:
                    t[m] = _timed(fn, h, cfg.repeats) / b
                counter.advance()
            for m in cfg.methods:
                rows.append(
                    {
                        "method": m,
                        "batch": b,
                        "seconds_per_precoder": t[m],
                        "ratio_to_wmmse": t[m] / t["wmmse"],
                        "precoders_per_second": 1.0 / t[m],
                        "budget_fraction": 1.0 / t[m] / NEEDED_PER_SECOND,
                        "p50_seconds": tails[m]["p50"] if m in tails else None,
                        "p99_seconds": tails[m]["p99"] if m in tails else None,
                    }
                )
        ops = {m: _counts(m, fn, cfg, held) for m, fn in fns.items()}
    return {
        "config": cfg.__dict__,
        "needed_per_second": NEEDED_PER_SECOND,
        "rows": rows,
        "operations": ops,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": "cpu",
        },
    }
