"""papp on the held-out sites: zero-shot vs DeepAll vs fine-tuned with a budget of local samples.

    python benchmarks/papp_paper.py [--out runs/papp_paper] [--samples 1000]

The steps and their outputs are described in :mod:`mimofm.experiments.papp_paper`; each step's result is
cached in the output folder, so a killed run resumes.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.papp_paper import PAPER, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/papp_paper")
    ap.add_argument("--samples", type=int, default=PAPER.samples)
    ap.add_argument(
        "--fig-dir", default="docs/figures", help="where papp_ratios.png and papp_csi.png are written"
    )
    a = ap.parse_args()
    setup_logging()
    run(Path(a.out), Path(a.fig_dir), replace(PAPER, samples=a.samples))


if __name__ == "__main__":
    main()
