"""wifoe at the calibrated operating point, beside the wifoe paper and the baselines a RAN engineer uses.

    python benchmarks/wifoe_operating_point.py classical   # ZF, WMMSE, LMMSE, NR Type I / II codebooks
    python benchmarks/wifoe_operating_point.py baselines --shard i/2   # STL and DSC per task (resumable)
    python benchmarks/wifoe_operating_point.py models      # MTL (shipped or --checkpoint), CEP, same draws
    python benchmarks/wifoe_operating_point.py report      # markdown tables + figures
    python benchmarks/wifoe_operating_point.py card        # the shipped card: operating point and rates

The operating point comes from ``benchmarks/wifoe_calibration.py`` (docs/wifoe.md): the paper's "S dB" is
mimofm's received data SNR ``S + 6`` dB, and the pilots arrive at the data SNR + 4 dB (20 dB at the paper's
10 dB). Every number is a mean sum rate (bit/s/Hz) over K = 3..8 on the tasks' **test** drops; what each
part measures: :mod:`mimofm.experiments.wifoe_operating_point`. ``card`` is the only part that writes into
the shipped assets, and only when run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mimofm._io import write_json
from mimofm.experiments._steps import setup_logging
from mimofm.experiments.wifoe_operating_point import (
    card_fields,
    render_op,
    run_baselines,
    run_classical,
    run_models,
)
from mimofm.models.zoo import shipped_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["classical", "baselines", "models", "report", "card"])
    ap.add_argument("--shard", default="0/1", help="baselines: i/n trains every n-th job from the i-th")
    ap.add_argument("--out", type=Path, default=Path("runs/wifoe_operating_point"))
    ap.add_argument("--samples", type=int, default=50, help="multi-user samples per K (test drops)")
    ap.add_argument("--checkpoint", default=None, help="MTL checkpoint stem (default: the shipped wifoe)")
    ap.add_argument("--cep", default=None, help="CEP checkpoint stem (benchmarks/wifoe_calibration.py cep)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--figures", type=Path, default=Path("docs/figures"))
    a = ap.parse_args()
    setup_logging()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.part == "classical":
        run_classical(a.out, a.samples)
    elif a.part == "baselines":
        run_baselines(a.out, a.shard, a.checkpoint)
    elif a.part == "models":
        run_models(a.out, a.samples, a.checkpoint, a.cep)
    elif a.part == "card":
        stem = str(shipped_checkpoint("wifoe"))
        card_path = Path(stem).with_suffix(".json")
        card = {**json.loads(card_path.read_text()), **card_fields(a.out, stem)}
        write_json(card_path, card)
        print(f"wrote the operating point and test-drop rates into {card_path}")
    else:
        text = render_op(a.out, a.figures)
        (a.out / "summary.md").write_text(
            text
        )  # what BENCHMARKS.md takes (write_benchmarks_md.py --wifoe-op)
        print(text, end="")


if __name__ == "__main__":
    main()
