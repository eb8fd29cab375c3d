"""The classical precoders and bounds by name: one read-only table, one calling convention.

Every entry maps an SNR-scaled channel ``h`` ``[..., num_ue, num_bs_ant]`` (unit power, unit noise) to a
:class:`PrecoderOutput`. Bounds (``dpc``) give a sum rate but no precoder. :data:`CLASSICAL` is
read-only; a plug-in (a neural precoder, a benchmark's variant) extends a table with
:func:`register_precoder`, which returns a new table the caller owns and passes on explicitly (e.g. to
:func:`mimofm.evaluation.evaluate.evaluate_sets`). The neural precoders are built by
:func:`mimofm.models.zoo.build_precoder`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import torch

from mimofm.core.rates import rates_from_hw
from mimofm.core.validation import MimofmInputError
from mimofm.precoders import linear
from mimofm.precoders.bounds import dpc_sum_capacity
from mimofm.precoders.hybrid import phase_extraction_hybrid
from mimofm.precoders.refine import REFINE_STEPS, refine_structure
from mimofm.precoders.structured import structured_precoder
from mimofm.precoders.wmmse import wmmse

__all__ = [
    "CLASSICAL",
    "PrecoderOutput",
    "PrecoderSpec",
    "get_precoder",
    "parse_precoders",
    "register_precoder",
    "run_precoder",
]


@dataclass
class PrecoderOutput:
    """``w`` ``[..., N, K]`` (None for bounds), ``sum_rate`` ``[...]`` float64, ``iterations`` ``[...]`` or
    None."""

    w: torch.Tensor | None
    sum_rate: torch.Tensor
    iterations: torch.Tensor | None = None


@dataclass(frozen=True)
class PrecoderSpec:
    """A named precoder or bound: ``run(h [..., K, N]) -> PrecoderOutput``; ``needs_k_le_n``: refuses
    ``K > N``; ``iterative``: reports iterations; ``serves``: the one ``(K, N)`` it was trained for (a
    fixed-configuration checkpoint; None: any)."""

    name: str
    kind: Literal["precoder", "bound"]
    run: Callable[[torch.Tensor], PrecoderOutput]
    description: str
    needs_k_le_n: bool = False
    iterative: bool = False
    serves: tuple[int, int] | None = None

    def check_configuration(self, num_ue: int, num_bs_ant: int, where: str = "the data") -> None:
        """Raise :class:`MimofmInputError`, naming the fix, unless this precoder serves ``num_ue`` users on
        ``num_bs_ant`` antennas."""
        if self.needs_k_le_n and num_ue > num_bs_ant:
            raise MimofmInputError(
                f"{self.name} needs num_ue <= num_bs_ant; {where} has {num_ue} users and "
                f"{num_bs_ant} antennas"
            )
        if self.serves is not None and self.serves != (num_ue, num_bs_ant):
            raise MimofmInputError(
                f"{self.name} is a fixed-configuration checkpoint for {self.serves[0]} users × "
                f"{self.serves[1]} antennas; {where} has {num_ue} users × {num_bs_ant} antennas. "
                "fm and papp serve any configuration; or train this one for yours"
            )


def _linear(fn) -> Callable[[torch.Tensor], PrecoderOutput]:
    def run(h: torch.Tensor) -> PrecoderOutput:
        w = fn(h)
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _wmmse(
    setting: str, form: str, iterations: int | None = None
) -> Callable[[torch.Tensor], PrecoderOutput]:
    """WMMSE with ``setting``'s stopping rule, or exactly ``iterations`` iterations (truncated WMMSE)."""
    tol = None if iterations is None else 0.0

    def run(h: torch.Tensor) -> PrecoderOutput:
        r = wmmse(h, setting=setting, form=form, max_iter=iterations, tol=tol)
        return PrecoderOutput(w=r.w, sum_rate=r.sum_rate, iterations=r.iterations)

    return run


TRUNCATED_WMMSE = (1, 2, 3, 5, 10)  # wmmse-<i>: WMMSE stopped after i iterations (the latency frontier)


def _rzf_refined(h: torch.Tensor) -> PrecoderOutput:
    """RZF with equal powers (``λ = p = 1/K``) as the start of the sum-rate steps on ``(λ, p)``."""
    k = h.shape[-2]
    start = torch.full(h.shape[:-1], 1.0 / k, dtype=torch.float64, device=h.device)
    w = structured_precoder(h, *refine_structure(h, start, start)).to(torch.complex128)
    return PrecoderOutput(w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w).sum(-1))


def _dpc(h: torch.Tensor) -> PrecoderOutput:
    r = dpc_sum_capacity(h)
    return PrecoderOutput(w=None, sum_rate=r.sum_rate, iterations=r.iterations)


def _hybrid(num_rf: int) -> Callable[[torch.Tensor], PrecoderOutput]:
    def run(h: torch.Tensor) -> PrecoderOutput:
        w = phase_extraction_hybrid(h, num_rf).w
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _build() -> dict[str, PrecoderSpec]:
    specs = [
        PrecoderSpec("mrt", "precoder", _linear(linear.mrt), "maximum-ratio transmission"),
        PrecoderSpec("zf", "precoder", _linear(linear.zf), "zero forcing, one global power scale", True),
        PrecoderSpec("zf-wf", "precoder", _linear(linear.zf_wf), "zero forcing + water-filling powers", True),
        PrecoderSpec("rzf", "precoder", _linear(linear.rzf), "regularized ZF, α = K σ²/P"),
        PrecoderSpec(
            "rzf-eq",
            "precoder",
            _linear(linear.rzf_equal_power),
            "regularized ZF, α = K σ²/P, equal power per user (as Sionna's rzf_precoding_matrix)",
        ),
        PrecoderSpec(
            "rzf-refined",
            "precoder",
            _rzf_refined,
            f"RZF with equal powers, then {REFINE_STEPS} sum-rate steps on its (λ, p) in the user space "
            "(K×K)",
        ),
        PrecoderSpec(
            "wmmse",
            "precoder",
            _wmmse("paper", "user"),
            "WMMSE, paper stopping rule, user-space form",
            iterative=True,
        ),
        *(
            PrecoderSpec(
                f"wmmse-{i}",
                "precoder",
                _wmmse("paper", "user", i),
                f"WMMSE stopped after {i} iteration{'s' if i > 1 else ''}, user-space form",
                iterative=True,
            )
            for i in TRUNCATED_WMMSE
        ),
        PrecoderSpec(
            "wmmse-antenna",
            "precoder",
            _wmmse("paper", "antenna"),
            "WMMSE, paper stopping rule, textbook N_T-dimensional form",
            iterative=True,
        ),
        PrecoderSpec(
            "wmmse-ref",
            "precoder",
            _wmmse("reference", "user"),
            "WMMSE reference: tol 1e-7, 500 iterations, best of several starts",
            iterative=True,
        ),
        PrecoderSpec(
            "hybrid-pe-4",
            "precoder",
            _hybrid(4),
            "hybrid, 4 RF chains: phases of WMMSE (+ matched filters), digital WMMSE on the effective "
            "channel",
        ),
        PrecoderSpec(
            "hybrid-pe-8",
            "precoder",
            _hybrid(8),
            "hybrid, 8 RF chains: phases of WMMSE (+ matched filters), digital WMMSE on the effective "
            "channel",
        ),
        PrecoderSpec("dpc", "bound", _dpc, "dirty-paper-coding sum capacity (upper bound)", iterative=True),
    ]
    return {s.name: s for s in specs}


CLASSICAL: Mapping[str, PrecoderSpec] = MappingProxyType(_build())
"""The classical precoders and bounds, read-only (name -> spec, in listing order)."""


def register_precoder(table: Mapping[str, PrecoderSpec], spec: PrecoderSpec) -> Mapping[str, PrecoderSpec]:
    """A new read-only table: ``table`` plus ``spec`` (its name must be new). The one way to extend a
    table; ``table`` itself is unchanged, so every caller owns the table it passes on."""
    if spec.name in table:
        raise MimofmInputError(f"precoder {spec.name!r} is already in the table")
    return MappingProxyType({**table, spec.name: spec})


def get_precoder(name: str, table: Mapping[str, PrecoderSpec] = CLASSICAL) -> PrecoderSpec:
    """The spec named ``name`` in ``table`` (default: the classical precoders and bounds)."""
    if name not in table:
        raise MimofmInputError(f"unknown precoder {name!r}; valid: {', '.join(table)}")
    return table[name]


def parse_precoders(text: str, table: Mapping[str, PrecoderSpec] = CLASSICAL) -> list[PrecoderSpec]:
    """``"mrt,zf,wmmse"`` -> specs of ``table`` (order kept, duplicates removed, names validated)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise MimofmInputError("`--precoder` is empty; give a comma-separated list, e.g. zf,wmmse,dpc")
    return [get_precoder(n, table) for n in dict.fromkeys(names)]


def run_precoder(name: str, h: torch.Tensor, table: Mapping[str, PrecoderSpec] = CLASSICAL) -> PrecoderOutput:
    """Run a named precoder of ``table`` on an SNR-scaled channel ``h`` ``[..., K, N]`` (unit power, unit
    noise); checks ``K <= N`` where needed. Returns ``w`` ``[..., N, K]`` and the sum rate ``[...]``
    (bit/s/Hz)."""
    spec = get_precoder(name, table)
    if spec.needs_k_le_n and h.shape[-2] > h.shape[-1]:
        raise MimofmInputError(f"`num_ue` ({h.shape[-2]}) must be <= `num_bs_ant` ({h.shape[-1]}) for {name}")
    return spec.run(h)
