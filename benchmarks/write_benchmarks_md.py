"""Write BENCHMARKS.md from the benchmark commands' JSON: see :mod:`mimofm.reports.benchmarks_md`.

python benchmarks/write_benchmarks_md.py --eval runs/bench_eval.json [...] --keep BENCHMARKS.md --out BENCHMARKS.md
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.reports.benchmarks_md import main

if __name__ == "__main__":
    page = main()
    if "--out" not in sys.argv:
        print(page)
