"""Choose the sum-rate refinement's steps and step size on the validation sites (never on held-out data).

    python benchmarks/structure_refine.py [--out runs/structure_refine.json] [--samples 300]

For the shipped papp and fm (default head) on munich-val and sf-val (all positions, seed 3): the sum rate
÷ WMMSE at 0/10/20/30 dB of the network's structured precoder after ``steps`` Adam steps of size ``lr``
on its ``(λ, p)`` (:func:`mimofm.precoders.refine.refine_structure`), and from the RZF start
``λ = p = 1/K`` with 5/10/20 steps of 0.3 (what the network's start is worth). ``REFINE_STEPS``/``REFINE_LR``
in ``mimofm.precoders.refine`` record the choice: the fewest steps within 0.1% of the best mean.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mimofm._io import write_json
from mimofm.core.rates import rates_from_hw
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets, load_sets
from mimofm.models.zoo import load_fm, load_papp
from mimofm.precoders.refine import refine_structure
from mimofm.precoders.registry import CLASSICAL, PrecoderOutput, PrecoderSpec, register_precoder
from mimofm.precoders.structured import structured_precoder
from mimofm.training.recipes import site_dir

GRID = [(5, 0.3), (10, 0.1), (10, 0.3), (10, 1.0), (20, 0.3), (40, 0.3)]


def _structure(family: str):
    """``h -> (λ, p)`` of the shipped network's structured output (fm: default head, no requests)."""
    if family == "papp":
        model = load_papp(None, shipped="papp")

        def papp_structure(h):
            feats, _ = model.extractor(h)
            return model.student.structure(feats, h)

        return papp_structure
    model = load_fm(None)

    def fm_structure(h):
        feats = model.extractor(h, torch.log1p(torch.full(h.shape[:-1], 1e3)))
        return model.heads[model.default_head].structure(feats)

    return fm_structure


def _spec(name: str, structure, steps: int, lr: float, start: str) -> PrecoderSpec:
    def run(h: torch.Tensor) -> PrecoderOutput:
        with torch.no_grad():
            lam, p = structure(h.to(torch.complex64))
        if start == "rzf":
            lam, p = torch.full_like(lam, 1 / lam.shape[-1]), torch.full_like(p, 1 / p.shape[-1])
        lam, p = refine_structure(h, lam, p, steps, lr)
        w = structured_precoder(h, lam, p).to(torch.complex128)
        return PrecoderOutput(w=w, sum_rate=rates_from_hw(h.to(torch.complex128) @ w).sum(-1))

    return PrecoderSpec(name, "precoder", run, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/structure_refine.json")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--families", default="papp,fm")
    args = ap.parse_args()
    sites = load_sets([str(site_dir() / f"{s}.h5") for s in ("munich-val", "sf-val")])
    names, table = [], CLASSICAL  # the classical precoders plus this run's variants
    for fam in args.families.split(","):
        structure = _structure(fam)
        for steps, lr in [(0, 0.3)] + GRID:
            names.append(f"{fam}:net:{steps}:{lr:g}")
            table = register_precoder(table, _spec(names[-1], structure, steps, lr, "net"))
        for steps in (5, 10, 20):
            names.append(f"{fam}:rzf:{steps}:0.3")
            table = register_precoder(table, _spec(names[-1], structure, steps, 0.3, "rzf"))
    cfg = EvalConfig(
        precoders=["wmmse"] + names,
        snr_db=[0.0, 10.0, 20.0, 30.0],
        samples=args.samples,
        positions="all",
        seed=3,
    )
    t0 = time.time()
    res = evaluate_sets(sites, cfg, table=table)["results"]
    table = {}
    for r in res:
        if r["precoder"] != "wmmse":
            table.setdefault(r["precoder"], {}).setdefault(r["snr_db"], []).append(r["ratio_to_wmmse"])
    out = {}
    for name, by_snr in table.items():
        ratios = [float(np.mean(by_snr[s])) for s in sorted(by_snr)]
        out[name] = {"ratio_by_snr": ratios, "mean": float(np.mean(ratios))}
        print(
            f"{name:22s}", " ".join(f"{x:.4f}" for x in ratios), f"mean {out[name]['mean']:.4f}", flush=True
        )
    print(f"{time.time() - t0:.0f} s")
    write_json(
        args.out, {"sites": ["munich-val", "sf-val"], "samples": args.samples, "grid": GRID, "results": out}
    )


if __name__ == "__main__":
    main()
