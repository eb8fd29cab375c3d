"""Sum rate against CPU time per precoder: fm, papp, papp-lite against ZF-WF, RZF, rzf-refined and WMMSE
stopped after 1, 2, 3, 5, 10 iterations or run to its stopping rule, on the held-out sites, per SNR.

    python benchmarks/frontier.py [--samples 500] [--threads 2] [--quick]
                                  [--json runs/frontier.json] [--md ...] [--png runs/frontier.png]

Run it on an otherwise idle machine: the timings are CPU time per precoder, measured in the same run for
every contender. The study is :mod:`mimofm.experiments.frontier`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.frontier import QUICK, FrontierSpec, plot, render, run_frontier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=FrontierSpec.samples)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--num-ue", type=int, default=FrontierSpec.num_ue)
    ap.add_argument("--num-bs-ant", type=int, default=FrontierSpec.num_bs_ant)
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=STEM")
    ap.add_argument("--quick", action="store_true", help="one SNR, 32 samples (< 1 minute)")
    ap.add_argument("--json", type=Path, default=Path("runs/frontier.json"))
    ap.add_argument("--md", type=Path, default=Path("runs/frontier.md"))
    ap.add_argument("--png", type=Path, default=Path("runs/frontier.png"))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = QUICK if a.quick else FrontierSpec(samples=a.samples)
    spec = replace(spec, num_ue=a.num_ue, num_bs_ant=a.num_bs_ant)
    setup_logging()
    doc = run_frontier(spec, dict(c.split("=", 1) for c in a.checkpoint))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(doc, indent=1))
    a.md.write_text(render(doc))
    plot(doc, a.png)
    print(render(doc))


if __name__ == "__main__":
    main()
