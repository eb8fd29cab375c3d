"""papp on the held-out sites: zero-shot vs DeepAll vs fine-tuned with a budget of local samples.

    python benchmarks/papp_paper.py [--out runs/papp_paper] [--samples 1000]

1. **deepall**: papp trained with the shipped recipe but without MLDG (`--set papp.mldg=false`), same budget;
2. **scratch**: a papp of the same size trained on one held-out site's train positions alone (same recipe
   and budget, no MLDG), for each held-out site;
3. **finetune**: the shipped papp fine-tuned on 10, 20, 40, 100 local train-split positions and on all of
   them (`mimofm adapt papp`: user permutation and per-user phase augmentation), for each held-out site and
   three seeds (three draws of the local positions; the tables show the mean over seeds);
4. **eval**: test positions, 0–40 dB (papp is trained on 0–30 dB), paired samples: ZF, WMMSE, papp
   zero-shot, DeepAll, fine-tuned (and papp-lite zero-shot when shipped), each also with the sum-rate refinement;
5. ``summary.md``: ratios to WMMSE and the few-shot recovery ``(FT_n − zero)/(FT_full − zero)``;
   ``papp_ratios.png`` (the Fig. 2 analogue: sum rate and ÷ WMMSE vs SNR) and ``papp_csi.png`` in ``--fig-dir``.

Each step's output is kept, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mimofm._io import write_json
from mimofm.channels.bundled import bundled_dir
from mimofm.channels.catalog import BUNDLED_HELDOUT
from mimofm.evaluation.evaluate import EvalConfig, load_sets
from mimofm.reports.papp_paper import (
    CSI_NMSES,
    CSI_SNR,
    HYBRID,
    SHOTS,
    SNRS,
    csi_md,
    hybrid_md,
    plot_csi,
    plot_ratios,
    seed_mean,
    summary,
    table1_md,
)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _train_without_mldg(d: Path, what: str, *overrides: str) -> str:
    """``recipes/papp.yaml`` without MLDG (and ``overrides``) into ``d``, unless a finished run is there;
    an unfinished one is resumed. Returns the checkpoint stem."""
    if not (d / "last.json").exists() or json.loads((d / "last.json").read_text())["step"] < 3000:
        _log(what)
        sets = [a for o in overrides for a in ("--set", o)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mimofm.cli.main",
                "train",
                "papp",
                "--recipe",
                "recipes/papp.yaml",
                *sets,
                "--set",
                "papp.mldg=false",
                "--out-dir",
                str(d),
            ],
            check=True,
        )
    return str(d / "last")


def deepall(out: Path) -> str:
    return _train_without_mldg(out / "deepall", "deepall: papp without MLDG")


def scratch(out: Path, sites) -> dict[str, str]:
    """A papp of the same size trained from scratch on each held-out site's local train positions alone
    (the shipped recipe and budget, one site, no MLDG): the papers' single-site baseline."""
    return {
        cs.name: _train_without_mldg(
            out / "scratch" / cs.name,
            f"scratch: papp on {cs.name}'s train positions",
            f"papp.sites=['{bundled_dir() / f'{cs.name}.h5'}']",
        )
        for cs in sites
    }


FT_SEEDS = (0, 1, 2)  # each a different draw of the local positions: the few-shot curve is a mean over them
FT_MARK = {
    "phase_augment": True,
    "lr": 1e-3,
}  # the settings runs are made with; a stored run made otherwise is re-made


def finetune(out: Path, sites) -> dict[str, dict[str, str]]:
    """``{f"ft-{n}-s{seed}": {site: stem}}``: `mimofm adapt papp` with ``FT_MARK``, each budget and seed."""
    from mimofm.adaptation.papp import finetune_papp

    stems: dict[str, dict[str, str]] = {}
    for cs in sites:
        for n in SHOTS:
            for seed in FT_SEEDS:
                d = out / "finetune" / f"{cs.name}-{n}-s{seed}"
                done = d / "done"
                if not done.exists() or json.loads(done.read_text()) != FT_MARK:
                    _log(f"fine-tune {cs.name} on {n} local positions (seed {seed})")
                    finetune_papp(cs, n, out_dir=str(d), progress=False, fresh=True, seed=seed, **FT_MARK)
                    write_json(done, FT_MARK)
                stems.setdefault(f"ft-{n}-s{seed}", {})[cs.name] = str(d / "last")
    return stems


def evaluate(out: Path, sites, variants: dict[str, dict[str, str | None]], samples: int) -> dict:
    from mimofm.evaluation.evaluate import compare_checkpoints

    path = out / "eval.json"
    stored = json.loads(path.read_text()) if path.exists() else None  # one without these rows is re-made
    want = {f"papp-{v}" for v in variants} | {f"papp-refined-{v}" for v in variants}
    if stored is not None:
        rows = stored["results"] + stored.get("per_seed", [])
        if want <= {r["precoder"] for r in rows} and set(SNRS) <= {r["snr_db"] for r in rows}:
            return stored
    cfg = EvalConfig(precoders=["zf", "wmmse"], snr_db=SNRS, samples=samples, positions="test")
    doc = seed_mean(
        compare_checkpoints(
            sites,
            ["zf", "wmmse"],
            "papp",
            variants,
            cfg,
            progress=lambda s: _log(f"eval {s}"),
            also=("papp-refined",),
        )
    )
    write_json(path, doc)
    return doc


def _shipped(name: str) -> list[str]:
    from mimofm.models.zoo import shipped_checkpoint

    return [name] if shipped_checkpoint(name).with_suffix(".json").exists() else []


def csi(out: Path, sites, samples: int) -> dict:
    """Sum rate vs channel-estimation NMSE at one SNR: every precoder sees H + E, rates on H; ``+dn``: the
    estimate denoised in the array's angular domain first (``csi.json``)."""
    from mimofm.evaluation.evaluate import evaluate_sets

    path = out / "csi.json"
    stored = json.loads(path.read_text()) if path.exists() else None  # one without these rows is re-made
    if stored is not None and any(r["precoder"] == "papp-refined+dn" for r in stored["results"]):
        return stored
    rows = []
    for nmse in CSI_NMSES:
        _log(f"csi {nmse} dB")
        cfg = EvalConfig(
            precoders=["zf", "wmmse", "papp"] + _shipped("papp-csi") + ["papp-refined", "rzf-refined"],
            snr_db=[CSI_SNR],
            samples=samples,
            positions="test",
            csi_nmse_db=nmse,
        )
        for r in evaluate_sets(sites, cfg)["results"]:
            rows.append({**r, "csi_nmse_db": nmse})
        # the same estimates through the beamspace denoiser (mimofm.channels.denoise) before every precoder
        cfg = EvalConfig(
            precoders=["zf", "wmmse", "papp", "papp-refined"],
            snr_db=[CSI_SNR],
            samples=samples,
            positions="test",
            csi_nmse_db=nmse,
            csi_denoise=True,
        )
        for r in evaluate_sets(sites, cfg)["results"]:
            rows.append({**r, "precoder": r["precoder"] + "+dn", "csi_nmse_db": nmse})
    doc = {"snr_db": CSI_SNR, "results": rows}
    write_json(path, doc)
    return doc


def hybrid(out: Path, sites, samples: int) -> dict:
    """papp-hbf (8 RF chains) vs the classical phase-extraction hybrid with 4 and 8 RF chains (``hybrid.json``)."""
    from mimofm.evaluation.evaluate import evaluate_sets

    path = out / "hybrid.json"
    if path.exists():
        return json.loads(path.read_text())
    _log("hybrid")
    hbf = ["papp-hbf-4", "papp-hbf"] if _shipped("papp-hbf") else []
    cfg = EvalConfig(precoders=HYBRID + hbf, snr_db=SNRS, samples=samples, positions="test")
    doc = evaluate_sets(sites, cfg)
    write_json(path, doc)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/papp_paper")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument(
        "--fig-dir", default="docs/figures", help="where papp_ratios.png and papp_csi.png are written"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sites = load_sets([str(bundled_dir() / f"{n}.h5") for n in BUNDLED_HELDOUT])
    da = deepall(out)
    ft = finetune(out, sites)
    sc = scratch(out, sites)
    variants = {
        "zero": {cs.name: None for cs in sites},
        "deepall": {cs.name: da for cs in sites},
        "scratch": sc,
        **ft,
    }
    if _shipped("papp-lite"):  # the smaller extractor + student, zero-shot
        from mimofm.models.zoo import shipped_checkpoint

        variants["lite"] = {cs.name: str(shipped_checkpoint("papp-lite")) for cs in sites}
    doc = evaluate(out, sites, variants, args.samples)
    c = csi(out, sites, args.samples // 2)
    text = summary(doc) + "\n" + table1_md(doc) + "\n" + csi_md(c)
    text += "\n" + hybrid_md(hybrid(out, sites, args.samples // 2))
    (out / "summary.md").write_text(text)
    plot_ratios(doc, Path(args.fig_dir) / "papp_ratios.png")
    plot_csi(c, Path(args.fig_dir) / "papp_csi.png")
    _log(f"wrote {out / 'summary.md'}")


if __name__ == "__main__":
    main()
