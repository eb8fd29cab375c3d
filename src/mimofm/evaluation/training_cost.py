"""Training cost of the shipped checkpoints, read from their cards: steps, channel samples, wall-clock,
hardware, the command that produced them and the quality they reached.

Every number comes from the card the training command wrote (``meta.seconds`` is the loop's own clock
at its last checkpoint; ``shipped.hardware`` is what ``--ship-as`` recorded). ``samples_per_step`` is in
the card of every run since the loop recorded it; for checkpoints written before, it is recomputed from
the saved recipe exactly as the recipe's ``samples_per_step`` computes it (marked ``derived``).
"""

from __future__ import annotations

import json
from pathlib import Path

from mimofm.models.zoo import PAPP_CHECKPOINTS, shipped_checkpoint

__all__ = ["SHIPPED", "training_cost"]

SHIPPED = ("fm", *PAPP_CHECKPOINTS, "wifoe")


def _derived_samples_per_step(card: dict) -> int | None:
    """The recipes' ``samples_per_step`` from a card's saved config (cards written before it was recorded)."""
    r = card["config"]["recipe"]
    world = int(card["meta"].get("world_size", 1))
    if "batch_per_dataset" in r:  # fm: one batch per (site, LOS/NLOS) dataset = head, plus the default head's
        heads = (card["meta"].get("architecture") or {}).get("num_output_heads")
        return None if heads is None else world * (r["batch_per_dataset"] * (heads - 1) + r["default_batch"])
    if "batch_per_domain" in r:  # papp
        return world * r["domains_per_step"] * r["batch_per_domain"]
    if "batch_per_task" in r:  # wifoe
        return world * r["batch_per_task"] * len(r["tasks"])
    return None


def _quality(card: dict) -> str:
    h = card.get("heldout_metrics") or {}
    if "mean_ratio_to_wmmse" in h and "test drops" in h.get("split", ""):  # wifoe at a stated operating point
        return (
            f"{h['mean_ratio_to_wmmse']:.3f} × perfect-CSI WMMSE (3GPP test drops, {h['snr_db']:g} dB, "
            f"pilots {h['pilot_snr_db']:g} dB)"
        )
    if "mean_ratio_to_wmmse" in h:
        return f"{h['mean_ratio_to_wmmse']:.3f} × WMMSE (held-out sites)"
    ratios = h.get("ratio_to_wmmse")
    if isinstance(ratios, dict) and ratios:
        vals = [v for v in ratios.values() if isinstance(v, (int, float))]
        return f"{sum(vals) / len(vals):.3f} × perfect-CSI WMMSE (3GPP test drops)"
    return "not in the card (see its benchmark section)"


def training_cost(names: tuple[str, ...] = SHIPPED) -> list[dict]:
    """One row per shipped checkpoint: ``{name, steps, samples_per_step, samples, seconds, hardware, command,
    quality, derived}``."""
    rows = []
    for name in names:
        card = json.loads(Path(shipped_checkpoint(name)).with_suffix(".json").read_text())
        meta, shipped = card.get("meta", {}), card.get("shipped", {})
        sps, derived = meta.get("samples_per_step"), False
        if sps is None:
            sps, derived = _derived_samples_per_step(card), True
        steps = int(card["step"])
        hw = shipped.get("hardware", {})
        rows.append(
            {
                "name": name,
                "steps": steps,
                "samples_per_step": sps,
                "samples": None if sps is None else steps * sps,
                "seconds": meta.get("seconds"),
                "device": meta.get("device", "cuda" if hw.get("cuda") else "cpu"),
                "threads": hw.get("threads"),
                "world_size": meta.get("world_size", 1),
                "precision": meta.get("precision", "fp32"),
                "command": shipped.get("command"),
                "quality": _quality(card),
                "derived": derived,
            }
        )
    return rows
