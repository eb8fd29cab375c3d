"""Checkpoints: safetensors for tensors + a JSON card for everything else. No pickle anywhere.

A checkpoint ``<dir>/<name>.safetensors`` holds the model weights (``model.*``), the optimizer state
(``optim.<param index>.<key>``) and the CPU RNG state (``rng.cpu``); ``<dir>/<name>.json`` holds the
step, the optimizer's hyper-parameters, the resolved config and any metadata. Both are written
atomically; the JSON records the SHA-256 of the tensor file, verified on load. The file format itself
(writing, reading, strict weight loading) is :mod:`mimofm.models.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mimofm.models.checkpoint import load_weights, read_checkpoint, write_checkpoint

__all__ = ["load_checkpoint", "save_checkpoint"]


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
    card = {
        "step": int(step),
        "optimizer": opt_json,
        "config": config or {},
        "meta": meta or {},
    }
    return write_checkpoint(stem, tensors, card)


def load_checkpoint(
    path_stem: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state; returns the card (``card["step"]`` is the step)."""
    stem = Path(path_stem)
    card = load_weights(stem, model)
    tensors, _ = read_checkpoint(stem)
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
