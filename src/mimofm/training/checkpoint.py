"""Checkpoints: safetensors for tensors + a JSON card for everything else. No pickle anywhere.

A checkpoint ``<dir>/<name>.safetensors`` holds the model weights (``model.*``), the optimizer state
(``optim.<param index>.<key>``) and the CPU RNG state (``rng.cpu``); ``<dir>/<name>.json`` holds the
step, the optimizer's hyper-parameters, the resolved config and any metadata. Both are written
atomically; the JSON records the SHA-256 of the tensor file, verified on load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mimofm._io import atomic_path, write_json
from mimofm.core.validation import MimofmInputError

__all__ = ["load_checkpoint", "load_weights", "save_checkpoint", "sha256_file"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _flatten_optimizer(opt: torch.optim.Optimizer | None) -> tuple[dict[str, torch.Tensor], dict]:
    if opt is None:
        return {}, {}
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(
    path_stem: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    config: dict | None = None,
    meta: dict | None = None,
    rng: bool = True,
) -> Path:
    """Write ``<stem>.safetensors`` then ``<stem>.json`` (the JSON last: it is the commit marker)."""
    stem = Path(path_stem)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_json = _flatten_optimizer(optimizer)
    tensors.update(opt_tensors)
    if rng:
        tensors["rng.cpu"] = torch.get_rng_state()
    st_path = stem.with_suffix(".safetensors")
    with atomic_path(st_path) as tmp:
        save_file(tensors, str(tmp))
    card = {
        "format": "mimofm-checkpoint-1",
        "step": int(step),
        "optimizer": opt_json,
        "config": config or {},
        "meta": meta or {},
        "tensors_sha256": sha256_file(st_path),
        "model_tensors": sorted(k[len("model.") :] for k in tensors if k.startswith("model.")),
    }
    write_json(stem.with_suffix(".json"), card)
    return st_path


def _read(stem: Path) -> tuple[dict[str, torch.Tensor], dict]:
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (st_path, js_path):
        if not p.exists():
            raise MimofmInputError(f"checkpoint file {str(p)!r} does not exist")
    try:
        card = json.loads(js_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MimofmInputError(f"checkpoint card {str(js_path)!r} is not valid JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != "mimofm-checkpoint-1":
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
    tensors, card = _read(Path(path_stem))
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


def load_checkpoint(
    path_stem: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state; returns the card (``card["step"]`` is the step)."""
    stem = Path(path_stem)
    card = load_weights(stem, model)
    tensors, _ = _read(stem)
    if optimizer is not None and card["optimizer"]:
        state: dict[int, dict] = {}
        for key, val in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = val
        for key, val in card["optimizer"]["scalars"].items():
            idx, name = key.split(".", 1)
            state.setdefault(int(idx), {})[name] = val
        optimizer.load_state_dict({"state": state, "param_groups": card["optimizer"]["param_groups"]})
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    return card
