"""`mimofm export onnx --precoder fm|papp|wifoe`: ONNX graphs with a dynamic batch, checked against
PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer

from mimofm.cli._common import clean_errors, console
from mimofm.core.errors import MimofmInputError

__all__ = ["export_app", "onnx_command"]

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
    factorised: bool = typer.Option(
        False,
        "--factorised",
        help="fm: output the factors (λ, p, Ω, γ) with a `rates` input instead of W; W is then formed "
        "outside the graph (mimofm.export.run_onnx). Rate requests need it: the exact power layer of "
        "the rate-target mode is iterative and stays outside the graph.",
    ),
) -> None:
    """Export a neural precoder to ONNX and report the parity with PyTorch (max abs error of W).

    fm's graph outputs the maximum-sum-rate precoder W itself (W_re, W_im [B, N, K], float32; inputs
    h_re, h_im [B, K, N]); it uses ONNX Runtime's com.microsoft::Inverse operator. --factorised keeps the
    factor graph, which also serves per-user rate requests.
    """
    ckpt = str(checkpoint) if checkpoint else None
    if precoder == "wifoe":
        return _wifoe(task, ckpt, out, opset, check_samples)
    if precoder not in ("fm", "papp"):
        raise MimofmInputError(f"export is implemented for fm, papp and wifoe, not {precoder!r}")
    from mimofm.evaluation.onnx_parity import PARITY_TOLERANCE, onnx_parity
    from mimofm.export import export_fm_onnx, export_papp_onnx
    from mimofm.models.zoo import load_fm, load_papp

    if factorised and precoder != "fm":
        raise MimofmInputError("`--factorised` is for fm (papp's graph always outputs its factors)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if precoder == "fm":
        model = load_fm(ckpt)
        export_fm_onnx(model, out, opset=opset, output="factors" if factorised else "W")
    else:
        model = load_papp(ckpt)
        export_papp_onnx(model, out, opset=opset)
    site, errs = onnx_parity(model, out, check_samples)
    console.print(f"wrote [bold]{out}[/] ({out.stat().st_size / 1e6:.1f} MB, opset {opset}, dynamic batch)")
    console.print(
        f"parity with PyTorch on {check_samples} samples of {site}: "
        + ", ".join(f"max |ΔW| {e:.2e} ({m})" for m, e in errs.items())
    )
    if max(errs.values()) > PARITY_TOLERANCE:
        raise MimofmInputError(f"ONNX output differs from PyTorch by {max(errs.values()):.2e} (> 1e-4)")


def _wifoe(task: str | None, ckpt: str | None, out: Path, opset: int, check_samples: int) -> None:
    """wifoe: ``<out>-user.onnx``, ``<out>-bs.onnx``, ``<out>-pilots.npy``; parity end to end on the task's
    test drops."""
    if not task:
        raise MimofmInputError("`--precoder wifoe` needs --task NAME (a branch of the checkpoint)")
    from mimofm.evaluation.onnx_parity import PARITY_TOLERANCE, wifoe_onnx_parity
    from mimofm.export import export_wifoe_onnx
    from mimofm.models.zoo import load_wifoe

    model = load_wifoe(ckpt)
    model.branch(task)
    stem = out.with_suffix("") if out.suffix == ".onnx" else out
    paths = export_wifoe_onnx(model, task, stem, opset=opset)
    err = wifoe_onnx_parity(model, task, stem, check_samples)
    for p in paths.values():
        console.print(f"wrote [bold]{p}[/] ({p.stat().st_size / 1e6:.2f} MB)")
    console.print(
        f"parity with PyTorch end to end (pilots, user graph, BS graph) on {task} test drops, K = 3..8: "
        f"max |ΔV| {err:.2e}"
    )
    if err > PARITY_TOLERANCE:
        raise MimofmInputError(f"ONNX output differs from PyTorch by {err:.2e} (> 1e-4)")
