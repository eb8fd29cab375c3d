"""Compare papp checkpoints of different sizes on the validation sites (never on held-out data).

    python benchmarks/papp_size_val.py STEM [STEM ...] [--out runs/papp_size_val.json] [--samples 500]

For the shipped papp and each checkpoint stem given (e.g. ``runs/papp-lite/last``): the mean sum rate
÷ WMMSE on munich-val and sf-val (all positions, seed 3) at 0/10/20/30 dB, and the real multiplications
of its deployed path (:func:`mimofm.models.papp.papp_multiplications`) beside WMMSE's PaPP-Table-I count
at the iterations WMMSE takes in the same run. This is how recipes/papp-lite.yaml's sizes were chosen.
"""

from __future__ import annotations

import argparse

from mimofm._io import write_json
from mimofm.evaluation.complexity import paper_counts
from mimofm.evaluation.evaluate import EvalConfig, compare_checkpoints, load_sets
from mimofm.models.papp import papp_multiplications
from mimofm.models.zoo import load_papp
from mimofm.training.recipes import site_dir

SITES = ["munich-val", "sf-val"]
SNRS = [0.0, 10.0, 20.0, 30.0]  # papp's training grid; the choices recorded in docs/papp.md were made on it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stems", nargs="+")
    ap.add_argument("--out", default="runs/papp_size_val.json")
    ap.add_argument("--samples", type=int, default=500)
    args = ap.parse_args()
    sites = load_sets([str(site_dir() / f"{n}.h5") for n in SITES])
    stems: dict[str, str | None] = {"shipped": None, **{s: s for s in args.stems}}
    cfg = EvalConfig(precoders=["wmmse"], snr_db=SNRS, samples=args.samples, positions="all", seed=3)
    doc = compare_checkpoints(
        sites, ["wmmse"], "papp", {k: {cs.name: v for cs in sites} for k, v in stems.items()}, cfg
    )
    m = {(r["site"], r["snr_db"], r["precoder"]): r for r in doc["results"]}
    names = [cs.name for cs in sites]
    print("| checkpoint | multiplications | " + " | ".join(f"{x:g} dB" for x in SNRS) + " | mean |")
    print("|---|---|" + "---|" * (len(SNRS) + 1))
    wm = {x: sum(m[(s, x, "wmmse")]["iterations_mean"] for s in names) / len(names) for x in SNRS}
    for label, stem in stems.items():
        r = [
            sum(
                m[(s, x, f"papp-{label}")]["sum_rate_mean"] / m[(s, x, "wmmse")]["sum_rate_mean"]
                for s in names
            )
            / len(names)
            for x in SNRS
        ]
        mult = papp_multiplications(load_papp(stem).cfg)
        frac = ", ".join(
            f"1/{paper_counts('wmmse', 4, 64, wm[x])['PaPP Table I real multiplications'] / mult:.0f}"
            for x in SNRS
        )
        print(
            f"| {label} | {mult:.3g} ({frac}) | "
            + " | ".join(f"{v:.4f}" for v in r)
            + f" | {sum(r) / len(r):.4f} |"
        )
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
