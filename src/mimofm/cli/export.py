"""`mimofm export onnx --precoder fm`: an ONNX graph with a dynamic batch, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mimofm.cli._common import clean_errors, console
from mimofm.core.validation import MimofmInputError

export_app = typer.Typer(add_completion=False, no_args_is_help=True)


@export_app.command("onnx")
@clean_errors
def onnx_command(
    precoder: str = typer.Option("fm", help="Neural precoder to export (fm; papp and wifoe to come)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint stem (default: the shipped one)."),
    out: Path = typer.Option(Path("runs/export/fm.onnx"), help="ONNX file to write."),
    opset: int = typer.Option(18, help="ONNX opset."),
    check_samples: int = typer.Option(256, help="Bundled-site samples for the parity check against PyTorch."),
) -> None:
    """Export a neural precoder to ONNX and report the parity with PyTorch (max abs error of W)."""
    import numpy as np
    import torch

    from mimofm.channels.bundled import bundled_sites
    from mimofm.export import export_fm_onnx, run_fm_onnx
    from mimofm.models.loading import load_fm

    if precoder != "fm":
        raise MimofmInputError(f"export is implemented for fm, not {precoder!r}")
    model = load_fm(str(checkpoint) if checkpoint else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_fm_onnx(model, out, opset=opset)
    # parity on real channels: a bundled held-out site at 20 dB median SNR, both modes
    cs = bundled_sites()[0]
    g = cs.h.abs().square().sum(-1).median()
    idx = torch.from_numpy(np.random.default_rng(0).integers(cs.num_positions, size=(check_samples, model.cfg.num_ue)))
    h = (cs.h[idx] * torch.sqrt(100.0 / g)).to(torch.complex64)
    rates = torch.rand(check_samples, model.cfg.num_ue, generator=torch.Generator().manual_seed(0)) * 3
    errs = []
    with torch.no_grad():
        for r in (None, rates):
            w_t = model(h, rates=r).w.numpy()
            w_o = run_fm_onnx(out, h.numpy(), None if r is None else r.numpy())
            errs.append(float(np.abs(w_o - w_t).max()))
    console.print(f"wrote [bold]{out}[/] ({out.stat().st_size / 1e6:.1f} MB, opset {opset}, dynamic batch)")
    console.print(f"parity with PyTorch on {check_samples} samples of {cs.name}: max |ΔW| {errs[0]:.2e} (maximum "
                  f"sum rate), {errs[1]:.2e} (rate requests)")
    if max(errs) > 1e-4:
        raise MimofmInputError(f"ONNX output differs from PyTorch by {max(errs):.2e} (> 1e-4)")
