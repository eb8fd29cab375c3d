"""fm and papp on any number of users and antennas, against WMMSE, ZF-WF and RZF, on held-out data only.

    python benchmarks/configurations.py [--extra FILE ...] [--samples 200] [--quick]
                                        [--json runs/configurations.json] [--md runs/configurations.md]

The held-out bundled sites at (K, N_t) = (2|4|8|16, 64), (4, 16), (4, 32), (8, 32) (sub-arrays of the 8×8
panel), and every ``--extra`` file (larger arrays, e.g. ``mimofm data tr38901 --task T10 --out t10.h5``) at
K = 4 and 8. The study is :mod:`mimofm.experiments.configurations`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.experiments._steps import setup_logging
from mimofm.experiments.configurations import QUICK, ConfigSpec, render, run_configurations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", nargs="*", default=[], help="larger-array files (TR 38.901 tasks)")
    ap.add_argument("--samples", type=int, default=ConfigSpec.samples)
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=STEM")
    ap.add_argument("--quick", action="store_true", help="two small configurations, one SNR (< 1 minute)")
    ap.add_argument("--json", type=Path, default=Path("runs/configurations.json"))
    ap.add_argument("--md", type=Path, default=Path("runs/configurations.md"))
    a = ap.parse_args()
    spec = QUICK if a.quick else ConfigSpec(extra_files=tuple(a.extra), samples=a.samples)
    if a.quick and a.extra:
        spec = replace(spec, extra_files=tuple(a.extra))
    setup_logging()
    doc = run_configurations(spec, dict(c.split("=", 1) for c in a.checkpoint))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(doc, indent=1))
    a.md.write_text(render(doc))
    print(render(doc))


if __name__ == "__main__":
    main()
