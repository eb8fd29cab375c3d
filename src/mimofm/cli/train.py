"""`mimofm train <family> --recipe FILE`: train with the shared loop from a recipe file."""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from pathlib import Path

import typer

from mimofm._io import write_json
from mimofm.cli._common import clean_errors, console
from mimofm.core.errors import MimofmInputError

__all__ = ["train_command"]


def _build(family: str, section: dict):
    from mimofm.training.recipes import _check_keys, resolve_sites

    if family == "fm":
        from mimofm.training.fm_recipe import FMRecipe

        _check_keys("fm", section, FMRecipe)
        section["sites"] = resolve_sites(section.get("sites", "catalog:train"))
        return FMRecipe(**section)
    if family == "papp":
        from mimofm.training.papp_recipe import PaPPRecipe

        _check_keys("papp", section, PaPPRecipe)
        section["sites"] = resolve_sites(section.get("sites", "catalog:train"))
        return PaPPRecipe(**section)
    if family == "wifoe":
        from mimofm.training.wifoe_recipe import WiFoERecipe

        _check_keys("wifoe", section, WiFoERecipe)
        return WiFoERecipe(**section)
    if family == "toy":
        from mimofm.training.toy import ToyRecipe

        _check_keys("toy", section, ToyRecipe)
        return ToyRecipe(**section)
    raise MimofmInputError(f"unknown model family {family!r}; valid: fm, papp, wifoe, toy")


@clean_errors
def train_command(
    family: str = typer.Argument(..., help="Model family: fm, papp, wifoe, toy."),
    recipe: Path = typer.Option(..., help="Recipe YAML file (recipes/*.yaml)."),
    out_dir: Path = typer.Option(
        Path("runs/train"), help="Checkpoints and log.jsonl go here; resumes if present."
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Override, e.g. train.steps=100 (repeatable)."),
    fresh: bool = typer.Option(False, help="Ignore an existing checkpoint in --out-dir."),
    ship_as: str | None = typer.Option(
        None, help="Copy the final checkpoint into the package assets under this name."
    ),
) -> None:
    """Train a model family from a recipe file (progress bar, checkpoints, exact resume)."""
    from mimofm.training.recipes import load_recipe
    from mimofm.training.trainer import train

    fam, cfg, section = load_recipe(recipe, set_ or [])
    if fam != family:
        raise MimofmInputError(f"recipe {recipe.name} is for {fam!r}, not {family!r}")
    cfg.out_dir = str(out_dir)
    rec = _build(family, section)
    t0 = time.perf_counter()
    result = train(rec, cfg, resume=not fresh)
    secs = time.perf_counter() - t0
    console.print(
        f"trained {family}: {result['checkpoint']}.safetensors · {secs:.0f} s in this call · "
        f"final {result['metrics']}"
    )
    if ship_as:
        _ship(Path(str(result["checkpoint"])), ship_as, recipe, set_ or [], secs)


def _ship(stem: Path, name: str, recipe: Path, overrides: list[str], secs: float) -> None:
    """Copy a checkpoint into mimofm/assets/checkpoints with a card (command, hardware, metrics)."""
    import torch

    from mimofm.models.checkpoint import sha256_file
    from mimofm.models.zoo import shipped_checkpoint

    dst = shipped_checkpoint(name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stem.with_suffix(".safetensors"), dst.with_suffix(".safetensors"))
    card = json.loads(stem.with_suffix(".json").read_text())
    card["tensors_sha256"] = sha256_file(dst.with_suffix(".safetensors"))
    card["shipped"] = {
        "command": "mimofm train " + " ".join(sys.argv[2:])
        if len(sys.argv) > 2
        else f"mimofm train --recipe {recipe}",
        "recipe_file": str(recipe),
        "overrides": overrides,
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
        "seconds_last_call": secs,
    }
    write_json(dst.with_suffix(".json"), card)
    console.print(f"shipped as {dst}.safetensors")
