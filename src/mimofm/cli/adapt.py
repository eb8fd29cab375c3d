"""`mimofm adapt fm|papp --data SITE --shots N|full` (a site-adapted checkpoint) and
`mimofm adapt wifoe --task T10 --budget 2000` (a new task branch on the frozen pretrained trunk)."""

from __future__ import annotations

from pathlib import Path

import typer

from mimofm.adaptation.fm import adapt_fm
from mimofm.adaptation.papp import finetune_papp
from mimofm.adaptation.wifoe import finetune_wifoe
from mimofm.channels.io import load_channels
from mimofm.cli._common import clean_errors, console
from mimofm.core.validation import MimofmInputError

__all__ = ["adapt_command"]


@clean_errors
def adapt_command(
    family: str = typer.Argument(
        ...,
        help="Model family: fm (new head), papp (fine-tune the whole model) or wifoe "
        "(new task branch, frozen trunk).",
    ),
    data: Path | None = typer.Option(
        None, help="fm/papp: site file of the deployment site (its train-split positions are the local data)."
    ),
    task: str | None = typer.Option(None, help="wifoe: the new 3GPP task (mimofm data tasks), e.g. T10."),
    budget: int = typer.Option(
        2000, help="wifoe: training samples of the new task (0: every train position)."
    ),
    snr_convention: str | None = typer.Option(
        None,
        help="wifoe: how the training SNRs are read, received | per-antenna (default: the checkpoint's).",
    ),
    pilot_snr_db: float | None = typer.Option(
        None,
        help="wifoe: a fixed pilot SNR in dB (default: the checkpoint's "
        "pilot rule; full-energy pilots if it has none).",
    ),
    pilot_snr_offset_db: float | None = typer.Option(None, help="wifoe: pilot SNR = data SNR + this (dB)."),
    val_fraction: float = typer.Option(
        0.0,
        help="wifoe: share of the budget held out (on positions of its own) to "
        "choose the best of 20 evaluations over the run; the checkpoint is "
        "then best.*, not last.*.",
    ),
    shots: str = typer.Option(
        "10", help="Local samples (e.g. 10, 40), or 'full' for every local train position."
    ),
    checkpoint: Path | None = typer.Option(None, help="Pretrained checkpoint (default: the shipped one)."),
    top_n: int = typer.Option(5, help="fm few-shot: number of most similar training datasets."),
    steps: int | None = typer.Option(None, help="Training steps (default: fm 300, papp 200, wifoe 800)."),
    lr: float | None = typer.Option(None, help="Learning rate (default 1e-3)."),
    seed: int = typer.Option(0),
    out_dir: Path = typer.Option(
        Path("runs/adapt"),
        help="The adapted checkpoint goes here (last.*; wifoe with --val-fraction: best.*).",
    ),
) -> None:
    """Adapt a pretrained model to a new site: fm few-shot/full (a new head), papp fine-tuning (whole
    model)."""
    ckpt = str(checkpoint) if checkpoint else None
    if family in ("fm", "papp") and data is None:
        raise MimofmInputError(f"`mimofm adapt {family}` needs --data SITE_FILE")
    if family != "wifoe" and val_fraction:
        raise MimofmInputError(
            f"--val-fraction is for wifoe; `mimofm adapt {family}` trains a fixed number of steps"
        )
    if family != "wifoe" and (snr_convention or pilot_snr_db is not None or pilot_snr_offset_db is not None):
        raise MimofmInputError(
            f"--snr-convention / --pilot-snr-db / --pilot-snr-offset-db are for wifoe, not {family}"
        )
    if family == "wifoe":
        if not task:
            raise MimofmInputError(
                "`mimofm adapt wifoe` needs --task NAME (e.g. T10; see `mimofm data tasks`)"
            )
        point = {
            k: v
            for k, v in (
                ("snr_convention", snr_convention),
                ("pilot_snr_db", pilot_snr_db),
                ("pilot_snr_offset_db", pilot_snr_offset_db),
            )
            if v is not None
        }
        out = finetune_wifoe(
            task,
            budget,
            checkpoint=ckpt,
            steps=steps or 800,
            lr=lr or 1e-3,
            seed=seed,
            val_fraction=val_fraction,
            out_dir=str(out_dir),
            **point,
        )
    elif family == "fm":
        out = adapt_fm(
            load_channels(data),
            shots,
            checkpoint=ckpt,
            top_n=top_n,
            steps=steps or 300,
            lr=lr or 1e-3,
            seed=seed,
            out_dir=str(out_dir),
            log=console.print,
        )
    elif family == "papp":
        out = finetune_papp(
            load_channels(data),
            shots,
            checkpoint=ckpt,
            steps=steps or 200,
            lr=lr or 1e-3,
            seed=seed,
            out_dir=str(out_dir),
        )
    else:
        raise MimofmInputError(f"adaptation is implemented for fm, papp and wifoe, not {family!r}")
    console.print(f"adapted {family}: {out['checkpoint']}.safetensors · {out['metrics']}")
