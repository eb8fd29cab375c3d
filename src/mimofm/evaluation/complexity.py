"""Complexity of a precoder, three ways: analytic operation counts, measured FLOPs, wall-clock.

:func:`complexity` works for any registry name or any callable ``h [B, K, N] -> w [B, N, K]`` (the
neural precoders plug in the same way).

**Analytic counts** (``K`` users, ``N`` antennas, ``I`` iterations):

| precoder | source | count |
|---|---|---|
| zf | fm paper, Table II (FLOPs) | ``7(2/3 K³ + 2K²N)`` |
| zf | PaPP paper, Table I (real multiplications) | ``8K²N + 8/3 K³`` |
| wmmse | fm paper, Table II (FLOPs) | ``I(14/3 K N³ + 12K²N² + 12K²N + 9KN² + 8KN + 5K² + 68/3 K)`` |
| wmmse | PaPP paper, Table I (real multiplications) | ``4I(2/3 N³K + N²K + 2N(2K² + K) + K² + 14/3 K)`` |
| fm | fm paper, Table II (FLOPs of the paper's model) | ``(2^19 + 2^21)K + 2048K² + 1024KN`` |
| all | mimofm derivation (real multiplications) | see :func:`mimofm_multiplications` |

For fm the derivation takes the shipped checkpoint's architecture (``fm_flops`` ÷ 2, one multiplication
per multiply-add) plus its structure step ``W = Hᴴ(I + ΛHHᴴ)⁻¹`` at the requested size.

The mimofm derivation counts real multiplications of the algorithms as implemented (a complex
multiplication is 4 real ones; a ``K × K`` Hermitian eigendecomposition is taken as ``9K³`` real
multiplications ×4 for complex data, a linear solve / inversion as ``4·(4/3)K³``); it is an estimate
meant for comparing methods, not an instruction count.

**Measured FLOPs** come from ``torch.utils.flop_counter.FlopCounterMode``, which counts only
matmul-like aten ops (mm, bmm, addmm, convolutions, attention); factorizations (eigh, solve,
Cholesky, pinv/SVD) are *not* counted, so for classical precoders it is a lower bound.

**Wall-clock** is the median over repeats (after one warm-up call) of one batched call divided by the
batch size, on the device and thread count recorded in the report.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import fm_flops
from mimofm.models.papp import papp_multiplications
from mimofm.models.zoo import PAPP_CHECKPOINTS, build_precoder, fm_config, papp_config, precoder_catalog

__all__ = ["ComplexityReport", "complexity", "complexity_table", "mimofm_multiplications", "paper_counts"]


def paper_counts(name: str, k: int, n: int, iterations: float | None = None) -> dict[str, float]:
    """The papers' formulas for ``name`` (only ZF and WMMSE have them): ``{label: count}``."""
    out: dict[str, float] = {}
    i = iterations
    if name == "zf":
        out["fm Table II FLOPs"] = 7 * (2 / 3 * k**3 + 2 * k**2 * n)
        out["PaPP Table I real multiplications"] = 8 * k**2 * n + 8 / 3 * k**3
    elif name == "fm":
        out["fm Table II FLOPs (paper's model)"] = (2**19 + 2**21) * k + 2048 * k**2 + 1024 * k * n
    elif name.startswith("wmmse") and i is not None:
        out["fm Table II FLOPs"] = i * (
            14 / 3 * k * n**3
            + 12 * k**2 * n**2
            + 12 * k**2 * n
            + 9 * k * n**2
            + 8 * k * n
            + 5 * k**2
            + 68 / 3 * k
        )
        out["PaPP Table I real multiplications"] = (
            4 * i * (2 / 3 * n**3 * k + n**2 * k + 2 * n * (2 * k**2 + k) + k**2 + 14 / 3 * k)
        )
    return out


_MU_NEWTON = 8  # Newton steps of WMMSE's μ solve (typically 3-8; each ~5 multiplications per eigenvalue)
_EIGH = 4 * 9  # complex Hermitian eigendecomposition, × n³
_SOLVE = 4 * 4 / 3  # complex solve / inversion, × n³


def mimofm_multiplications(name: str, k: int, n: int, iterations: float | None = None) -> float | None:
    """Real multiplications of mimofm's implementation of ``name`` (estimate; ``None`` if unknown)."""
    gram = 4 * k * k * n  # H H^H
    norm = 4 * n * k  # ‖W‖_F² and the global scale
    i = iterations or 0.0
    if name == "mrt":
        return float(norm)
    if name in ("zf", "rzf", "rzf-eq"):
        return gram + _SOLVE * k**3 + 4 * n * k * k + norm
    if name == "zf-wf":
        return gram + _SOLVE * k**3 + 4 * n * k * k + 2 * n * k + 4 * k + norm
    if name in ("wmmse", "wmmse-ref") or (name.startswith("wmmse-") and name[6:].isdigit()):
        per_it = (
            4 * k**3
            + 2 * k * k
            + 6 * k
            + 8 * k * k
            + _EIGH * k**3
            + 4 * k * k
            + 5 * _MU_NEWTON * k
            + 4 * k**3
            + 2 * k * k
        )
        return gram + i * per_it + 4 * n * k * k + norm
    if name == "wmmse-antenna":
        per_it = (
            4 * k * k * n
            + 2 * k * k
            + 6 * k
            + 4 * n * n * k
            + _EIGH * n**3
            + 4 * n * n * k
            + 5 * _MU_NEWTON * n
            + 4 * n * n * k
            + 2 * k * k
        )
        return i * per_it + norm
    if name == "dpc":  # projected Newton: per step a KKT solve and ~2 Cholesky evaluations of the objective
        evaluation = _SOLVE * k**3 + 8 * k**3 + 2 * k * k
        return gram + 3 * evaluation + i * (2 * evaluation + 2 / 3 * (k + 1) ** 3 + 8 * k * k)
    if name == "qos":
        return gram + i * (_SOLVE * k**3 + 4 * k) + _SOLVE * k**3 + 4 * n * k * k + _SOLVE * k**3
    if "+wmmse-" in name:  # the network + G, the start's projection G^{-1} H W and i user-space updates
        base_name, steps = name.split("+wmmse-")
        base = mimofm_multiplications(base_name, k, n, iterations)
        polish = mimofm_multiplications(f"wmmse-{steps}", k, n, float(steps))
        start = 4 * n * k * k + _SOLVE * k**3
        return None if base is None or polish is None else base + polish + start
    if name.endswith("-refined"):  # the base precoder + the user-space sum-rate steps on its (λ, p)
        from mimofm.precoders.refine import refine_multiplications

        base = mimofm_multiplications(name.removesuffix("-refined"), k, n, iterations)
        return None if base is None else base + refine_multiplications(k)
    if (
        name == "fm"
    ):  # the shipped checkpoint's architecture at this size: network (FLOPs ÷ 2) + structure step
        cfg = dataclasses.replace(fm_config(), num_ue=k, num_bs_ant=n)
        structure = gram + _SOLVE * k**3 + 4 * n * k * k + norm if cfg.head_form == "structure" else norm
        return fm_flops(cfg) / 2 + structure
    if name in PAPP_CHECKPOINTS:  # the shipped checkpoint's sizes at this size (papp-hbf: its RF chains)
        return papp_multiplications(dataclasses.replace(papp_config(shipped=name), num_ue=k, num_bs_ant=n))
    return None


@dataclass
class ComplexityReport:
    """All three complexity views of one precoder at one size."""

    precoder: str
    num_ue: int
    num_bs_ant: int
    iterations: float | None
    analytic: dict[str, float] = field(default_factory=dict)
    mimofm_multiplications: float | None = None
    measured_flops_matmul_only: int | None = None
    seconds_per_precoder: dict[int, float] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    torch_version: str = torch.__version__

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (batch sizes of ``seconds_per_precoder`` as string keys)."""
        d = asdict(self)
        d["seconds_per_precoder"] = {str(b): t for b, t in self.seconds_per_precoder.items()}
        return d


def _channels(batch: int, k: int, n: int, seed: int, device: str) -> torch.Tensor:
    """Seeded clustered channels ``[batch, k, n]`` (complex64), median single-user SNR 10 dB.

    Users share 3 dominant directions (plus a weaker i.i.d. part) and their gains spread over 20 dB, as
    on ray-traced sites; i.i.d. Rayleigh channels would make WMMSE stop after one iteration and
    understate its cost.
    """
    g = torch.Generator().manual_seed(seed)

    def cn(*shape):
        return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)) / 2**0.5

    h = cn(batch, k, 3) @ cn(batch, 3, n) / 3**0.5 + 0.3 * cn(batch, k, n)
    gain_db = torch.rand(batch, k, 1, generator=g) * 20 - 10
    h = h * 10 ** (gain_db / 20)
    med = h.abs().square().sum(-1).median()
    return (h * torch.sqrt(10.0 / med)).to(device)


def _resolve(precoder: str | Callable) -> tuple[str, Callable[[torch.Tensor], object], bool]:
    """``(name, run, iterative)`` of a precoder name (built with its shipped checkpoint) or a callable."""
    if isinstance(precoder, str):
        spec = build_precoder(precoder)
        return spec.name, spec.run, spec.iterative
    if callable(precoder):
        return getattr(precoder, "__name__", type(precoder).__name__), precoder, False
    raise MimofmInputError(
        f"`precoder` must be a precoder name ({', '.join(precoder_catalog())}) or a callable"
    )


def _timed(fn: Callable, h: torch.Tensor, repeats: int) -> float:
    fn(h)  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        if h.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(h)
        if h.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def complexity(
    precoder: str | Callable,
    num_ue: int,
    num_bs_ant: int,
    *,
    iterations: float | None = None,
    batch_sizes: tuple[int, ...] = (1, 1024),
    repeats: int = 3,
    seed: int = 0,
    device: str = "cpu",
) -> ComplexityReport:
    """Analytic counts, measured FLOPs and wall-clock of ``precoder`` at ``num_ue × num_bs_ant``."""
    if num_ue < 1 or num_bs_ant < 1:
        raise MimofmInputError(f"`num_ue` and `num_bs_ant` must be >= 1, got {num_ue}, {num_bs_ant}")
    name, fn, iterative = _resolve(precoder)
    k, n = num_ue, num_bs_ant
    if iterations is None and iterative:
        out = fn(_channels(64, k, n, seed, device))
        its = getattr(out, "iterations", None)
        iterations = float(its.double().mean()) if its is not None else None
    h1 = _channels(1, k, n, seed, device)
    # the fused transformer fast path (eval mode) hides its matmuls from the counter: count the plain path
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as fc:
            fn(h1)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    timing = {b: _timed(fn, _channels(b, k, n, seed + 1, device), repeats) / b for b in batch_sizes}
    return ComplexityReport(
        precoder=name,
        num_ue=k,
        num_bs_ant=n,
        iterations=iterations,
        analytic=paper_counts(name, k, n, iterations),
        mimofm_multiplications=mimofm_multiplications(name, k, n, iterations),
        measured_flops_matmul_only=int(fc.get_total_flops()),
        seconds_per_precoder=timing,
        device=device,
        threads=torch.get_num_threads(),
    )


def complexity_table(reports: list[ComplexityReport], reference: str = "zf") -> list[dict]:
    """Flat rows for tables/JSON with time ratios to ``reference`` at the same size and batch."""
    ref = {(r.num_ue, r.num_bs_ant): r for r in reports if r.precoder == reference}
    rows = []
    for r in reports:
        row = {
            "precoder": r.precoder,
            "num_ue": r.num_ue,
            "num_bs_ant": r.num_bs_ant,
            "iterations": r.iterations,
            "mimofm_multiplications": r.mimofm_multiplications,
            "measured_flops_matmul_only": r.measured_flops_matmul_only,
            **{f"analytic: {k}": v for k, v in r.analytic.items()},
        }
        base = ref.get((r.num_ue, r.num_bs_ant))
        for b, t in r.seconds_per_precoder.items():
            row[f"s/precoder @ batch {b}"] = t
            if base is not None and b in base.seconds_per_precoder:
                row[f"time ratio to {reference} @ batch {b}"] = t / base.seconds_per_precoder[b]
        rows.append(row)
    return rows
