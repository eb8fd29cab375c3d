"""Re-make the wifoe paper's results on mimofm's 3GPP 38.901 tasks (Table II, Fig. 3, Fig. 4,
Table III, Fig. 5 analogues).

    python benchmarks/wifoe_paper.py train [--shard 0/2]   # every baseline model (resumable, shardable)
    python benchmarks/wifoe_paper.py report                # evaluation, plots, summary.md

This benchmark measures at the **historical operating point** (received SNR 0–20 dB, full-energy
pilots): give it ``--checkpoint`` of a model trained there (``mimofm train wifoe --recipe
recipes/wifoe-fullenergy.yaml``). The shipped checkpoint is trained at the calibrated point;
``benchmarks/wifoe_operating_point.py`` measures it there. The multi-task model (MTL) is
``--checkpoint`` (default: the shipped one). The jobs ``train`` runs (STL, CEP, DSC, the Fig. 4
fine-tuning runs, the Fig. 5 trunks) are listed in :func:`mimofm.experiments.wifoe_paper.jobs`.

Every number is measured on the tasks' **test** drops (never trained on); the models never see a
G-task (UMa) or T10..T12 during pretraining. Each job is a cached step, so a killed run resumes.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.wifoe_paper import (
    PAPER,
    check_historical,
    default_checkpoint,
    mtl_recipe,
    report,
    train_shard,
)


def parse_run_options(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The options every wifoe benchmark shares (test samples, sharding, threads, figure folder), parsed;
    ``--threads`` is applied."""
    ap.add_argument("--samples", type=int, default=200, help="test samples per user count K (K = 3..8)")
    ap.add_argument("--shard", default="0/1", help="i/n: train every n-th job starting at i")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fig-dir", default="docs/figures")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["train", "report"])
    ap.add_argument("--out", default="runs/wifoe_paper")
    ap.add_argument("--checkpoint", default=None, help="MTL wifoe checkpoint stem (default: the shipped one)")
    ap.add_argument(
        "--steps", type=int, default=0, help="steps per baseline model (default: the MTL recipe's)"
    )
    ap.add_argument("--ft-steps", type=int, default=PAPER.ft_steps)
    ap.add_argument("--scale-steps", type=int, default=PAPER.scale_steps)
    ap.add_argument("--only", default="", help="train only the jobs whose name starts with this (e.g. ft/)")
    args = parse_run_options(ap)
    setup_logging()
    ckpt = default_checkpoint(args.checkpoint)
    check_historical(ckpt)
    spec = replace(PAPER, ft_steps=args.ft_steps, scale_steps=args.scale_steps, samples=args.samples)
    out = Path(args.out)
    if args.phase == "train":
        steps = args.steps or mtl_recipe(ckpt)[1]["steps"]
        train_shard(out, ckpt, steps, args.shard, args.only, spec)
        return
    print(report(out, ckpt, Path(args.fig_dir), args.checkpoint or "shipped wifoe", spec))


if __name__ == "__main__":
    main()
