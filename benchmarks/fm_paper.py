"""Re-make the fm paper's deployment results on mimofm's held-out sites (Fig. 2, Fig. 3 analogues).

    python benchmarks/fm_paper.py [--out runs/fm_paper] [--checkpoint STEM] [--samples 1000]

Steps (each one's output is kept, so a killed run resumes where it stopped):

1. **adapt** every held-out bundled site: few-shot (10 local positions → the 5 most similar training
   datasets + the local samples → a new head) and full (a new head on every local train-split position);
2. **scratch**: an fm of the same size trained from scratch on the site's local train positions only,
   for as many steps as the full adaptation (the paper's comparison for full-shot);
3. **fig2**: maximum sum rate on the site's *test* positions over an SNR sweep, zero/few/full-shot and
   scratch against ZF, RZF, WMMSE and the DPC bound (paired samples) → ``fig2.json``, ``fig2.png``;
4. **fig3**: random rate requests (β = 0.2…0.8 of each sample's WMMSE sum rate) at 20 dB: fm's energy
   and per-user rate error against QoS power minimization and its greedy antenna switch-off at the
   same achieved rates → ``fig3.json``, ``fig3.png``;
5. ``summary.md``: the tables, with the targets of the fm issue, met or not.

Only train-split positions of a held-out site are ever used for adaptation; every number is measured
on its test split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mimofm._io import write_json
from mimofm.channels.bundled import bundled_dir
from mimofm.channels.catalog import BUNDLED_HELDOUT
from mimofm.evaluation.evaluate import EvalConfig, load_sets
from mimofm.reports.fm_paper import SNRS, plot_fig2, plot_fig3, summary, table1_md, table2_md

CLASSICAL = ["zf", "rzf", "wmmse", "dpc"]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def adapt_all(out: Path, sites, checkpoint: str | None, steps: int) -> dict[str, dict[str, str]]:
    """``{site: {"few": stem, "full": stem}}`` (trained once, then reused)."""
    from mimofm.adaptation.fm import adapt_fm

    stems = {}
    for cs in sites:
        stems[cs.name] = {}
        for label, shots in (("few", 10), ("full", "full")):
            d = out / "adapt" / f"{cs.name}-{label}"
            if not (d / "done").exists():
                _log(f"adapt {cs.name} {label}")
                t0 = time.perf_counter()
                res = adapt_fm(
                    cs, shots, checkpoint=checkpoint, steps=steps, out_dir=str(d), progress=False, log=_log
                )
                write_json(d / "done", {"seconds": time.perf_counter() - t0, "similar": res["similar"]})
            stems[cs.name][label] = str(d / "last")
    return stems


def scratch_all(out: Path, files: dict[str, str], steps: int, model: dict) -> dict[str, str]:
    """An fm trained from scratch on each site's local train positions (max-sum-rate phase only)."""
    from mimofm.training.fm_recipe import FMRecipe
    from mimofm.training.trainer import TrainConfig, train

    stems = {}
    for name, f in files.items():
        d = out / "scratch" / name
        if not (d / "done").exists():
            _log(f"scratch {name}")
            t0 = time.perf_counter()
            rec = FMRecipe(
                sites=[f], model=model, pretrain_steps=steps, batch_per_dataset=64, default_batch=128
            )
            train(
                rec,
                TrainConfig(steps=steps, lr=1e-3, warmup=30, ckpt_every=max(1, steps // 4), out_dir=str(d)),
                progress=False,
            )
            write_json(d / "done", {"seconds": time.perf_counter() - t0})
        stems[name] = str(d / "last")
    return stems


def fig2(out: Path, sites, variants: dict[str, dict[str, str | None]], samples: int) -> dict:
    from mimofm.evaluation.evaluate import compare_checkpoints

    path = out / "fig2.json"
    stored = json.loads(path.read_text()) if path.exists() else None  # one without these rows is re-made
    if stored is not None and any(r["precoder"].startswith("fm-refined-") for r in stored["results"]):
        return stored
    cfg = EvalConfig(precoders=CLASSICAL, snr_db=SNRS, samples=samples, positions="test")
    doc = compare_checkpoints(
        sites, CLASSICAL, "fm", variants, cfg, progress=lambda s: _log(f"fig2 {s}"), also=("fm-refined",)
    )
    write_json(path, doc)
    return doc


def fig3(out: Path, sites, variants: dict[str, dict[str, str | None]], samples: int, greedy: int) -> dict:
    from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff
    from mimofm.models.zoo import load_fm

    path = out / "fig3.json"
    if path.exists():
        return json.loads(path.read_text())
    rows = []
    cfg = TradeoffConfig(snr_db=[20.0], samples=samples, greedy_samples=greedy, positions="test")
    for cs in sites:
        for label, stems in variants.items():
            _log(f"fig3 {cs.name} {label}")
            res = evaluate_tradeoff([cs], cfg, load_fm(stems[cs.name]))
            for r in res["results"]:
                r["model"] = label
            rows += res["results"]
    doc = {"config": res["config"], "results": rows, "machine": res["machine"]}
    write_json(path, doc)
    return doc


TABLE1_SITES = ("munich-a", "sf-a", "canyon")


def table1(out: Path, steps: int, model: dict, samples: int = 200) -> dict:
    """Single-dataset models (one training site's LOS or NLOS users) deployed on every dataset's test users.

    Training sites of the catalog (train positions for training, test positions for the table), not the
    held-out sites: the table is about how far one dataset's model travels, as in the paper's Table I.
    """
    import torch

    from mimofm.core.rates import user_rates
    from mimofm.models.zoo import load_fm
    from mimofm.precoders.wmmse import wmmse
    from mimofm.training.fm_recipe import FMRecipe, draw_samples, load_datasets
    from mimofm.training.recipes import site_dir
    from mimofm.training.trainer import TrainConfig, train

    path = out / "table1.json"
    if path.exists():
        return json.loads(path.read_text())
    files = [str(site_dir() / f"{n}.h5") for n in TABLE1_SITES]
    tests = load_datasets(files, 4, split_code=2)
    names = [d.name for d in tests]
    stems = {}
    for f in files:
        for mix in ("los", "nlos"):
            name = f"{Path(f).stem}/{mix}"
            if name not in names:
                continue
            d = out / "table1" / name.replace("/", "-")
            if not (d / "done").exists():
                _log(f"table1 train {name}")
                rec = FMRecipe(
                    sites=[f],
                    model=model,
                    mixes=[mix],
                    pretrain_steps=steps,
                    batch_per_dataset=64,
                    default_batch=64,
                )
                train(
                    rec,
                    TrainConfig(steps=steps, lr=1e-3, warmup=30, ckpt_every=steps, out_dir=str(d)),
                    progress=False,
                )
                write_json(d / "done", {})
            stems[name] = str(d / "last")
    hs = {d.name: draw_samples(d, samples, 4, 77, 20.0) for d in tests}
    ref = {n: float(wmmse(h).sum_rate.mean()) for n, h in hs.items()}
    rows = []
    models = {**{f"single:{n}": s for n, s in stems.items()}, "foundation (default head)": None}
    with torch.no_grad():
        for label, stem in models.items():
            m = load_fm(stem)
            for n, h in hs.items():
                rows.append(
                    {
                        "model": label,
                        "dataset": n,
                        "ratio_to_wmmse": float(user_rates(h, m(h).w).sum(-1).mean()) / ref[n],
                    }
                )
    doc = {"snr_db": 20.0, "samples": samples, "datasets": names, "rows": rows}
    write_json(path, doc)
    return doc


def table2(out: Path) -> dict:
    """Complexity at 4 users × 64 antennas: the paper's FLOP formulas, measured FLOPs, time per precoder."""
    from mimofm.evaluation.complexity import complexity

    path = out / "table2.json"
    if path.exists():
        return json.loads(path.read_text())
    reps = []
    for name in ("zf", "rzf", "wmmse", "wmmse-antenna", "fm"):
        _log(f"table2 {name}")
        batches = (1, 16) if name == "wmmse-antenna" else (1, 1024)
        reps.append(complexity(name, 4, 64, batch_sizes=batches, repeats=5).to_dict())
    doc = {"reports": reps}
    write_json(path, doc)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/fm_paper")
    ap.add_argument("--checkpoint", default=None, help="pretrained fm (default: the shipped one)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--tradeoff-samples", type=int, default=300)
    ap.add_argument("--greedy-samples", type=int, default=10)
    ap.add_argument("--adapt-steps", type=int, default=300)
    ap.add_argument("--scratch-steps", type=int, default=300)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {n: str(bundled_dir() / f"{n}.h5") for n in BUNDLED_HELDOUT}
    sites = load_sets(list(files.values()))
    adapted = adapt_all(out, sites, args.checkpoint, args.adapt_steps)
    from mimofm.models.zoo import load_fm

    arch = load_fm(args.checkpoint).cfg.to_dict()
    model = {k: v for k, v in arch.items() if k not in ("num_bs_ant", "num_output_heads")}
    scratch = scratch_all(out, files, args.scratch_steps, model)
    zero = {cs.name: args.checkpoint for cs in sites}
    variants = {
        "zero": zero,
        "few": {n: s["few"] for n, s in adapted.items()},
        "full": {n: s["full"] for n, s in adapted.items()},
    }
    f2 = fig2(out, sites, {**variants, "scratch": scratch}, args.samples)
    plot_fig2(f2, out / "fig2.png")
    f3 = fig3(out, sites, variants, args.tradeoff_samples, args.greedy_samples)
    plot_fig3(f3, out / "fig3.png")
    t2 = table2(out)
    t1 = table1(out, args.scratch_steps, model)
    (out / "summary.md").write_text(summary(f2, f3) + "\n" + "\n".join(table1_md(t1) + table2_md(t2)))
    _log(f"wrote {out / 'summary.md'}, {out / 'fig2.png'}, {out / 'fig3.png'}")


if __name__ == "__main__":
    main()
