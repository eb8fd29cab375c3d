"""Re-make the fm paper's deployment results on mimofm's held-out sites (Fig. 2, Fig. 3, Tables I–II).

    python benchmarks/fm_paper.py [--out runs/fm_paper] [--checkpoint STEM] [--samples 1000]

The steps and their outputs are described in :mod:`mimofm.experiments.fm_paper`; each step's result is
cached in the output folder, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.fm_paper import PAPER, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/fm_paper")
    ap.add_argument("--checkpoint", default=None, help="pretrained fm (default: the shipped one)")
    ap.add_argument("--samples", type=int, default=PAPER.samples)
    ap.add_argument("--tradeoff-samples", type=int, default=PAPER.tradeoff_samples)
    ap.add_argument("--greedy-samples", type=int, default=PAPER.greedy_samples)
    ap.add_argument("--adapt-steps", type=int, default=PAPER.adapt_steps)
    ap.add_argument("--scratch-steps", type=int, default=PAPER.scratch_steps)
    a = ap.parse_args()
    setup_logging()
    spec = replace(
        PAPER,
        checkpoint=a.checkpoint,
        samples=a.samples,
        tradeoff_samples=a.tradeoff_samples,
        greedy_samples=a.greedy_samples,
        adapt_steps=a.adapt_steps,
        scratch_steps=a.scratch_steps,
    )
    run(a.out, spec)


if __name__ == "__main__":
    main()
