"""Load trained precoders from checkpoints (shipped ones live in ``mimofm/assets/checkpoints``)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from mimofm.core.validation import MimofmInputError
from mimofm.training.checkpoint import load_weights, _read

__all__ = ["shipped_checkpoint", "load_fm"]


def shipped_checkpoint(name: str) -> Path:
    """Stem of a shipped checkpoint (``<stem>.safetensors`` + ``<stem>.json``)."""
    return Path(str(resources.files("mimofm") / "assets" / "checkpoints" / name))


@lru_cache(maxsize=8)
def load_fm(stem: str | None = None):
    """An :class:`~mimofm.models.fm.FMPrecoder` in eval mode from a checkpoint (default: the shipped one)."""
    from mimofm.models.fm import FMConfig, FMPrecoder

    path = Path(stem) if stem else shipped_checkpoint("fm")
    if path.suffix in (".json", ".safetensors"):
        path = path.with_suffix("")
    if not path.with_suffix(".json").exists():
        raise MimofmInputError(f"no fm checkpoint at {str(path)!r} (.json/.safetensors); train one with "
                               "`mimofm train fm --recipe recipes/fm.yaml`")
    _, card = _read(path)
    arch = (card.get("meta") or {}).get("architecture")
    if not arch or card.get("config", {}).get("recipe_name") != "fm":
        raise MimofmInputError(f"checkpoint {str(path)!r} is not an fm checkpoint")
    # checkpoints written before these options existed
    arch = {"head_form": "rzf-mix", "rate_mode": "paper", **arch}
    if arch.pop("request_in_user_tokens", False):  # a short-lived development option, never shipped
        raise MimofmInputError(f"checkpoint {str(path)!r} uses `request_in_user_tokens`, which is no longer "
                               "supported; retrain with `rate_mode: per-user`")
    model = FMPrecoder(FMConfig(**arch))
    load_weights(path, model)
    model.eval()
    return model
