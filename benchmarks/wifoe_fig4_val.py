"""wifoe Fig. 4 analogue with the fine-tuning length chosen on validation data, not fixed.

    python benchmarks/wifoe_fig4_val.py train [--shard i/n] [--steps 6000] [--val 0.1] [--seeds 0 1]
    python benchmarks/wifoe_fig4_val.py report [--fig-dir docs/figures]

``benchmarks/wifoe_paper.py`` fine-tunes every Fig. 4 run for a fixed 2000 steps, and a probe
(``benchmarks/wifoe_ft_steps.py``) showed those runs far from trained. Here each run may take up to
``--steps`` steps, holds ``--val`` of its sample budget out (on task positions the training samples never
use), evaluates on it every ``steps/20`` steps and keeps the best weights
(``finetune_wifoe(..., val_fraction=...)``): the step count is chosen on the budget's own data, never on
the test drops. Strategies: the frozen pretrained trunk and a frozen random trunk at every budget, STL
(the whole model from scratch) at ``--stl-budgets`` (the "within 1% of STL at 2000 samples" target).
The report measures each kept model on the task's test drops as ``benchmarks/wifoe_paper.py`` does
(``--samples`` per user count K = 3..8, at the pretrained checkpoint's operating point: its recipe's
``eval_snr_db``, convention and pilot rule — 10 dB with full-energy pilots for the historical checkpoint) and averages over ``--seeds`` (each seed draws its own
budget samples, batches and initial branch). Finished runs are kept, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mimofm._io import write_json
from mimofm.reports.wifoe_paper import BUDGETS, UNSEEN
from wifoe_paper import parse_run_options  # the sibling script (benchmarks/ is this script's sys.path[0])


def jobs(stl_budgets: list[int], seeds: list[int]) -> list[tuple[str, str, int, int]]:
    """``(task, strategy, budget, seed)`` of every run: per seed, the frozen-trunk runs, then the slow
    whole-model (STL) ones."""
    out = []
    for seed in seeds:
        out += [(t, s, b, seed) for t in UNSEEN for s in ("pretrained", "random") for b in BUDGETS]
        out += [(t, "train", b, seed) for t in UNSEEN for b in stl_budgets]
    return out


def run_dir(out: Path, task: str, trunk: str, budget: int, seed: int) -> Path:
    return out / task / trunk / f"{budget}-s{seed}"


def finished(d: Path, args) -> bool:
    """Whether the run in ``d`` is done — with this invocation's ``--steps`` and ``--val`` (else an error:
    other settings need another ``--out``)."""
    if not (d / "done").exists():
        return False
    cfg = json.loads((d / "last.json").read_text())["config"]
    if (cfg["train"]["steps"], cfg["recipe"]["val_fraction"]) != (args.steps, args.val):
        raise SystemExit(
            f"{d} was run with --steps {cfg['train']['steps']} --val {cfg['recipe']['val_fraction']}; "
            "use another --out for other settings"
        )
    return True


def main() -> None:
    from mimofm.adaptation.wifoe import finetune_wifoe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["train", "report"])
    ap.add_argument(
        "--out",
        default="runs/wifoe_paper/fig4_val",
        help="results folder (the default, inside wifoe_paper.py's, is what `mimofm report` reads)",
    )
    ap.add_argument("--steps", type=int, default=6000, help="most fine-tuning steps per run")
    ap.add_argument("--val", type=float, default=0.1, help="share of each budget held out for validation")
    ap.add_argument("--stl-budgets", type=int, nargs="*", default=[2000])
    ap.add_argument(
        "--checkpoint", default=None, help="pretrained wifoe checkpoint stem (default: the shipped one)"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1],
        help="seeds per run (each draws its own budget samples, batches and initial branch)",
    )
    args = parse_run_options(ap)
    out = Path(args.out)
    if args.phase == "train":
        i, n = map(int, args.shard.split("/"))
        for task, trunk, budget, seed in jobs(args.stl_budgets, args.seeds)[i::n]:
            d = run_dir(out, task, trunk, budget, seed)
            if finished(d, args):
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {task} {trunk} {budget} seed {seed}", flush=True)
            t0 = time.perf_counter()
            res = finetune_wifoe(
                task,
                budget,
                trunk=trunk,
                steps=args.steps,
                val_fraction=args.val,
                seed=seed,
                out_dir=str(d),
                progress=False,
                checkpoint=args.checkpoint,
            )
            write_json(
                d / "done", {"seconds": time.perf_counter() - t0, "best_step": res["metrics"]["best_step"]}
            )
        return
    report(out, args)


def report(out: Path, args) -> None:
    """Test-drop rate of every finished run's kept weights (cached per run in ``rates.json``), then
    ``fig4.json`` (rates: mean over the seeds; per_seed, best_steps and seconds: one entry per seed), the
    table and the plot."""
    from mimofm.adaptation.wifoe import checkpoint_recipe
    from mimofm.channels.tr38901 import get_task
    from mimofm.evaluation.wifoe_eval import classical_rates, task_draws, wifoe_rate
    from mimofm.models.zoo import load_wifoe, shipped_checkpoint
    from mimofm.reports.wifoe_paper import fig4_val_markdown, fig4_val_title, plot_fig4
    from mimofm.training.wifoe_recipe import WiFoERecipe

    rec = checkpoint_recipe(args.checkpoint or str(shipped_checkpoint("wifoe")))
    point = WiFoERecipe(
        **{
            k: rec[k]
            for k in ("snr_convention", "pilot_snr_db", "pilot_snr_offset_db", "eval_snr_db")
            if k in rec
        }
    )
    snr, conv = point.eval_snr_db, point.snr_convention
    op = point.operating_point(snr)
    path = out / "rates.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    doc: dict = {
        "snr_db": snr,
        "operating_point": op.to_dict(),
        "budgets": BUDGETS,
        "max_steps": args.steps,
        "val_fraction": args.val,
        "samples_per_k": args.samples,
        "seeds": args.seeds,
        "rates": {},
        "per_seed": {},
        "best_steps": {},
        "seconds": {},
    }
    missing = []
    for task, trunk, budget, seed in jobs(args.stl_budgets, args.seeds):
        d, key = run_dir(out, task, trunk, budget, seed), f"{task}/{trunk}/{budget}/s{seed}"
        if not finished(d, args):
            missing.append(key)
            continue
        if key not in cache:
            cache[key] = wifoe_rate(
                load_wifoe(str(d / "best")),
                task,
                task_draws(task, snr, args.samples, convention=conv),
                pilot_energy=op.pilot_energy(get_task(task).num_bs_ant),
            )
            write_json(path, cache)
        done = json.loads((d / "done").read_text())
        for field, value in (
            ("per_seed", cache[key]),
            ("best_steps", done["best_step"]),
            ("seconds", done["seconds"]),
        ):
            doc[field].setdefault(task, {}).setdefault(trunk, {}).setdefault(str(budget), []).append(value)
    if missing:
        print("\n".join(f"{k}: {v:.3f}" for k, v in cache.items()))
        raise SystemExit(f"{len(missing)} runs not finished ({', '.join(missing)}); train them first")
    for task, per in doc["per_seed"].items():
        doc["rates"][task] = {s: {b: sum(v) / len(v) for b, v in runs.items()} for s, runs in per.items()}
        doc["rates"][task]["wmmse"] = classical_rates(task, snr, args.samples, convention=conv)["wmmse"]
    write_json(out / "fig4.json", doc)
    plot_fig4(doc, Path(args.fig_dir) / "wifoe_fig4_val.png", fig4_val_title(doc))
    text = fig4_val_markdown(doc)
    (out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
