"""`mimofm adapt fm --data SITE --shots N|full`: a site-adapted fm checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mimofm.cli._common import clean_errors, console
from mimofm.core.validation import MimofmInputError


@clean_errors
def adapt_command(
    family: str = typer.Argument(..., help="Model family (fm)."),
    data: Path = typer.Option(..., help="Site file of the deployment site (its train-split positions are the local data)."),
    shots: str = typer.Option("10", help="Local samples for few-shot (e.g. 10), or 'full' for every local train position."),
    checkpoint: Optional[Path] = typer.Option(None, help="Pretrained fm checkpoint (default: the shipped one)."),
    top_n: int = typer.Option(5, help="Few-shot: number of most similar training datasets."),
    steps: int = typer.Option(300, help="Head training steps."),
    lr: float = typer.Option(1e-3, help="Head learning rate."),
    seed: int = typer.Option(0),
    out_dir: Path = typer.Option(Path("runs/adapt"), help="The adapted checkpoint goes here (last.*)."),
) -> None:
    """Adapt fm to a new site: few-shot (similar training datasets + local samples) or full."""
    from mimofm.adaptation.fm import adapt_fm
    from mimofm.channels.io import load_channels

    if family != "fm":
        raise MimofmInputError(f"adaptation is implemented for fm, not {family!r}")
    out = adapt_fm(load_channels(data), shots, checkpoint=str(checkpoint) if checkpoint else None, top_n=top_n,
                   steps=steps, lr=lr, seed=seed, out_dir=str(out_dir), log=console.print)
    console.print(f"adapted fm: {out['checkpoint']}.safetensors · {out['metrics']}")
