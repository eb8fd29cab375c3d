"""Write BENCHMARKS.md from the benchmark commands' JSON: see :mod:`mimofm.experiments.benchmarks_page`.

    python benchmarks/write_benchmarks_md.py --eval runs/bench_eval.json [...] --keep BENCHMARKS.md \
        --out BENCHMARKS.md

The page never touches the shipped checkpoint cards: ``benchmarks/update_cards.py`` does that.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.experiments.benchmarks_page import main

if __name__ == "__main__":
    page = main()
    if "--out" not in sys.argv:
        print(page)
