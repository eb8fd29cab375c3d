"""`mimofm export onnx --precoder fm|papp|wifoe`: ONNX graphs with a dynamic batch, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer

from mimofm.cli._common import clean_errors, console
from mimofm.core.validation import MimofmInputError

export_app = typer.Typer(add_completion=False, no_args_is_help=True)


@export_app.command("onnx")
@clean_errors
def onnx_command(
    precoder: str = typer.Option(
        "fm", help="Neural precoder to export: fm, papp or wifoe (one task: user and BS graphs + pilots)."
    ),
    task: str | None = typer.Option(None, help="wifoe: the task whose branch is exported (e.g. T1)."),
    checkpoint: Path | None = typer.Option(None, help="Checkpoint stem (default: the shipped one)."),
    out: Path = typer.Option(Path("runs/export/fm.onnx"), help="ONNX file to write."),
    opset: int = typer.Option(18, help="ONNX opset."),
    check_samples: int = typer.Option(256, help="Bundled-site samples for the parity check against PyTorch."),
) -> None:
    """Export a neural precoder to ONNX and report the parity with PyTorch (max abs error of W)."""
    import numpy as np
    import torch

    from mimofm.channels.bundled import bundled_sites
    from mimofm.export import export_fm_onnx, export_papp_onnx, run_onnx
    from mimofm.models.loading import load_fm, load_papp

    ckpt = str(checkpoint) if checkpoint else None
    if precoder == "wifoe":
        return _wifoe(task, ckpt, out, opset, check_samples)
    if precoder == "fm":
        model = load_fm(ckpt)
        export, modes = export_fm_onnx, ("maximum sum rate", "rate requests")
    elif precoder == "papp":
        model = load_papp(ckpt)
        export, modes = export_papp_onnx, ("student",)
    else:
        raise MimofmInputError(f"export is implemented for fm, papp and wifoe, not {precoder!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    export(model, out, opset=opset)
    # parity on real channels: a bundled held-out site at 20 dB median SNR
    cs = bundled_sites()[0]
    g = cs.h.abs().square().sum(-1).median()
    k = model.cfg.num_ue
    idx = torch.from_numpy(np.random.default_rng(0).integers(cs.num_positions, size=(check_samples, k)))
    h = (cs.h[idx] * torch.sqrt(100.0 / g)).to(torch.complex64)
    rates = torch.rand(check_samples, k, generator=torch.Generator().manual_seed(0)) * 3
    errs = []
    with torch.no_grad():
        for mode in modes:
            r = rates if mode == "rate requests" else None
            w_t = (model(h, rates=r).w if precoder == "fm" else model(h)).numpy()
            w_o = run_onnx(out, h.numpy(), None if r is None else r.numpy())
            errs.append(float(np.abs(w_o - w_t).max()))
    console.print(f"wrote [bold]{out}[/] ({out.stat().st_size / 1e6:.1f} MB, opset {opset}, dynamic batch)")
    console.print(
        f"parity with PyTorch on {check_samples} samples of {cs.name}: "
        + ", ".join(f"max |ΔW| {e:.2e} ({m})" for e, m in zip(errs, modes))
    )
    if max(errs) > 1e-4:
        raise MimofmInputError(f"ONNX output differs from PyTorch by {max(errs):.2e} (> 1e-4)")


def _wifoe(task: str | None, ckpt: str | None, out: Path, opset: int, check_samples: int) -> None:
    """wifoe: ``<out>-user.onnx``, ``<out>-bs.onnx``, ``<out>-pilots.npy``; parity end to end on the task's test drops."""
    import numpy as np
    import torch

    from mimofm.evaluation.wifoe_eval import task_draws
    from mimofm.export import export_wifoe_onnx, run_wifoe_onnx
    from mimofm.models.loading import load_wifoe

    if not task:
        raise MimofmInputError("`--precoder wifoe` needs --task NAME (a branch of the checkpoint)")
    model = load_wifoe(ckpt)
    model.branch(task)
    stem = out.with_suffix("") if out.suffix == ".onnx" else out
    paths = export_wifoe_onnx(model, task, stem, opset=opset)
    errs = []
    for h in task_draws(task, 10.0, max(1, check_samples // 6)):
        g = torch.Generator().manual_seed(0)
        z = (
            torch.complex(*torch.randn(2, *h.shape[:2], model.branch(task).shape.pilot_length, generator=g))
            * 0.5**0.5
        )
        with torch.no_grad():
            w_t = model(h, task, noise=z).numpy()
        errs.append(float(np.abs(run_wifoe_onnx(stem, h.numpy(), z.numpy()) - w_t).max()))
    for p in paths.values():
        console.print(f"wrote [bold]{p}[/] ({p.stat().st_size / 1e6:.2f} MB)")
    console.print(
        f"parity with PyTorch end to end (pilots, user graph, BS graph) on {task} test drops, K = 3..8: "
        f"max |ΔV| {max(errs):.2e}"
    )
    if max(errs) > 1e-4:
        raise MimofmInputError(f"ONNX output differs from PyTorch by {max(errs):.2e} (> 1e-4)")
