"""Load trained precoders from checkpoints (shipped ones live in ``mimofm/assets/checkpoints``)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from mimofm.core.validation import MimofmInputError
from mimofm.models.checkpoint import load_weights, read_checkpoint

__all__ = ["PAPP_CHECKPOINTS", "load_fm", "load_papp", "load_wifoe", "shipped_checkpoint"]

# the shipped papp checkpoints: the papers' sizes; trained on imperfect CSI; hybrid student (8 RF chains);
# a smaller extractor + student (recipes/papp-lite.yaml)
PAPP_CHECKPOINTS = ("papp", "papp-csi", "papp-hbf", "papp-lite")


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


@lru_cache(maxsize=8)
def load_fm(stem: str | None = None):
    """An :class:`~mimofm.models.fm.FMPrecoder` in eval mode from a checkpoint (default: the shipped one)."""
    from mimofm.models.fm import FMConfig, FMPrecoder

    path, arch = _architecture("fm", stem)
    # checkpoints written before these options existed
    arch = {"head_form": "rzf-mix", "rate_mode": "paper", **arch}
    if arch.pop("request_in_user_tokens", False):  # a short-lived development option, never shipped
        raise MimofmInputError(
            f"checkpoint {str(path)!r} uses `request_in_user_tokens`, which is no longer "
            "supported; retrain with `rate_mode: per-user`"
        )
    return _finish(path, FMPrecoder(FMConfig(**arch)))


@lru_cache(maxsize=8)
def load_papp(stem: str | None = None, shipped: str = "papp"):
    """A :class:`~mimofm.models.papp.PaPP` in eval mode from a checkpoint (default: the shipped one named
    ``shipped``, one of :data:`PAPP_CHECKPOINTS`)."""
    from mimofm.models.papp import PaPP, PaPPConfig

    path, arch = _architecture("papp", stem, shipped)
    return _finish(path, PaPP(PaPPConfig(**arch)))


def load_wifoe(stem: str | None = None, fresh: bool = False):
    """A :class:`~mimofm.models.wifoe.WiFoE` (every branch of the checkpoint) in eval mode.

    Cached per stem unless ``fresh`` (a new module the caller may change, e.g. add a branch to).
    """
    if not fresh:
        return _load_wifoe_cached(stem)
    from mimofm.models.wifoe import WiFoE, WiFoEConfig

    path, arch = _architecture("wifoe", stem)
    return _finish(path, WiFoE(WiFoEConfig(**arch)))


@lru_cache(maxsize=8)
def _load_wifoe_cached(stem: str | None):
    return load_wifoe(stem, fresh=True)
