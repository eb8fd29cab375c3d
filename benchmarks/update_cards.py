"""Write the held-out numbers of the benchmarks into the shipped checkpoint cards (run it deliberately).

    python benchmarks/update_cards.py --eval runs/bench_eval.json --eval-command "mimofm eval ..."
    python benchmarks/update_cards.py --wifoe-paper runs/wifoe_paper [--wifoe-paper-command "..."]

``--eval``: each shipped neural precoder's sum rate ÷ WMMSE per held-out site and SNR from a
``mimofm eval`` result (fm and the papp checkpoints); ``--wifoe-paper``: the MTL model's test-drop rates
(Table II analogue) of ``benchmarks/wifoe_paper.py``, refused for the calibrated checkpoint (measured at
its own point by ``benchmarks/wifoe_operating_point.py``). This is the only place that writes into
``src/mimofm/assets``; nothing in ``src`` does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mimofm._io import write_json
from mimofm.models.zoo import PAPP_CHECKPOINTS, shipped_checkpoint


def update_cards(q: dict, command: str) -> list[Path]:
    """Each shipped neural precoder's held-out numbers from the quality run ``q`` into its JSON card."""
    rows = q["results"]
    w = {(r["site"], r["snr_db"]): r["sum_rate_mean"] for r in rows if r["precoder"] == "wmmse"}
    written = []
    for name in ("fm", *PAPP_CHECKPOINTS):
        mine = [r for r in rows if r["precoder"] == name]
        card_path = shipped_checkpoint(name).with_suffix(".json")
        if not mine or not card_path.exists():
            continue
        card = json.loads(card_path.read_text())
        ratios = {
            f"{r['site']}@{r['snr_db']:g}dB": r["sum_rate_mean"] / w[(r["site"], r["snr_db"])] for r in mine
        }
        card["heldout_metrics"] = {
            "command": command,
            "positions": q["config"]["positions"],
            "samples": q["config"]["samples"],
            "sum_rate_ratio_to_wmmse": ratios,
            "mean_ratio_to_wmmse": sum(ratios.values()) / len(ratios),
        }
        write_json(card_path, card)
        written.append(card_path)
    return written


def update_wifoe_card(folder: Path, command: str) -> Path:
    """The shipped wifoe card gets the MTL model's test-drop rates (Table II analogue) from the benchmark."""
    card_path = shipped_checkpoint("wifoe").with_suffix(".json")
    t2 = json.loads((folder / "table2_fig3.json").read_text())
    card = json.loads(card_path.read_text())
    if (
        "operating_point" in card
    ):  # the shipped model is measured at its own point by wifoe_operating_point.py
        raise SystemExit(
            "--wifoe-paper: the shipped wifoe is the calibrated checkpoint; "
            "benchmarks/wifoe_paper.py measures the historical point, not it"
        )
    rows = dict(t2["rates"].items())
    card["heldout_metrics"] = {
        "command": command,
        "split": "test drops of each task",
        "samples_per_k": "see the command",
        "sum_rate_bits": {k: v["mtl"] for k, v in rows.items()},
        "ratio_to_wmmse": {k: v["mtl"] / v["wmmse"] for k, v in rows.items()},
        "mean_ratio_to_wmmse@10dB": sum(v["mtl"] / v["wmmse"] for k, v in rows.items() if k.endswith("@10"))
        / sum(1 for k in rows if k.endswith("@10")),
    }
    write_json(card_path, card)
    return card_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=None, help="JSON of mimofm eval on the held-out sites")
    ap.add_argument("--eval-command", default="", help="the command that made --eval (kept in the cards)")
    ap.add_argument(
        "--wifoe-paper", type=Path, default=None, help="output folder of benchmarks/wifoe_paper.py"
    )
    ap.add_argument(
        "--wifoe-paper-command",
        default="python benchmarks/wifoe_paper.py train --shard i/2 (i = 0, 1); "
        "python benchmarks/wifoe_paper.py report",
    )
    a = ap.parse_args()
    if a.eval is None and a.wifoe_paper is None:
        ap.error("give --eval and/or --wifoe-paper")
    written = []
    if a.eval is not None:
        written += update_cards(json.loads(a.eval.read_text()), a.eval_command)
    if a.wifoe_paper is not None:
        written.append(update_wifoe_card(a.wifoe_paper, a.wifoe_paper_command))
    for p in written:
        print(f"updated {p}")


if __name__ == "__main__":
    main()
