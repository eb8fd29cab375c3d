"""The model zoo: every precoder by name, the neural ones built from a checkpoint.

The classical precoders and bounds come from :data:`mimofm.precoders.registry.CLASSICAL`; the neural
ones are listed in :data:`NEURAL` (name -> family, the shipped checkpoint that serves it, RF chains,
refinement steps). :func:`build_precoder` turns a name, a checkpoint (None: the shipped one) and a
loaded model (optional, to share one between names) into a
:class:`~mimofm.precoders.registry.PrecoderSpec`. Nothing is cached: whoever needs a model repeatedly
holds on to the spec or the model it got.

Checkpoints are stems ``<dir>/<name>`` of ``<name>.safetensors`` + ``<name>.json``
(:mod:`mimofm.models.checkpoint`); the shipped ones live in ``mimofm/assets/checkpoints``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import torch

from mimofm.core.rates import rates_from_hw
from mimofm.core.validation import MimofmInputError
from mimofm.models.checkpoint import load_weights, read_checkpoint
from mimofm.models.fm import FMConfig, FMPrecoder
from mimofm.models.papp import PaPP, PaPPConfig
from mimofm.models.wifoe import WiFoE, WiFoEConfig
from mimofm.precoders.refine import REFINE_STEPS
from mimofm.precoders.registry import CLASSICAL, PrecoderOutput, PrecoderSpec
from mimofm.precoders.wmmse import wmmse

__all__ = [
    "NEURAL",
    "NEURAL_CHECKPOINTS",
    "PAPP_CHECKPOINTS",
    "NeuralEntry",
    "build_precoder",
    "build_precoders",
    "check_precoder_names",
    "fm_config",
    "load_fm",
    "load_papp",
    "load_wifoe",
    "neural_serves",
    "papp_config",
    "polished",
    "precoder_catalog",
    "shipped_checkpoint",
]

# the shipped papp checkpoints: the papers' sizes; trained on imperfect CSI; hybrid student (8 RF chains);
# a smaller extractor + student (recipes/papp-lite.yaml)
PAPP_CHECKPOINTS = ("papp", "papp-csi", "papp-hbf", "papp-lite")
# the checkpoints a neural precoder name is served by (``--checkpoint`` replaces one of them)
NEURAL_CHECKPOINTS = ("fm", *PAPP_CHECKPOINTS)


@dataclass(frozen=True)
class NeuralEntry:
    """A neural precoder name: its ``family``, the shipped ``checkpoint`` that serves it (one of
    :data:`NEURAL_CHECKPOINTS`), ``num_rf`` RF chains (papp-hbf; None: the trained count),
    ``refine_steps`` sum-rate steps on the network's ``(λ, p)`` (``*-refined``) and ``wmmse_steps`` WMMSE
    updates started from the network's precoder (``*+wmmse-i``)."""

    name: str
    family: Literal["fm", "papp"]
    checkpoint: str
    description: str
    num_rf: int | None = None
    refine_steps: int = 0
    wmmse_steps: int = 0


NEURAL: Mapping[str, NeuralEntry] = MappingProxyType(
    {
        e.name: e
        for e in (
            NeuralEntry("fm", "fm", "fm", "fm foundation model, zero-shot default head (shipped checkpoint)"),
            NeuralEntry(
                "fm-refined",
                "fm",
                "fm",
                f"fm, then {REFINE_STEPS} sum-rate steps on its head's (λ, p) in the user space (K×K)",
                refine_steps=REFINE_STEPS,
            ),
            NeuralEntry(
                "fm+wmmse-1",
                "fm",
                "fm",
                "fm, then one user-space WMMSE update from the best of its precoder and ZF-WF/RZF/MRT "
                "(never below fm or ZF-WF)",
                wmmse_steps=1,
            ),
            NeuralEntry("papp", "papp", "papp", "papp plug-and-play student, zero-shot (shipped checkpoint)"),
            NeuralEntry(
                "papp+wmmse-1",
                "papp",
                "papp",
                "papp, then one user-space WMMSE update from the best of its precoder and ZF-WF/RZF/MRT "
                "(never below papp or ZF-WF)",
                wmmse_steps=1,
            ),
            NeuralEntry(
                "papp+wmmse-2",
                "papp",
                "papp",
                "papp, then two user-space WMMSE updates from the best of its precoder and ZF-WF/RZF/MRT "
                "(never below papp or ZF-WF)",
                wmmse_steps=2,
            ),
            NeuralEntry(
                "papp-refined",
                "papp",
                "papp",
                f"papp, then {REFINE_STEPS} sum-rate steps on the student's (λ, p) in the user space (K×K)",
                refine_steps=REFINE_STEPS,
            ),
            NeuralEntry(
                "papp-csi",
                "papp",
                "papp-csi",
                "papp trained with channel-estimation error (NMSE -20/-10 dB), zero-shot "
                "(shipped checkpoint)",
            ),
            NeuralEntry(
                "papp-hbf",
                "papp",
                "papp-hbf",
                "papp hybrid student, 8 RF chains (analog phases + digital), zero-shot (shipped checkpoint)",
            ),
            NeuralEntry(
                "papp-hbf-4",
                "papp",
                "papp-hbf",
                "the papp-hbf checkpoint served with 4 RF chains (its per-user parameters do not depend "
                "on N_RF)",
                num_rf=4,
            ),
            NeuralEntry(
                "papp-lite",
                "papp",
                "papp-lite",
                "papp with a smaller extractor + student (recipes/papp-lite.yaml), zero-shot "
                "(shipped checkpoint)",
            ),
        )
    }
)


# ---------------------------------------------------------------------------------------------
# loading


def shipped_checkpoint(name: str) -> Path:
    """Stem of a shipped checkpoint (``<stem>.safetensors`` + ``<stem>.json``)."""
    return Path(str(resources.files("mimofm") / "assets" / "checkpoints" / name))


def _architecture(family: str, stem: str | None, shipped: str | None = None) -> tuple[Path, dict]:
    """Resolve a checkpoint stem of ``family`` (default: the shipped one named ``shipped``, else ``family``)
    and read its architecture."""
    path = Path(stem) if stem else shipped_checkpoint(shipped or family)
    if path.suffix in (".json", ".safetensors"):
        path = path.with_suffix("")
    if not path.with_suffix(".json").exists():
        raise MimofmInputError(
            f"no {family} checkpoint at {str(path)!r} (.json/.safetensors); train one with "
            f"`mimofm train {family} --recipe recipes/{family}.yaml`"
        )
    _, card = read_checkpoint(path)
    arch = (card.get("meta") or {}).get("architecture")
    if not arch or card.get("config", {}).get("recipe_name") != family:
        raise MimofmInputError(f"checkpoint {str(path)!r} is not a {family} checkpoint")
    return path, arch


def _finish(path: Path, model):
    load_weights(path, model)
    return model.eval()


def _fm_config(path: Path, arch: dict) -> FMConfig:
    # checkpoints written before these options existed
    arch = {"head_form": "rzf-mix", "rate_mode": "paper", **arch}
    if arch.pop("request_in_user_tokens", False):  # a short-lived development option, never shipped
        raise MimofmInputError(
            f"checkpoint {str(path)!r} uses `request_in_user_tokens`, which is no longer "
            "supported; retrain with `rate_mode: per-user`"
        )
    return FMConfig(**arch)


def fm_config(stem: str | None = None) -> FMConfig:
    """The architecture of an fm checkpoint (default: the shipped one), without building the model."""
    return _fm_config(*_architecture("fm", stem))


def papp_config(stem: str | None = None, shipped: str = "papp") -> PaPPConfig:
    """The architecture of a papp checkpoint (default: the shipped one named ``shipped``), without
    building the model."""
    return PaPPConfig(**_architecture("papp", stem, shipped)[1])


def load_fm(stem: str | None = None) -> FMPrecoder:
    """A new :class:`~mimofm.models.fm.FMPrecoder` in eval mode from a checkpoint stem (default: the
    shipped one)."""
    path, arch = _architecture("fm", stem)
    return _finish(path, FMPrecoder(_fm_config(path, arch)))


def load_papp(stem: str | None = None, shipped: str = "papp") -> PaPP:
    """A new :class:`~mimofm.models.papp.PaPP` in eval mode from a checkpoint stem (default: the shipped
    one named ``shipped``, one of :data:`PAPP_CHECKPOINTS`)."""
    path, arch = _architecture("papp", stem, shipped)
    return _finish(path, PaPP(PaPPConfig(**arch)))


def load_wifoe(stem: str | None = None) -> WiFoE:
    """A new :class:`~mimofm.models.wifoe.WiFoE` (every branch of the checkpoint) in eval mode from a
    checkpoint stem (default: the shipped one); the caller owns it (and may change it, e.g. add a
    branch)."""
    path, arch = _architecture("wifoe", stem)
    return _finish(path, WiFoE(WiFoEConfig(**arch)))


# ---------------------------------------------------------------------------------------------
# names -> precoders


def precoder_catalog() -> dict[str, tuple[str, str]]:
    """Every precoder and bound by name (classical first, then neural): ``name -> (kind, description)``.
    Loads no model."""
    return {n: (s.kind, s.description) for n, s in CLASSICAL.items()} | {
        n: ("precoder", e.description) for n, e in NEURAL.items()
    }


def check_precoder_names(text: str, table: Mapping[str, PrecoderSpec] = CLASSICAL) -> list[str]:
    """``"mrt,zf,fm"`` -> names (lower case, order kept, duplicates removed), each a name of ``table`` or
    of :data:`NEURAL`; raises for an empty list or an unknown name. Loads no model."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise MimofmInputError("`--precoder` is empty; give a comma-separated list, e.g. zf,wmmse,dpc")
    for n in names:
        if n not in table and n not in NEURAL:
            raise MimofmInputError(f"unknown precoder {n!r}; valid: {', '.join([*table, *NEURAL])}")
    return list(dict.fromkeys(names))


def _load_for(entry: NeuralEntry, checkpoint: str | None) -> torch.nn.Module:
    if entry.family == "fm":
        return load_fm(checkpoint)
    return load_papp(checkpoint, shipped=entry.checkpoint)


def _inference(refine_steps: int):
    """``torch.inference_mode`` for a plain forward pass; ``torch.no_grad`` when sum-rate refinement steps
    follow (they differentiate through the structured output, which inference tensors cannot)."""
    return torch.no_grad() if refine_steps else torch.inference_mode()


def polished(h: torch.Tensor, w: torch.Tensor, wmmse_steps: int) -> torch.Tensor:
    """A network's precoder ``w`` ``[..., N, K]`` for the SNR-scaled channel ``h`` ``[..., K, N]`` after
    ``wmmse_steps`` user-space WMMSE updates (``*+wmmse-i``; 0: ``w`` as it is).

    The updates start from the best, by sum rate, of ``w`` and WMMSE's classical starts (ZF-WF, RZF, MRT:
    one ``K × K`` solve each). WMMSE never lowers the sum rate of its start, so the result is at least the
    network's and at least ZF-WF's; at full power.
    """
    if not wmmse_steps:
        return w
    out = wmmse(h.to(torch.complex128), start=w, start_only=False, max_iter=wmmse_steps, tol=0.0)
    return out.w.to(w.dtype)


def _network_output(h: torch.Tensor, w: torch.Tensor, wmmse_steps: int) -> PrecoderOutput:
    """A network's ``w`` on ``h`` as a :class:`PrecoderOutput`, after :func:`polished`."""
    w = polished(h, w, wmmse_steps)
    return PrecoderOutput(
        w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w.to(torch.complex128)).sum(-1)
    )


def _fm_run(model: FMPrecoder, entry: NeuralEntry) -> Callable[[torch.Tensor], PrecoderOutput]:
    """fm zero-shot (default head, maximum-sum-rate requests) on an SNR-scaled channel ``[..., K, N]``, with
    ``entry``'s refinement steps on the head's ``(λ, p)`` (``fm-refined``) or WMMSE updates after it."""

    def run(h: torch.Tensor) -> PrecoderOutput:
        model.check_input(h, None)
        with _inference(entry.refine_steps):
            w = model(h.to(torch.complex64), refine_steps=entry.refine_steps).w
        return _network_output(h, w, entry.wmmse_steps)

    return run


def _papp_run(model: PaPP, entry: NeuralEntry) -> Callable[[torch.Tensor], PrecoderOutput]:
    """papp zero-shot: extractor + student on an SNR-scaled channel ``[..., K, N]``, served with
    ``entry.num_rf`` RF chains (hybrid students; None: the trained count), with ``entry``'s refinement
    steps on the student's ``(λ, p)`` (``papp-refined``) or WMMSE updates after it."""

    def run(h: torch.Tensor) -> PrecoderOutput:
        model.check_input(h)
        with _inference(entry.refine_steps):
            w = model(h.to(torch.complex64), num_rf=entry.num_rf, refine_steps=entry.refine_steps)
        return _network_output(h, w, entry.wmmse_steps)

    return run


def build_precoder(
    name: str,
    *,
    checkpoint: str | None = None,
    model: torch.nn.Module | None = None,
    table: Mapping[str, PrecoderSpec] = CLASSICAL,
) -> PrecoderSpec:
    """The precoder or bound ``name`` as a :class:`~mimofm.precoders.registry.PrecoderSpec` whose ``run``
    maps an SNR-scaled channel ``h`` ``[..., K, N]`` (unit power, unit noise) to ``w`` ``[..., N, K]`` and
    the sum rate ``[...]`` (bit/s/Hz).

    ``table``: the classical names (default :data:`~mimofm.precoders.registry.CLASSICAL`; a plug-in's
    table from :func:`~mimofm.precoders.registry.register_precoder`). A neural name (:data:`NEURAL`) is
    served by ``model`` if given (already loaded, e.g. shared with another name of the same checkpoint),
    else by ``checkpoint`` (a stem; None: the shipped one), loaded once here and held by the spec.
    """
    if name in table:
        if checkpoint is not None or model is not None:
            raise MimofmInputError(f"{name!r} is not a neural precoder; it takes no checkpoint")
        return table[name]
    if name not in NEURAL:
        raise MimofmInputError(f"unknown precoder {name!r}; valid: {', '.join([*table, *NEURAL])}")
    entry = NEURAL[name]
    net = model if model is not None else _load_for(entry, checkpoint)
    run = _fm_run(net, entry) if entry.family == "fm" else _papp_run(net, entry)
    serves = _serves(net.cfg)
    return PrecoderSpec(entry.name, "precoder", run, entry.description, needs_k_le_n=True, serves=serves)


def _serves(cfg: FMConfig | PaPPConfig) -> tuple[int, int] | None:
    """``(K, N_t)`` a fixed-configuration architecture serves; None for the user-space form (any)."""
    return None if cfg.input_form == "user" else (cfg.num_ue, cfg.num_bs_ant)


def neural_serves(name: str, checkpoint: str | None = None) -> tuple[int, int] | None:
    """The ``(K, N_t)`` the neural precoder ``name`` (from :data:`NEURAL`, served by ``checkpoint`` or the
    shipped one) is limited to, read from the checkpoint's card without loading its weights; None when it
    serves any configuration."""
    entry = NEURAL[name]
    if entry.family == "fm":
        return _serves(fm_config(checkpoint))
    return _serves(papp_config(checkpoint, shipped=entry.checkpoint))


def build_precoders(
    names: list[str],
    checkpoints: Mapping[str, str] | None = None,
    table: Mapping[str, PrecoderSpec] = CLASSICAL,
) -> list[PrecoderSpec]:
    """Specs for ``names`` (validated as :func:`check_precoder_names` does) in order; ``checkpoints``:
    stems by checkpoint name (one of :data:`NEURAL_CHECKPOINTS`; absent: the shipped one). Names served
    by the same checkpoint (``fm``, ``fm-refined``) share one loaded model."""
    checkpoints = dict(checkpoints or {})
    for key in checkpoints:
        if key not in NEURAL_CHECKPOINTS:
            raise MimofmInputError(f"`--checkpoint` applies to {', '.join(NEURAL_CHECKPOINTS)}, not {key!r}")
    models: dict[str, torch.nn.Module] = {}
    specs = []
    for name in check_precoder_names(",".join(names), table):
        if name in table:
            specs.append(table[name])
            continue
        entry = NEURAL[name]
        if entry.checkpoint not in models:
            models[entry.checkpoint] = _load_for(entry, checkpoints.get(entry.checkpoint))
        specs.append(build_precoder(name, model=models[entry.checkpoint], table=table))
    return specs
