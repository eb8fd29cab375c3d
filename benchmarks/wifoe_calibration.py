"""Calibrate wifoe's operating point against the wifoe paper by its *baselines*, never by the proposed method.

    python benchmarks/wifoe_calibration.py data            # data SNR: perfect-CSI WMMSE and ZF on Group 1
    python benchmarks/wifoe_calibration.py pilot           # pilot SNR: LMMSE + WMMSE over pilot SNR
    python benchmarks/wifoe_calibration.py cep --pilot-offset-db 0 [--steps 800]   # one CEP model (resumable)
    python benchmarks/wifoe_calibration.py report          # table (markdown) + figure

What each part measures: :mod:`mimofm.experiments.wifoe_operating_point`. Every number is on the tasks'
**test** drops; the calibration never looks at wifoe (MTL) itself. Results go to
``runs/wifoe_calibration`` (``--out``), one JSON per part; every evaluated point is a cached step, so every
part resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.wifoe_operating_point import (
    data_point,
    render_calibration,
    run_cep,
    run_data,
    run_pilot,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["data", "pilot", "cep", "report"])
    ap.add_argument("--out", type=Path, default=Path("runs/wifoe_calibration"))
    ap.add_argument("--samples", type=int, default=100, help="multi-user samples per K (test drops)")
    ap.add_argument(
        "--snr-db", type=float, default=None, help="data SNR of pilot/cep (default: the calibrated one)"
    )
    ap.add_argument("--pilot-offset-db", type=float, default=0.0, help="cep: pilot SNR minus data SNR")
    ap.add_argument("--steps", type=int, default=800, help="cep: training steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--figure", type=Path, default=Path("docs/figures/wifoe_calibration.png"))
    a = ap.parse_args()
    setup_logging()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.part == "data":
        run_data(a.out, a.samples)
        return
    if a.part == "report":
        text = render_calibration(a.out, a.figure)
        (a.out / "summary.md").write_text(
            text
        )  # what BENCHMARKS.md takes (write_benchmarks_md.py --wifoe-op)
        print(text, end="")
        return
    snr = a.snr_db
    if snr is None:
        data = a.out / "data.json"
        snr = data_point(json.loads(data.read_text()))["snr_db"] if data.exists() else None
        if snr is None:
            raise SystemExit("run `data` first: no calibrated data SNR yet (or give --snr-db)")
        snr = round(snr)  # the calibrated point, on a whole dB
    if a.part == "pilot":
        run_pilot(a.out, a.samples, snr)
        return
    torch.set_num_threads(a.threads)
    run_cep(a.out, a.pilot_offset_db, a.steps, snr, a.samples)


if __name__ == "__main__":
    main()
