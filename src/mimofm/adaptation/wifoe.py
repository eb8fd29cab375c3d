"""wifoe fine-tuning for an unseen task (Algorithm 2): the pretrained trunk frozen, a new branch
(pilots, user encoder, input and output layers) trained on a fixed budget of the task's samples.

Goes through :class:`~mimofm.training.wifoe_recipe.WiFoERecipe` and the shared loop; the same
function gives the paper's two references: ``trunk="random"`` (a randomly initialized, frozen trunk)
and ``trunk="train"`` (single-task training of the whole model on the same budget, STL).
"""

from __future__ import annotations

import json
from pathlib import Path

from mimofm.core.validation import MimofmInputError
from mimofm.models.zoo import load_wifoe, shipped_checkpoint
from mimofm.training.trainer import TrainConfig, train
from mimofm.training.wifoe_recipe import WiFoERecipe

__all__ = ["OPERATING_POINT_KEYS", "checkpoint_recipe", "finetune_wifoe"]


def checkpoint_recipe(stem: str) -> dict:
    """The recipe section of a wifoe checkpoint's card (``{}`` for a card without one)."""
    card = json.loads(Path(stem).with_suffix(".json").read_text())
    return card.get("config", {}).get("recipe", {}) or {}


OPERATING_POINT_KEYS = (
    "snr_convention",
    "pilot_snr_db",
    "pilot_snr_offset_db",
    "loss_norm",
    "snr_grid_db",
    "eval_snr_db",
)


def finetune_wifoe(
    task: str,
    budget: int,
    *,
    checkpoint: str | None = None,
    trunk: str = "pretrained",
    steps: int = 800,
    lr: float = 1e-3,
    batch: int = 64,
    seed: int = 0,
    val_fraction: float = 0.0,
    out_dir: str = "runs/adapt-wifoe",
    progress: bool = True,
    resume: bool = True,
    **operating_point,
) -> dict:
    """Train a branch for ``task`` on ``budget`` multi-user samples (0: fresh draws from every train
    position).

    ``trunk``: ``"pretrained"`` (frozen, from ``checkpoint``, default the shipped one),
    ``"pretrained-norms"`` (the same with the trunk's LayerNorm scales and shifts trainable), ``"random"``
    (frozen, random init with the checkpoint's architecture), ``"train"`` (the whole model trained,
    random init: STL on the budget) or ``"finetune"`` (the pretrained trunk as the start, trained with
    the new branch). ``val_fraction > 0`` holds that share of the budget out (on positions of its own),
    evaluates on it 20 times over the run and returns the best of those weights (checkpoint ``best``):
    the number of steps is then chosen on the budget's own data. ``operating_point``: any of
    ``snr_convention``, ``pilot_snr_db``, ``pilot_snr_offset_db``, ``loss_norm``, ``snr_grid_db``,
    ``eval_snr_db`` (the recipe's fields);
    those not given are the checkpoint's own, so a branch trains at the point its trunk was pretrained
    at. Returns the loop's result (model, metrics, checkpoint stem).
    """
    if trunk not in ("pretrained", "pretrained-norms", "random", "train", "finetune"):
        raise MimofmInputError(
            f"`trunk` must be pretrained, pretrained-norms, random, train or finetune, got {trunk!r}"
        )
    unknown = set(operating_point) - set(OPERATING_POINT_KEYS)
    if unknown:
        raise MimofmInputError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(OPERATING_POINT_KEYS)}"
        )
    stem = str(checkpoint or shipped_checkpoint("wifoe"))
    arch = load_wifoe(stem).cfg.to_dict()
    arch.pop("tasks")
    if "pilot_snr_db" in operating_point or "pilot_snr_offset_db" in operating_point:
        inherited = {}  # a pilot rule given replaces the checkpoint's whole rule
    else:
        inherited = {
            k: v for k, v in checkpoint_recipe(stem).items() if k in ("pilot_snr_db", "pilot_snr_offset_db")
        }
    inherited |= {
        k: v
        for k, v in checkpoint_recipe(stem).items()
        if k in ("snr_convention", "loss_norm", "snr_grid_db", "eval_snr_db")
    }
    if operating_point.get("snr_convention", inherited.get("snr_convention", "received")) != inherited.get(
        "snr_convention", "received"
    ) and not {"snr_grid_db", "eval_snr_db"} <= set(operating_point):
        raise MimofmInputError(
            "another `snr_convention` than the checkpoint's reads its SNR grid differently; give "
            "`snr_grid_db` and `eval_snr_db` in the new convention as well"
        )
    kw = dict(
        tasks=[task],
        batch_per_task=batch,
        sample_budget=budget,
        val_fraction=val_fraction,
        seed=seed,
        name="wifoe",
        **{**inherited, **operating_point},
    )
    if trunk in ("pretrained", "pretrained-norms", "finetune"):
        rec = WiFoERecipe(
            init_from=stem,
            freeze_trunk=trunk != "finetune",
            trunk_norms_trainable=trunk == "pretrained-norms",
            **kw,
        )
    else:
        rec = WiFoERecipe(model=arch, freeze_trunk=trunk == "random", **kw)
    cfg = TrainConfig(
        steps=steps,
        lr=lr,
        warmup=min(50, steps // 10),
        weight_decay=1e-4,
        log_every=50,
        ckpt_every=max(1, steps // 4),
        seed=seed,
        out_dir=out_dir,
        eval_every=max(1, steps // 20) if val_fraction else 0,
        keep_best=rec.val_metric if val_fraction else "",
    )
    return train(rec, cfg, resume=resume, progress=progress)
