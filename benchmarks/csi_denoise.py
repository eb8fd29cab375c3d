"""Choose the beamspace denoiser's threshold on the validation sites (never on held-out data).

    python benchmarks/csi_denoise.py [--out runs/csi_denoise.json] [--sites munich-val,sf-val]

For each validation site (all positions, per-user unit-normalized channels), each estimation NMSE and
each threshold: the NMSE of the denoised estimate (dB). The threshold with the lowest NMSE averaged over
sites and NMSE levels is printed; ``mimofm.channels.denoise.THRESHOLD`` records the choice. The sites come
from the site cache (``mimofm data raytrace --split val`` makes them).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from mimofm._io import write_json
from mimofm.channels.denoise import array_shape, beamspace_denoise
from mimofm.channels.io import load_channels
from mimofm.channels.sampling import imperfect_csi
from mimofm.training.recipes import site_dir

NMSES = (-5.0, -10.0, -15.0, -20.0)
THRESHOLDS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


def nmse_db(est: torch.Tensor, h: torch.Tensor) -> float:
    return 10 * math.log10(float(((est - h).abs().square().sum(-1) / h.abs().square().sum(-1)).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/csi_denoise.json")
    ap.add_argument("--sites", default="munich-val,sf-val")
    args = ap.parse_args()
    rows = []
    for name in args.sites.split(","):
        cs = load_channels(site_dir() / f"{name}.h5")
        r, c = array_shape(cs.meta, cs.num_bs_ant)
        h = cs.h.to(torch.complex128)[:, None, :]  # [P, 1, N]: each position one user
        for nmse in NMSES:
            est = imperfect_csi(h, nmse, seed=1)
            for t in THRESHOLDS:
                out = nmse_db(beamspace_denoise(est, r, c, nmse, threshold=t), h)
                rows.append({"site": name, "nmse_db": nmse, "threshold": t, "denoised_nmse_db": out})
                print(f"{name:10s} NMSE {nmse:6.1f} dB  threshold {t:5.1f}  ->  {out:7.2f} dB", flush=True)
    mean = {
        t: float(np.mean([x["denoised_nmse_db"] for x in rows if x["threshold"] == t])) for t in THRESHOLDS
    }
    best = min(mean, key=mean.get)
    print("mean over sites and NMSE levels (dB):", {t: round(v, 2) for t, v in mean.items()}, "-> best", best)
    write_json(
        args.out, {"sites": args.sites.split(","), "rows": rows, "mean_by_threshold": mean, "best": best}
    )


if __name__ == "__main__":
    main()
