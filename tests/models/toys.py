"""Toy site files, a user's channel file, the tiny fm settings and a tiny pretrained user-form fm that the
model, adaptation, export, evaluation and CLI tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mimofm.channels.store import write_site
from mimofm.channels.types import ChannelSet
from mimofm.training.fm_recipe import FMRecipe
from mimofm.training.trainer import TrainConfig, train
from tests.conftest import correlated

FM_TINY = {"num_ue": 4, "d_model": 32, "num_attention_heads": 2, "num_layers": 1, "ffn": 64, "dropout": 0.0}
# a tiny papp extractor + teacher + student (any input form; add num_ue/num_bs_ant for the antenna form)
PAPP_TINY = {
    "cnn_channels": [4, 2],
    "encoder_layers": 2,
    "encoder_width": 32,
    "feature_dim": 16,
    "teacher_width": 32,
    "student_widths": [32, 64],
}


def toy_site(path: Path, seed: int, n: int = 200, ant: int = 16, rank: int = 3) -> str:
    """A toy site file: correlated channels with raw-gain magnitudes and LOS flags."""
    h = correlated(1, n, ant, seed=seed, snr_db=-90.0, rank=rank)[0].to(torch.complex64)
    los = torch.from_numpy(np.arange(n) % 3 == 0)
    split = np.zeros(n, dtype=np.int8)
    write_site(path, ChannelSet(path.stem, h, los, torch.zeros(n, 3, dtype=torch.float64)), split=split)
    return str(path)


def tiny_fm_recipe(sites: list[str], pretrain_steps: int, default_batch: int, rmax_samples: int) -> FMRecipe:
    """An fm recipe of :data:`FM_TINY` on ``sites`` at 10 dB, 16 samples per dataset and step."""
    return FMRecipe(
        sites=sites,
        model=FM_TINY,
        snr_grid_db=[10.0],
        batch_per_dataset=16,
        default_batch=default_batch,
        pretrain_steps=pretrain_steps,
        rmax_samples=rmax_samples,
    )


def user_file(path: Path, seed: int, n: int = 120, ant: int = 16, rank: int = 3) -> Path:
    """A user's channel file as it comes: ``.npz`` with ``H`` ``[n, ant]`` (raw gains) only, no split."""
    h = correlated(1, n, ant, seed=seed, snr_db=-90.0, rank=rank)[0].to(torch.complex64)
    np.savez(path, H=h.numpy())
    return path


def tiny_user_fm(tmp: Path, steps: int = 6) -> str:
    """A tiny user-form fm (rate targets per user) pretrained for ``steps`` steps on two toy sites with
    2 users on 16 or 8 antennas, its heads' features recorded; returns the checkpoint stem."""
    sites = [toy_site(tmp / "a.h5", 1, rank=3), toy_site(tmp / "b.h5", 2, rank=1)]
    rec = FMRecipe(
        sites=sites,
        model={**FM_TINY, "num_ue": 2, "input_form": "user", "rate_mode": "per-user"},
        snr_grid_db=[10.0],
        batch_per_dataset=16,
        default_batch=16,
        pretrain_steps=2,
        rmax_samples=8,
        rmax_iterations=10,
        configs=[[2, 16], [2, 8]],
    )
    torch.manual_seed(0)
    train(rec, TrainConfig(steps=steps, lr=3e-3, ckpt_every=steps, out_dir=str(tmp / "pre")), progress=False)
    return str(tmp / "pre" / "last")
