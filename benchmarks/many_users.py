"""Where papp's gap at many users comes from: seen sites against held-out sites, and more K = 16 training.

    python benchmarks/many_users.py [--checkpoint LABEL=STEM ...] [--samples 100]
                                         [--precoders papp,papp+wmmse-2]
                                         [--json runs/many_users.json] [--md runs/many_users.md]

For each checkpoint (default: the shipped papp) and K = 4 and 16 users on the full 64-antenna panel, the
sum rate ÷ converged WMMSE of ``papp`` and ``papp+wmmse-2`` at 0/10/20/30 dB, averaged over two groups:

* *seen sites*: the pretraining (train-split) sites, at their test positions, which training never drew;
* *held-out sites*: the bundled held-out sites, at their test positions (what BENCHMARKS.md reports).

The difference between the two groups is the site generalisation gap. ``--precoders fm,fm+wmmse-1`` asks
the same of fm (``--checkpoint`` stems are then fm checkpoints). Comparing the shipped checkpoint
with ``recipes/papp-more-users.yaml`` (1500 more steps, K = 16 in 8 of 19 domains) shows how much of it
more exposure to many users closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mimofm.channels.io import load_channels
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.experiments._heldout import heldout_files
from mimofm.experiments._steps import setup_logging
from mimofm.models.zoo import NEURAL
from mimofm.reports.tables import markdown_table
from mimofm.training.recipes import resolve_sites

SNRS = (0.0, 10.0, 20.0, 30.0)
PRECODERS = ("papp", "papp+wmmse-2")


def run(
    checkpoints: dict[str, str | None], samples: int, precoders: tuple[str, ...] = PRECODERS
) -> list[dict]:
    """One row per (checkpoint, precoder, K, group, SNR): the mean over the group's sites of the ratio."""
    groups = {
        "seen sites": [load_channels(Path(p)) for p in resolve_sites("catalog:train")],
        "held-out sites": [load_channels(Path(p)) for p in heldout_files().values()],
    }
    rows = []
    for label, stem in checkpoints.items():
        for k in (4, 16):
            for group, sets in groups.items():
                cfg = EvalConfig(
                    precoders=[*precoders, "wmmse"],
                    snr_db=list(SNRS),
                    num_ue=k,
                    samples=samples,
                    positions="test",
                    checkpoints={NEURAL[precoders[0]].checkpoint: stem} if stem else {},
                )
                res = evaluate_sets(sets, cfg)["results"]
                for p in precoders:
                    for s in SNRS:
                        v = [r["ratio_to_wmmse"] for r in res if r["precoder"] == p and r["snr_db"] == s]
                        rows.append(
                            {"checkpoint": label, "precoder": p, "num_ue": k, "group": group, "snr_db": s,
                             "ratio_to_wmmse": sum(v) / len(v), "sites": len(v)}
                        )  # fmt: skip
    return rows


def render(rows: list[dict]) -> str:
    """A markdown table: one line per (checkpoint, precoder, K, group), one column per SNR."""
    keys = list(dict.fromkeys((r["checkpoint"], r["precoder"], r["num_ue"], r["group"]) for r in rows))
    body = []
    for key in keys:
        mine = {
            r["snr_db"]: r for r in rows if (r["checkpoint"], r["precoder"], r["num_ue"], r["group"]) == key
        }
        sites = next(iter(mine.values()))["sites"]
        body.append(
            [
                key[0],
                key[1],
                str(key[2]),
                f"{key[3]} ({sites})",
                *(f"{mine[s]['ratio_to_wmmse']:.3f}" for s in SNRS),
            ]
        )
    header = ["checkpoint", "precoder", "K", "sites (count)", *(f"{s:g} dB" for s in SNRS)]
    return "\n".join(markdown_table(header, body))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--checkpoint", action="append", default=[], metavar="LABEL=STEM",
        help="a checkpoint stem of the --precoders' family under a label (repeatable; default: shipped)",
    )  # fmt: skip
    ap.add_argument("--samples", type=int, default=100, help="user sets per site and SNR")
    ap.add_argument("--precoders", default=",".join(PRECODERS), help="one network family and its variants")
    ap.add_argument("--json", type=Path, default=Path("runs/many_users.json"))
    ap.add_argument("--md", type=Path, default=Path("runs/many_users.md"))
    a = ap.parse_args()
    checkpoints = dict(c.split("=", 1) for c in a.checkpoint) or {"shipped": None}
    setup_logging()
    rows = run(checkpoints, a.samples, tuple(a.precoders.split(",")))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"rows": rows, "samples": a.samples, "checkpoints": checkpoints}, indent=1))
    a.md.write_text(render(rows) + "\n")
    print(render(rows))


if __name__ == "__main__":
    main()
