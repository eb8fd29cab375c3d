"""`mimofm adapt fm --data SITE --shots N|full`: a site-adapted fm checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
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
    from mimofm.adaptation.fm import HeadAdaptation, local_dataset, similar_datasets
    from mimofm.channels.io import load_channels
    from mimofm.models.loading import load_fm
    from mimofm.training.fm_recipe import load_datasets
    from mimofm.training.recipes import resolve_sites
    from mimofm.training.trainer import TrainConfig, train

    if family != "fm":
        raise MimofmInputError(f"adaptation is implemented for fm, not {family!r}")
    cs = load_channels(data)
    if cs.split is None:
        raise MimofmInputError(f"{data} has no position split; adaptation uses its train positions only")
    local_idx = np.flatnonzero(cs.split.numpy() == 0)
    ckpt = str(checkpoint) if checkpoint else None
    model = load_fm(ckpt)
    if shots == "full":
        datasets = [local_dataset(cs.h[torch.from_numpy(local_idx)], f"{cs.name}/train")]
        console.print(f"full adaptation on {len(local_idx)} local positions")
    else:
        try:
            n = int(shots)
        except ValueError:
            raise MimofmInputError(f"`--shots` must be an integer or 'full', got {shots!r}") from None
        if not model.cfg.num_ue <= n <= len(local_idx):
            raise MimofmInputError(f"`--shots` must be between {model.cfg.num_ue} and {len(local_idx)}, got {n}")
        pick = np.random.default_rng(seed).choice(local_idx, size=n, replace=False)
        local = local_dataset(cs.h[torch.from_numpy(pick)], f"{cs.name}/{n}-shot")
        training = load_datasets(resolve_sites("catalog:train"), model.cfg.num_ue)
        top = similar_datasets(model, training, local, shots=n, top_n=top_n, seed=seed)
        for i, sim in top:
            console.print(f"  similar: {training[i].name:22s} cosine {sim:.4f}")
        datasets = [training[i] for i, _ in top] + [local]
    rec = HeadAdaptation(checkpoint=ckpt, datasets=datasets, dataset_names=[d.name for d in datasets], seed=seed)
    out = train(rec, TrainConfig(steps=steps, lr=lr, warmup=0, ckpt_every=max(1, steps // 4), log_every=20,
                                 out_dir=str(out_dir), seed=seed))
    console.print(f"adapted fm: {out['checkpoint']}.safetensors · {out['metrics']}")
