"""Peak memory and time of `mimofm data import` on hostile files (issue 27) and on a huge file that streams.

Usage (from the repository root; needs /usr/bin/time):
    PYTHONPATH=src:. python benchmarks/hostile_files.py [--stream-gb 10] [--skip-stream] [--json out.json]

Each hostile file is written at the issue's scale (tests/channels/hostile.py: a .npy declaring 10^12 × 64,
a gzip HDF5 declaring 20M × 64 float32, a 4 GB .npz zip bomb, links out of the file, ...) and imported by
``python -m mimofm.cli.main data import FILE --out OUT`` under ``/usr/bin/time -v``; the row gives the exit
code (2: refused cleanly), the peak RSS, the wall time and the error. Targets: each refused in < 2 s with a
peak RSS < 500 MB. Then a ``--stream-gb`` GB complex64 [rows, 64] .npy is written and imported (target:
peak RSS < 1 GB), and ``data info`` read over it; the big files are deleted afterwards (check ``df -h``
first: the source and the site file each take that much disk).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tests.channels import hostile

ROOT = Path(__file__).resolve().parents[1]
ISSUE_SCALE = {
    "npy-declared-huge": lambda p: hostile.npy_declared_huge(p, rows=10**12),
    "hdf5-gzip-float32": lambda p: hostile.hdf5_gzip_declared(p, rows=20_000_000),
    "hdf5-gzip-complex": lambda p: hostile.hdf5_gzip_declared(p, rows=20_000_000, dtype=np.complex64),
    "npz-zip-bomb": lambda p: hostile.npz_zip_bomb(p, rows=8_388_608, cols=64),  # 4 GiB of zeros
    "npz-forged-size": lambda p: hostile.npz_forged_size(p, declared=4 * 2**30),
}


def timed(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    err = [line for line in proc.stderr.splitlines() if "error:" in line]
    return {
        "exit": proc.returncode,
        "peak_rss_mb": rss / 1024,
        "wall_s": wall,
        "error": " ".join(err)[:300],
        "stdout": proc.stdout,
    }


# the refusal itself, timed inside one process (the CLI's wall time adds the interpreter and torch import)
IN_PROCESS = """
import sys, time
from mimofm.channels.io import import_site
from mimofm.core.validation import MimofmInputError
t0 = time.perf_counter()
try:
    import_site(sys.argv[1], sys.argv[2])
    outcome = "imported"
except MimofmInputError as e:
    outcome = type(e).__name__
print(f"REFUSAL {time.perf_counter() - t0:.4f} {outcome}")
"""


def in_process(path: Path, out: Path) -> dict:
    r = timed([sys.executable, "-c", IN_PROCESS, str(path), str(out)])
    line = next((x for x in r.pop("stdout").splitlines() if x.startswith("REFUSAL")), "REFUSAL nan crash")
    _, seconds, outcome = line.split()
    return {"refusal_s": float(seconds), "outcome": outcome, "process_peak_rss_mb": r["peak_rss_mb"]}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "mimofm.cli.main", *map(str, args)]


def big_npy(path: Path, gib: float, cols: int = 64) -> int:
    """A complex64 [rows, cols] .npy of about ``gib`` GiB, no zero row, written in 64 MiB blocks."""
    rows = int(gib * 2**30) // (cols * 8)
    block = 2**26 // (cols * 8)
    rng = np.random.default_rng(0)
    base = (rng.normal(size=(block, cols)) + 1j * rng.normal(size=(block, cols))).astype(np.complex64)
    header = {"descr": "<c8", "fortran_order": False, "shape": (rows, cols)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        done = 0
        while done < rows:
            n = min(block, rows - done)
            (base[:n] * np.complex64(1 + 0.001 * (done // block))).tofile(f)
            done += n
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream-gb", type=float, default=10.0)
    ap.add_argument("--skip-stream", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temporary folder)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        floor = timed([sys.executable, "-c", "import mimofm.cli.main"])
        floor.pop("stdout")
        print(f"interpreter + mimofm import: peak RSS {floor['peak_rss_mb']:.0f} MB, {floor['wall_s']:.2f} s")
        rows.append({"case": "import mimofm.cli.main (floor)", **floor})
        for case in sorted(hostile.CASES):
            writer = ISSUE_SCALE.get(case)
            path = (
                writer(tmp / f"{case}{hostile.SUFFIX[case.split('-')[0]]}")
                if writer
                else hostile.write_case(case, tmp)
            )
            r = timed(cli("data", "import", path, "--out", tmp / "out.h5", "--force"))
            r.pop("stdout")
            r.update(in_process(path, tmp / "out.h5"))
            ok = r["exit"] == 2 and r["peak_rss_mb"] < 500 and r["refusal_s"] < 2
            ok = ok and not (tmp / "out.h5").exists()
            r = {"case": case, "file_bytes": path.stat().st_size, **r, "target_met": ok}
            rows.append(r)
            print(
                f"{case:26} {r['file_bytes']:>11,} B  exit {r['exit']}  peak RSS {r['peak_rss_mb']:4.0f} MB  "
                f"CLI {r['wall_s']:5.2f} s  refused in {r['refusal_s'] * 1000:7.1f} ms ({r['outcome']})  "
                f"{'OK ' if ok else 'MISS'}  {r['error'][:110]}",
                flush=True,
            )
        if not args.skip_stream:
            src = tmp / "big.npy"
            t0 = time.perf_counter()
            n = big_npy(src, args.stream_gb)
            size = src.stat().st_size
            took = time.perf_counter() - t0
            print(f"wrote {src.name}: [{n}, 64] complex64, {size / 2**30:.2f} GiB in {took:.0f} s")
            for what, argv in (
                ("stream import", cli("data", "import", src, "--out", tmp / "big.h5")),
                ("stream info (site)", cli("data", "info", tmp / "big.h5")),
            ):
                r = timed(argv)
                r = {
                    "case": what,
                    "file_bytes": size,
                    **r,
                    "target_met": r["exit"] == 0 and r["peak_rss_mb"] < 1024,
                }
                rows.append(r)
                print(
                    f"{what:26} {size / 2**30:6.2f} GiB  exit {r['exit']}  "
                    f"peak RSS {r['peak_rss_mb']:6.0f} MB  {r['wall_s']:6.1f} s  {r['error'][:200]}",
                    flush=True,
                )
            for p in (src, tmp / "big.h5"):
                p.unlink(missing_ok=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if all(r.get("target_met", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
