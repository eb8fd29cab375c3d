"""Parity of exported ONNX graphs with their PyTorch models, on real channels.

fm and papp are checked on a bundled held-out site at 20 dB median SNR (fm's factorised graph in both of
its modes, maximum sum rate and random rate requests; fm's ``W`` graph in the maximum-sum-rate mode, the
one it serves); wifoe end to end (pilots with the same noise, the user
graph, the BS graph) on its task's test drops for every ``K`` of the task. Each check returns the
largest absolute difference of ``W`` per mode; :data:`PARITY_TOLERANCE` is what export accepts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mimofm.channels.bundled import bundled_sites
from mimofm.evaluation.wifoe_eval import task_draws
from mimofm.export import ort_session, run_onnx, run_wifoe_onnx
from mimofm.models.fm import FMPrecoder
from mimofm.models.papp import PaPP
from mimofm.models.wifoe import WiFoE

__all__ = ["PARITY_TOLERANCE", "onnx_parity", "wifoe_onnx_parity"]

PARITY_TOLERANCE = 1e-4  # max |ΔW| between ONNX Runtime and PyTorch


def onnx_parity(
    model: FMPrecoder | PaPP, path: str | Path, samples: int = 256
) -> tuple[str, dict[str, float]]:
    """``(site name, {mode: max |ΔW|})`` of the fm or papp graph at ``path`` against ``model`` on
    ``samples`` draws of ``K = model.cfg.num_ue`` users ``[samples, K, N]`` from the first bundled site,
    scaled to 20 dB median SNR (fm: modes ``maximum sum rate`` and, for a factorised graph, ``rate
    requests``, requests ``U(0, 3)`` bit/s/Hz; papp: ``student``)."""
    fm = isinstance(model, FMPrecoder)
    session = ort_session(path)
    w_graph = session.get_modelmeta().custom_metadata_map.get("mimofm.output") == "W"
    modes = (
        ("student",)
        if not fm
        else ("maximum sum rate",)
        if w_graph
        else ("maximum sum rate", "rate requests")
    )
    cs = bundled_sites()[0]
    g = cs.h.abs().square().sum(-1).median()
    k = model.cfg.num_ue
    idx = torch.from_numpy(np.random.default_rng(0).integers(cs.num_positions, size=(samples, k)))
    h = (cs.h[idx] * torch.sqrt(100.0 / g)).to(torch.complex64)  # [samples, K, N] at 20 dB
    rates = torch.rand(samples, k, generator=torch.Generator().manual_seed(0)) * 3
    errs = {}
    with torch.no_grad():
        for mode in modes:
            r = rates if mode == "rate requests" else None
            w_t = (model(h, rates=r).w if fm else model(h)).numpy()
            w_o = run_onnx(path, h.numpy(), None if r is None else r.numpy(), session=session)
            errs[mode] = float(np.abs(w_o - w_t).max())
    return cs.name, errs


def wifoe_onnx_parity(model: WiFoE, task: str, stem: str | Path, samples: int = 256) -> float:
    """Max |ΔV| of the exported wifoe graphs ``<stem>-user.onnx`` / ``<stem>-bs.onnx`` against ``model``'s
    ``task`` branch end to end, on ``max(1, samples // 6)`` test drops per ``K`` of the task at 10 dB
    (the same pilot noise ``[B, K, L]`` on both sides)."""
    errs = []
    for h in task_draws(task, 10.0, max(1, samples // 6)):
        g = torch.Generator().manual_seed(0)
        # noise [B, K, L]: unit-variance complex Gaussian
        z = (
            torch.complex(*torch.randn(2, *h.shape[:2], model.branch(task).shape.pilot_length, generator=g))
            * 0.5**0.5
        )
        with torch.no_grad():
            w_t = model(h, task, noise=z).numpy()
        errs.append(float(np.abs(run_wifoe_onnx(stem, h.numpy(), z.numpy()) - w_t).max()))
    return max(errs)
