"""Fuzz every importer: N cases each of byte mutations and of header-level lies (tests/fuzz/lies.py).

Usage (from the repository root):
    PYTHONPATH=src:. python benchmarks/fuzz_importers.py --cases 10000 [--only .npy,.npz] [--json out.json]

Importers: ``.npy``, ``.npz``, ``.h5`` (plain HDF5), ``site`` (mimofm site files) and ``.mat`` (byte mode:
MATLAB v5, parsed in a child process, ~0.4 s a case; lies mode: MATLAB v7.3). An outcome is ``ok`` (a
valid channel set), ``refused`` (MimofmInputError) or ``crash`` (anything else, MemoryError included: the
loads run under a 256 MiB budget). Prints a table and exits 1 on any crash.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from tests.fuzz.lies import BUILDERS
from tests.fuzz.test_fuzz import _seed_files, load_outcome


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(0, 8)):
        if not data:
            break
        i = rng.randrange(len(data))
        op = rng.choice(["flip", "truncate", "insert", "zero"])
        if op == "flip":
            data[i] ^= rng.randint(1, 255)
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = rng.randbytes(rng.randint(1, 16))
        else:
            data[i : i + 8] = b"\0" * len(data[i : i + 8])
    return bytes(data)


def run(kind: str, mode: str, cases: int, folder: Path, corpus: dict) -> dict:
    counts: Counter = Counter()
    crashes = []
    t0 = time.perf_counter()
    for seed in range(cases):
        case = folder / f"{mode}{seed % 2}"
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir()
        try:
            if mode == "lies":
                p = BUILDERS[kind](np.random.default_rng(seed), case)
            else:
                ext = ".h5" if kind == "site" else kind
                p = case / f"f{ext}"
                seed_file = {"site": ".h5-full", ".h5": ".hdf5"}.get(kind, kind)  # .mat: a MATLAB v5 file
                p.write_bytes(mutate(random.Random(seed), corpus[seed_file]))
            counts[load_outcome(p)] += 1
        except Exception as e:
            counts["crash"] += 1
            crashes.append(
                {"seed": seed, "error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()[-800:]}
            )
    return {
        "kind": kind,
        "mode": mode,
        "cases": cases,
        **counts,
        "seconds": time.perf_counter() - t0,
        "crashes": crashes[:5],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--only", default=",".join(BUILDERS))
    ap.add_argument("--modes", default="bytes,lies")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = _seed_files(folder)
        for kind in args.only.split(","):
            for mode in args.modes.split(","):
                r = run(kind, mode, args.cases, folder, corpus)
                rows.append(r)
                print(
                    f"{kind:6} {mode:5} cases {r['cases']:6}  ok {r.get('ok', 0):6}  "
                    f"refused {r.get('refused', 0):6}  crash {r.get('crash', 0):3}  {r['seconds']:7.1f} s",
                    flush=True,
                )
                for c in r["crashes"]:
                    print("   ", c["seed"], c["error"][:300], file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 1 if any(r.get("crash", 0) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
