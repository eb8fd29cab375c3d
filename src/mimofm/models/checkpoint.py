"""The checkpoint file format: safetensors for tensors + a JSON card for everything else. No pickle.

A checkpoint is a stem ``<dir>/<name>``: ``<name>.safetensors`` holds named tensors (the model weights
as ``model.*``, plus whatever the writer adds, e.g. optimizer state), ``<name>.json`` (the card) holds
``format``, the SHA-256 of the tensor file and any JSON-able fields. Both are written atomically, the
card last (it is the commit marker); the checksum is verified on every read. Training-state details
(optimizer, RNG) are :mod:`mimofm.training.checkpoint`'s business; this module only knows the files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mimofm._io import atomic_path, write_json
from mimofm.core.validation import MimofmInputError

__all__ = ["FORMAT", "load_weights", "read_checkpoint", "sha256_file", "write_checkpoint"]

FORMAT = "mimofm-checkpoint-1"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checkpoint(path_stem: str | Path, tensors: dict[str, torch.Tensor], card: dict) -> Path:
    """Write ``<stem>.safetensors`` (``tensors``, CPU-contiguous) then ``<stem>.json`` (``card`` plus
    ``format``, ``tensors_sha256`` and ``model_tensors``: the names of the ``model.*`` tensors without
    the prefix); returns the tensor file's path."""
    stem = Path(path_stem)
    st_path = stem.with_suffix(".safetensors")
    with atomic_path(st_path) as tmp:
        save_file(tensors, str(tmp))
    full = {
        "format": FORMAT,
        **card,
        "tensors_sha256": sha256_file(st_path),
        "model_tensors": sorted(k[len("model.") :] for k in tensors if k.startswith("model.")),
    }
    write_json(stem.with_suffix(".json"), full)
    return st_path


def read_checkpoint(path_stem: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the card of a checkpoint stem; raises on a missing file, a card that is not a
    mimofm card, or a tensor file that does not match the card's checksum."""
    stem = Path(path_stem)
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (st_path, js_path):
        if not p.exists():
            raise MimofmInputError(f"checkpoint file {str(p)!r} does not exist")
    try:
        card = json.loads(js_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MimofmInputError(f"checkpoint card {str(js_path)!r} is not valid JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise MimofmInputError(f"checkpoint card {str(js_path)!r} is not a mimofm checkpoint (format)")
    if sha256_file(st_path) != card.get("tensors_sha256"):
        raise MimofmInputError(
            f"checkpoint {str(st_path)!r} does not match its card's checksum "
            "(truncated, corrupted or modified)"
        )
    try:
        tensors = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise MimofmInputError(f"checkpoint {str(st_path)!r} cannot be read ({e})") from None
    return tensors, card


def load_weights(path_stem: str | Path, model: torch.nn.Module) -> dict:
    """Load model weights strictly (no missing, extra or mis-shaped tensors); returns the card."""
    tensors, card = read_checkpoint(path_stem)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        raise MimofmInputError(
            f"checkpoint {str(path_stem)!r} does not fit the model: missing {missing[:5]}, "
            f"unexpected {extra[:5]}"
        )
    for k, v in weights.items():
        if v.shape != own[k].shape or v.dtype != own[k].dtype:
            raise MimofmInputError(
                f"checkpoint tensor {k!r} is {v.dtype} {list(v.shape)}, the model expects "
                f"{own[k].dtype} {list(own[k].shape)} (array size or user count mismatch?)"
            )
    model.load_state_dict(weights, strict=True)
    return card
