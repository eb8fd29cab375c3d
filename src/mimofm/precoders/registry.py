"""Named precoders and bounds, one uniform calling convention for evaluation, CLI and benchmarks.

Every entry maps an SNR-scaled channel ``h`` ``[..., num_ue, num_bs_ant]`` (unit power, unit
noise) to a :class:`PrecoderOutput`. Bounds (``dpc``) give a sum rate but no precoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from mimofm.core.rates import rates_from_hw
from mimofm.core.validation import MimofmInputError
from mimofm.models.loading import PAPP_CHECKPOINTS
from mimofm.precoders.refine import REFINE_STEPS

__all__ = [
    "REGISTRY",
    "PrecoderOutput",
    "PrecoderSpec",
    "get_precoder",
    "neural_precoders",
    "parse_precoders",
    "run_precoder",
    "set_checkpoint",
]

# checkpoint overrides of the neural precoders (None: the shipped checkpoint)
_CHECKPOINTS: dict[str, str | None] = {"fm": None, **dict.fromkeys(PAPP_CHECKPOINTS)}


def neural_precoders() -> list[str]:
    """Names of the precoders that load a checkpoint (``--checkpoint`` applies to them)."""
    return list(_CHECKPOINTS)


def set_checkpoint(name: str, path: str | None) -> None:
    """Use ``path`` instead of the shipped checkpoint for the neural precoder ``name``."""
    if name not in _CHECKPOINTS:
        raise MimofmInputError(f"`--checkpoint` applies to {', '.join(_CHECKPOINTS)}, not {name!r}")
    _CHECKPOINTS[name] = path


@dataclass
class PrecoderOutput:
    """``w`` ``[..., N, K]`` (None for bounds), ``sum_rate`` ``[...]`` float64, ``iterations`` ``[...]`` or None."""

    w: torch.Tensor | None
    sum_rate: torch.Tensor
    iterations: torch.Tensor | None = None


@dataclass(frozen=True)
class PrecoderSpec:
    name: str
    kind: Literal["precoder", "bound"]
    run: Callable[[torch.Tensor], PrecoderOutput]
    description: str
    needs_k_le_n: bool = False
    iterative: bool = False


def _linear(fn) -> Callable[[torch.Tensor], PrecoderOutput]:
    def run(h: torch.Tensor) -> PrecoderOutput:
        w = fn(h)
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _wmmse(setting: str, form: str) -> Callable[[torch.Tensor], PrecoderOutput]:
    def run(h: torch.Tensor) -> PrecoderOutput:
        from mimofm.precoders.wmmse import wmmse

        r = wmmse(h, setting=setting, form=form)
        return PrecoderOutput(w=r.w, sum_rate=r.sum_rate, iterations=r.iterations)

    return run


def _rzf_refined(h: torch.Tensor) -> PrecoderOutput:
    """RZF with equal powers (``λ = p = 1/K``) as the start of the sum-rate steps on ``(λ, p)``."""
    from mimofm.precoders.refine import refine_structure
    from mimofm.precoders.structured import structured_precoder

    k = h.shape[-2]
    start = torch.full(h.shape[:-1], 1.0 / k, dtype=torch.float64, device=h.device)
    w = structured_precoder(h, *refine_structure(h, start, start)).to(torch.complex128)
    return PrecoderOutput(w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w).sum(-1))


def _dpc(h: torch.Tensor) -> PrecoderOutput:
    from mimofm.precoders.bounds import dpc_sum_capacity

    r = dpc_sum_capacity(h)
    return PrecoderOutput(w=None, sum_rate=r.sum_rate, iterations=r.iterations)


def _fm(refine_steps: int = 0) -> Callable[[torch.Tensor], PrecoderOutput]:
    """fm zero-shot (default head, maximum-sum-rate requests) on an SNR-scaled channel; ``refine_steps``:
    that many sum-rate steps on the head's ``(λ, p)`` (``fm-refined``)."""

    def run(h: torch.Tensor) -> PrecoderOutput:
        from mimofm.models.loading import load_fm

        model = load_fm(_CHECKPOINTS["fm"])
        model.check_input(h, None)
        with torch.no_grad():
            w = model(h.to(torch.complex64), refine_steps=refine_steps).w
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _papp(
    name: str, num_rf: int | None = None, refine_steps: int = 0
) -> Callable[[torch.Tensor], PrecoderOutput]:
    """papp zero-shot (``papp``; ``papp-csi``: trained on imperfect CSI; ``papp-hbf``: hybrid student,
    served with ``num_rf`` RF chains, default its trained 8): extractor + student on an SNR-scaled channel;
    ``refine_steps``: that many sum-rate steps on the student's ``(λ, p)`` (``papp-refined``)."""

    def run(h: torch.Tensor) -> PrecoderOutput:
        from mimofm.models.loading import load_papp

        model = load_papp(_CHECKPOINTS[name], shipped=name)
        model.check_input(h)
        with torch.no_grad():
            w = model(h.to(torch.complex64), num_rf=num_rf, refine_steps=refine_steps)
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _hybrid(num_rf: int) -> Callable[[torch.Tensor], PrecoderOutput]:
    def run(h: torch.Tensor) -> PrecoderOutput:
        from mimofm.precoders.hybrid import phase_extraction_hybrid

        w = phase_extraction_hybrid(h, num_rf).w
        return PrecoderOutput(
            w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
        )

    return run


def _build() -> dict[str, PrecoderSpec]:
    from mimofm.precoders import linear

    specs = [
        PrecoderSpec("mrt", "precoder", _linear(linear.mrt), "maximum-ratio transmission"),
        PrecoderSpec("zf", "precoder", _linear(linear.zf), "zero forcing, one global power scale", True),
        PrecoderSpec("zf-wf", "precoder", _linear(linear.zf_wf), "zero forcing + water-filling powers", True),
        PrecoderSpec("rzf", "precoder", _linear(linear.rzf), "regularized ZF, α = K σ²/P"),
        PrecoderSpec(
            "rzf-refined",
            "precoder",
            _rzf_refined,
            f"RZF with equal powers, then {REFINE_STEPS} sum-rate steps on its (λ, p) in the user space (K×K)",
        ),
        PrecoderSpec(
            "wmmse",
            "precoder",
            _wmmse("paper", "user"),
            "WMMSE, paper stopping rule, user-space form",
            iterative=True,
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
            "hybrid, 4 RF chains: phases of WMMSE (+ matched filters), digital WMMSE on the effective channel",
        ),
        PrecoderSpec(
            "hybrid-pe-8",
            "precoder",
            _hybrid(8),
            "hybrid, 8 RF chains: phases of WMMSE (+ matched filters), digital WMMSE on the effective channel",
        ),
        PrecoderSpec("dpc", "bound", _dpc, "dirty-paper-coding sum capacity (upper bound)", iterative=True),
        PrecoderSpec(
            "fm", "precoder", _fm(), "fm foundation model, zero-shot default head (shipped checkpoint)"
        ),
        PrecoderSpec(
            "fm-refined",
            "precoder",
            _fm(REFINE_STEPS),
            f"fm, then {REFINE_STEPS} sum-rate steps on its head's (λ, p) in the user space (K×K)",
        ),
        PrecoderSpec(
            "papp", "precoder", _papp("papp"), "papp plug-and-play student, zero-shot (shipped checkpoint)"
        ),
        PrecoderSpec(
            "papp-refined",
            "precoder",
            _papp("papp", refine_steps=REFINE_STEPS),
            f"papp, then {REFINE_STEPS} sum-rate steps on the student's (λ, p) in the user space (K×K)",
        ),
        PrecoderSpec(
            "papp-csi",
            "precoder",
            _papp("papp-csi"),
            "papp trained with channel-estimation error (NMSE -20/-10 dB), zero-shot (shipped checkpoint)",
        ),
        PrecoderSpec(
            "papp-hbf",
            "precoder",
            _papp("papp-hbf"),
            "papp hybrid student, 8 RF chains (analog phases + digital), zero-shot (shipped checkpoint)",
        ),
        PrecoderSpec(
            "papp-hbf-4",
            "precoder",
            _papp("papp-hbf", 4),
            "the papp-hbf checkpoint served with 4 RF chains (its per-user parameters do not depend on N_RF)",
        ),
        PrecoderSpec(
            "papp-lite",
            "precoder",
            _papp("papp-lite"),
            "papp with a smaller extractor + student (recipes/papp-lite.yaml), zero-shot (shipped checkpoint)",
        ),
    ]
    return {s.name: s for s in specs}


REGISTRY: dict[str, PrecoderSpec] = _build()


def get_precoder(name: str) -> PrecoderSpec:
    if name not in REGISTRY:
        raise MimofmInputError(f"unknown precoder {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def parse_precoders(text: str) -> list[PrecoderSpec]:
    """``"mrt,zf,wmmse"`` -> specs (order kept, duplicates removed, names validated)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise MimofmInputError("`--precoder` is empty; give a comma-separated list, e.g. zf,wmmse,dpc")
    return [get_precoder(n) for n in dict.fromkeys(names)]


def run_precoder(name: str, h: torch.Tensor) -> PrecoderOutput:
    """Run a named precoder on an SNR-scaled channel ``[..., K, N]``; checks K ≤ N where needed."""
    spec = get_precoder(name)
    if spec.needs_k_le_n and h.shape[-2] > h.shape[-1]:
        raise MimofmInputError(f"`num_ue` ({h.shape[-2]}) must be <= `num_bs_ant` ({h.shape[-1]}) for {name}")
    return spec.run(h)
