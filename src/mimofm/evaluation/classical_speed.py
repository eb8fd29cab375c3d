"""Classical precoders side by side with outside references, in one run: throughput and sum rate.

:func:`classical_speed` times mimofm's kernels (:mod:`mimofm.precoders`) and any outside implementation of
the same algorithms on the *same* SNR-scaled channels ``[B, K, N]``: the plain NumPy reference kept in the
repository's ``benchmarks/numpy_reference.py`` (not part of the package) and Sionna PHY's own precoders
(``rzf_precoding_matrix``, ``cbf_precoding_matrix``) where Sionna is installed. Each contender is warmed up
and timed ``repeats`` times; the median gives precoders per second. Every row also carries the mean sum
rate of what the contender returned, recomputed here in float64, so a faster kernel that lost quality
shows. Ratios compare implementations of one method at one precision measured in this run.

:func:`form_crossover` times the two forms of WMMSE (user space ``K × K`` and textbook ``N × N``) at a
fixed iteration count over a grid of antennas and users: where they cross.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError, check_choice
from mimofm.evaluation.classical_names import DEFAULT_METHODS, PRECISIONS
from mimofm.evaluation.steps import StepCallback, StepCounter
from mimofm.precoders import linear
from mimofm.precoders.bounds import dpc_sum_capacity
from mimofm.precoders.wmmse import wmmse

__all__ = [
    "DEFAULT_METHODS",
    "ClassicalSpeedConfig",
    "CrossoverConfig",
    "classical_speed",
    "classical_speed_steps",
    "form_crossover",
    "mimofm_kernels",
    "sionna_kernels",
]

_DTYPE = {"single": torch.complex64, "double": torch.complex128}

Kernel = Callable[[object], object]
"""``h`` ``[B, K, N]`` (a tensor, or an array for NumPy contenders) -> ``W`` ``[B, N, K]`` at unit power, or
a sum rate ``[B]`` (bounds)."""


@dataclass
class ClassicalSpeedConfig:
    """What ``mimofm bench classical`` times: methods, precisions, repeats, CPU threads (0: leave as is)."""

    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    repeats: int = 7
    threads: int = 1
    device: str = "cpu"  # where mimofm's and Sionna's kernels run ("cuda" on a GPU); NumPy runs on the CPU

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` on an unknown method or precision, or a bad count."""
        for p in self.precisions:
            check_choice(p, "precision", PRECISIONS)
        known = set(mimofm_kernels("double"))
        for m in self.methods:
            if m not in known:
                raise MimofmInputError(f"unknown method {m!r}; valid: {', '.join(sorted(known))}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise MimofmInputError(f"device {self.device!r} asked for, but no CUDA device is available")
        if self.repeats < 1 or self.threads < 0:
            raise MimofmInputError(
                f"repeats must be >= 1 and threads >= 0, got {self.repeats}, {self.threads}"
            )


def _truncated(i: int, precision: str) -> Kernel:
    return lambda h: wmmse(h, max_iter=i, tol=0.0, precision=precision).w


def mimofm_kernels(precision: str) -> dict[str, Kernel]:
    """mimofm's classical kernels by method name, at ``precision`` (unit power and noise)."""
    p = precision
    kernels: dict[str, Kernel] = {
        "mrt": lambda h: linear.mrt(h, precision=p),
        "zf": lambda h: linear.zf(h, precision=p),
        "zf-wf": lambda h: linear.zf_wf(h, precision=p),
        "rzf": lambda h: linear.rzf(h, precision=p),
        "rzf-eq": lambda h: linear.rzf_equal_power(h, precision=p),
        "wmmse": lambda h: wmmse(h, precision=p).w,
        "dpc": lambda h: dpc_sum_capacity(h).sum_rate,
    }
    for i in (1, 2, 3, 5, 10):
        kernels[f"wmmse-{i}"] = _truncated(i, p)
    return kernels


def sionna_kernels(precision: str) -> dict[str, Kernel]:
    """Sionna PHY's precoders under mimofm's method names (empty when Sionna is not installed).

    Sionna normalizes every column (equal power per user); the columns are scaled by ``1/√K`` here so the
    total power is 1 like every other contender. ``rzf-eq`` is Sionna's RZF with ``α = K`` (mimofm's
    ``rzf_equal_power``); ``zf`` is its ``α = 0`` (ZF with equal power per user, where mimofm's ``zf`` uses
    one global scale); ``mrt`` is ``cbf_precoding_matrix`` (likewise per column).
    """
    try:
        from sionna.phy.mimo import cbf_precoding_matrix, rzf_precoding_matrix
    except ImportError:  # pragma: no cover - Sionna is an optional extra
        return {}

    def unit(g: torch.Tensor) -> torch.Tensor:
        return g / math.sqrt(g.shape[-1])

    return {
        "mrt": lambda h: unit(cbf_precoding_matrix(h, precision=precision)),
        "zf": lambda h: unit(rzf_precoding_matrix(h, alpha=0.0, precision=precision)),
        "rzf-eq": lambda h: unit(rzf_precoding_matrix(h, alpha=float(h.shape[-2]), precision=precision)),
    }


def _timed(fn: Kernel, h, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up, and the warm-up's output (CUDA work is
    synchronized inside each timed call)."""
    cuda = isinstance(h, torch.Tensor) and h.is_cuda
    out = fn(h)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(h)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _mean_rate(h128: torch.Tensor, out) -> float:
    """Mean sum rate (bit/s/Hz, unit noise) of a contender's output on the float64 channel ``[B, K, N]``."""
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(out))
    out = out.cpu()
    out = out.to(torch.complex128) if out.is_complex() else out.double()
    if out.dim() == 1:  # a bound: its own sum rate
        return float(out.mean())
    return float(sum_rate(h128, out).mean())


def _thread_limit(threads: int):
    """Limit PyTorch and NumPy's BLAS/OpenMP pools to ``threads`` (0: leave them); a context manager."""
    from contextlib import ExitStack

    from threadpoolctl import threadpool_limits

    stack = ExitStack()
    if threads:
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        stack.callback(torch.set_num_threads, old)
        stack.enter_context(threadpool_limits(limits=threads))
    return stack


def _implementations(precision: str, refs: Mapping[str, Mapping[str, Kernel]]) -> dict[str, dict]:
    """mimofm's kernels at ``precision`` and each reference's, by implementation name."""
    return {"mimofm": mimofm_kernels(precision)} | {name: dict(k) for name, k in refs.items()}


def classical_speed_steps(
    cfg: ClassicalSpeedConfig, references: Mapping[str, Mapping[str, Kernel]] | None = None
) -> int:
    """How many timings :func:`classical_speed` runs for ``cfg`` and ``references``: one per precision,
    method and implementation that has the method."""
    return sum(
        m in kernels
        for prec in cfg.precisions
        for kernels in _implementations(prec, dict(references or {})).values()
        for m in cfg.methods
    )


def classical_speed(
    h: torch.Tensor,
    cfg: ClassicalSpeedConfig,
    references: Mapping[str, Mapping[str, Kernel]] | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    steps: StepCallback | None = None,
) -> dict:
    """Time every method of ``cfg`` in mimofm and in each reference, on the SNR-scaled channels ``h``.

    Args:
        h: ``[B, K, N]`` complex SNR-scaled channels (unit power, unit noise).
        cfg: methods, precisions, repeats, threads.
        references: implementation name -> {method -> kernel}; a kernel takes a NumPy array when the name
            starts with ``numpy``, else a tensor. Methods a reference lacks are skipped for it.
        progress: called with ``"precision · method · implementation"`` as each timing starts.
        steps: called with ``(done, total)`` as each timing finishes (:func:`classical_speed_steps`).
    Returns:
        ``{"rows": [...], "machine": ..., "config": ...}``; each row: method, implementation, precision,
        batch, seconds_per_batch, precoders_per_second, sum_rate_mean and ``speedup_vs`` (mimofm rows:
        reference name -> that reference's time ÷ mimofm's, >1 means mimofm is faster) and the device
        that produced the row.
    """
    cfg.validate()
    if h.dim() != 3 or not h.is_complex():
        raise MimofmInputError(f"h must be complex [B, K, N], got {tuple(h.shape)} {h.dtype}")
    refs = dict(references or {})
    h128 = h.to(torch.complex128)
    batch = h.shape[0]
    rows = []
    counter = StepCounter(classical_speed_steps(cfg, refs), steps)
    with _thread_limit(cfg.threads):
        for prec in cfg.precisions:
            hn = h.to(_DTYPE[prec]).numpy()
            ht = h.to(device=cfg.device, dtype=_DTYPE[prec])
            impls = _implementations(prec, refs)
            for m in cfg.methods:
                timed = {}
                for impl, kernels in impls.items():
                    if m not in kernels:
                        continue
                    if progress:
                        progress(f"{prec} · {m} · {impl}")
                    arg = hn if impl.startswith("numpy") else ht
                    secs, out = _timed(kernels[m], arg, cfg.repeats)
                    counter.advance()
                    timed[impl] = secs
                    rows.append(
                        {
                            "method": m,
                            "implementation": impl,
                            "device": "cpu" if impl.startswith("numpy") else cfg.device,
                            "precision": prec,
                            "batch": batch,
                            "seconds_per_batch": secs,
                            "precoders_per_second": batch / secs,
                            "sum_rate_mean": _mean_rate(h128, out),
                        }
                    )
                for r in rows[-len(timed) :]:
                    if r["implementation"] == "mimofm":
                        r["speedup_vs"] = {i: t / timed["mimofm"] for i, t in timed.items() if i != "mimofm"}
    return {
        "config": asdict(cfg),
        "num_ue": h.shape[1],
        "num_bs_ant": h.shape[2],
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": cfg.threads or torch.get_num_threads(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "device": cfg.device
            + (f" ({torch.cuda.get_device_name(cfg.device)})" if cfg.device.startswith("cuda") else ""),
        },
    }


@dataclass
class CrossoverConfig:
    """Grid of :func:`form_crossover`: antennas × users (``K <= N``), WMMSE iterations, repeats, threads and
    the most ``N × N`` work per timed call (it sets the batch, at least 2 and at most ``max_batch``)."""

    antennas: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256, 512, 1024])
    users: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32, 64])
    iterations: int = 3
    repeats: int = 3
    threads: int = 1
    max_batch: int = 256
    work: int = 2**22  # batch · N² of the textbook form per call
    seed: int = 0

    @classmethod
    def quick(cls) -> CrossoverConfig:
        """A smoke-sized grid (seconds)."""
        return cls(antennas=[16, 64], users=[2, 8], repeats=1, max_batch=32)


def form_crossover(
    cfg: CrossoverConfig, progress: Callable[[str], None] | None = None, *, steps: StepCallback | None = None
) -> dict:
    """Seconds per precoder of ``cfg.iterations`` WMMSE updates in the user-space and the textbook form.

    Rows: num_bs_ant, num_ue, form (``user`` / ``antenna``), batch, seconds_per_precoder. Channels are the
    seeded clustered channels of :mod:`mimofm.evaluation.complexity` (median single-user SNR 10 dB).
    ``progress(message)`` as each timing starts, ``steps(done, total)`` as it finishes (two forms per
    ``(N, K)`` point with ``K ≤ N``).
    """
    from mimofm.evaluation.complexity import _channels

    rows = []
    points = [(n, k) for n in cfg.antennas for k in cfg.users if k <= n]
    counter = StepCounter(2 * len(points), steps)
    with _thread_limit(cfg.threads):
        for n, k in points:
            b = max(2, min(cfg.max_batch, cfg.work // (n * n)))
            h = _channels(b, k, n, cfg.seed, "cpu")
            for form in ("user", "antenna"):
                if progress:
                    progress(f"N={n} K={k} {form}")
                fn = lambda x, f=form: wmmse(x, form=f, max_iter=cfg.iterations, tol=0.0)  # noqa: E731
                secs, _ = _timed(fn, h, cfg.repeats)
                counter.advance()
                rows.append(
                    {
                        "num_bs_ant": n,
                        "num_ue": k,
                        "form": form,
                        "batch": b,
                        "seconds_per_precoder": secs / b,
                    }
                )
    return {
        "config": asdict(cfg),
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "threads": cfg.threads or torch.get_num_threads(),
            "torch": torch.__version__,
        },
    }
