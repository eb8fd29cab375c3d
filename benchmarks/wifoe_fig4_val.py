"""wifoe Fig. 4 analogue with the fine-tuning length chosen on validation data, not fixed.

    python benchmarks/wifoe_fig4_val.py train [--shard i/n] [--steps 6000] [--val 0.1] [--seeds 0 1]
    python benchmarks/wifoe_fig4_val.py report [--fig-dir docs/figures]

``benchmarks/wifoe_paper.py`` fine-tunes every Fig. 4 run for a fixed 2000 steps, and a probe of
longer fixed runs (``benchmarks/wifoe_ft_steps.py``, since removed: superseded by this benchmark) showed
those runs far from trained. Here each run may take up to ``--steps`` steps, holds ``--val`` of its
sample budget out (on task positions the training samples never use), evaluates on it every
``steps/20`` steps and keeps the best weights (``finetune_wifoe(..., val_fraction=...)``): the step
count is chosen on the budget's own data, never on the test drops. Strategies: the frozen pretrained
trunk and a frozen random trunk at every budget, STL (the whole model from scratch) at
``--stl-budgets`` (the "within 1% of STL at 2000 samples" target). The report measures each kept model
on the task's test drops as ``benchmarks/wifoe_paper.py`` does (``--samples`` per user count K = 3..8,
at the pretrained checkpoint's operating point: its recipe's ``eval_snr_db``, convention and pilot rule
— 10 dB with full-energy pilots for the historical checkpoint) and averages over ``--seeds`` (each seed
draws its own budget samples, batches and initial branch). Each run is a cached step
(:func:`mimofm.experiments.wifoe_paper.fig4_val_train`), so a killed run resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.wifoe_paper import Fig4ValSpec, fig4_val_report, fig4_val_train


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
    d = Fig4ValSpec()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["train", "report"])
    ap.add_argument(
        "--out",
        default="runs/wifoe_paper/fig4_val",
        help="results folder (the default, inside wifoe_paper.py's, is what `mimofm report` reads)",
    )
    ap.add_argument("--steps", type=int, default=d.max_steps, help="most fine-tuning steps per run")
    ap.add_argument(
        "--val", type=float, default=d.val_fraction, help="share of each budget held out for validation"
    )
    ap.add_argument("--stl-budgets", type=int, nargs="*", default=list(d.stl_budgets))
    ap.add_argument(
        "--checkpoint", default=None, help="pretrained wifoe checkpoint stem (default: the shipped one)"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(d.seeds),
        help="seeds per run (each draws its own budget samples, batches and initial branch)",
    )
    args = parse_run_options(ap)
    setup_logging()
    val = Fig4ValSpec(
        max_steps=args.steps,
        val_fraction=args.val,
        stl_budgets=tuple(args.stl_budgets),
        seeds=tuple(args.seeds),
        checkpoint=args.checkpoint,
        samples=args.samples,
    )
    if args.phase == "train":
        fig4_val_train(Path(args.out), val, args.shard)
        return
    print(fig4_val_report(Path(args.out), val, Path(args.fig_dir)))


if __name__ == "__main__":
    main()
