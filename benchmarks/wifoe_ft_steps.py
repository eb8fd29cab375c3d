"""How long a new wifoe branch must train: frozen pretrained vs frozen random trunk (and STL) by step count.

    python benchmarks/wifoe_ft_steps.py [--out runs/wifoe_ft_steps] [--steps 2000 6000] [--budget 2000]
                                        [--tasks T10 T11 T12] [--stl-tasks T12] [--samples 1000]

For each unseen task and step count: `finetune_wifoe(task, budget, trunk=..., steps=...)` on the shipped
checkpoint with a frozen pretrained trunk and with a frozen random one (and, for ``--stl-tasks``, the whole
model from scratch), then the end-to-end sum rate at 10 dB on the task's test drops, exactly as
``mimofm eval --precoder wifoe --task T --checkpoint RUN/last --snr-db 10`` computes it. One seed; a probe of
the fine-tuning length behind Fig. 4 (``benchmarks/wifoe_paper.py --ft-steps``), not a tuning of it: the
numbers are test-drop numbers. Finished runs are kept, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mimofm._io import write_json


def _rate(stem: str, task: str, samples: int) -> float:
    from mimofm.evaluation.wifoe_eval import checkpoint_positions, evaluate_wifoe
    from mimofm.models.zoo import load_wifoe

    return evaluate_wifoe(
        load_wifoe(stem), [task], [10.0], samples=samples, positions=checkpoint_positions(stem)
    )[0]["rate"]


def main() -> None:
    from mimofm.adaptation.wifoe import finetune_wifoe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/wifoe_ft_steps")
    ap.add_argument("--steps", type=int, nargs="+", default=[2000, 6000])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--tasks", nargs="+", default=["T10", "T11", "T12"])
    ap.add_argument("--stl-tasks", nargs="*", default=["T12"])
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    out = Path(args.out)
    path = out / "rates.json"
    rates = json.loads(path.read_text()) if path.exists() else {}
    for task in args.tasks:
        for trunk in ["pretrained", "random"] + (["train"] if task in args.stl_tasks else []):
            for steps in args.steps:
                key = f"{task}/{trunk}/{steps}"
                if key in rates:
                    continue
                d = out / task / trunk / str(steps)
                done = (d / "last.json").exists() and json.loads((d / "last.json").read_text())[
                    "step"
                ] >= steps
                if not done:
                    print(f"{key}: fine-tune on {args.budget} samples", flush=True)
                    finetune_wifoe(
                        task, args.budget, trunk=trunk, steps=steps, seed=0, out_dir=str(d), progress=False
                    )
                rates[key] = _rate(str(d / "last"), task, args.samples)
                write_json(path, rates)
    print("| task | strategy | " + " | ".join(f"{s} steps" for s in args.steps) + " |")
    print("|---|---|" + "---|" * len(args.steps))
    for task in args.tasks:
        for trunk in ["pretrained", "random", "train"]:
            if f"{task}/{trunk}/{args.steps[0]}" in rates:
                print(
                    f"| {task} | {trunk} | "
                    + " | ".join(f"{rates[f'{task}/{trunk}/{s}']:.2f}" for s in args.steps)
                    + " |"
                )


if __name__ == "__main__":
    main()
