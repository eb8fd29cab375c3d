"""Start-up time of the `mimofm` command: the median wall time of N fresh runs of each of `--version`,
`--help`, `data --help` and `eval --help` (target: < 1 s each), beside the interpreter alone and the bare
`import mimofm.cli.main`.

Usage (from the repository root):
    PYTHONPATH=src python benchmarks/cli_startup.py [--runs 5] [--json out.json]

Each run is ``python -m mimofm.cli.main ARGS`` in a new process (what the console script does), timed from
spawn to exit. What loads at start-up: ``python -X importtime -c "import mimofm.cli.main"``. That PyTorch
stays out is a test (tests/cli/test_startup.py); this script only measures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
CASES = {
    "python -c pass (interpreter floor)": ["-c", "pass"],
    "import mimofm.cli.main": ["-c", "import mimofm.cli.main"],
    "mimofm --version": ["-m", "mimofm.cli.main", "--version"],
    "mimofm --help": ["-m", "mimofm.cli.main", "--help"],
    "mimofm data --help": ["-m", "mimofm.cli.main", "data", "--help"],
    "mimofm eval --help": ["-m", "mimofm.cli.main", "eval", "--help"],
}


def wall_times(args: list[str], runs: int) -> list[float]:
    """Seconds from spawn to exit of ``runs`` fresh ``python ARGS`` processes (the package from ``src``)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per case (median reported)")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    rows = []
    for case, argv in CASES.items():
        t = wall_times(argv, args.runs)
        med = statistics.median(t)
        command = case.startswith("mimofm ")
        row = {"case": case, "runs": args.runs, "median_s": med, "min_s": min(t), "max_s": max(t)}
        if command:
            row["target_met"] = med < TARGET_S
        rows.append(row)
        verdict = ("OK" if med < TARGET_S else "MISS") if command else ""
        print(f"{case:36} median {med:5.2f} s  (min {min(t):.2f}, max {max(t):.2f})  {verdict}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"target_s": TARGET_S, "rows": rows}, indent=2) + "\n")
    return 0 if all(r.get("target_met", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
