"""Training cost rows come from the shipped cards; the recomputed samples per step equal the recipes'."""

import json

from mimofm.evaluation.training_cost import SHIPPED, _derived_samples_per_step, training_cost
from mimofm.models.zoo import shipped_checkpoint
from mimofm.training.papp_recipe import PaPPRecipe
from mimofm.training.wifoe_recipe import WiFoERecipe


def test_every_shipped_checkpoint_has_a_cost_row():
    rows = training_cost()
    assert [r["name"] for r in rows] == list(SHIPPED)
    for r in rows:
        assert r["steps"] > 0 and r["seconds"] > 0 and r["samples"] == r["steps"] * r["samples_per_step"]
        assert r["command"].startswith("mimofm train")


def test_recomputed_samples_per_step_match_the_recipes():
    for name, cls in (("papp", PaPPRecipe), ("wifoe", WiFoERecipe)):
        card = json.loads(shipped_checkpoint(name).with_suffix(".json").read_text())
        recipe = cls(**card["config"]["recipe"])  # lazy: no data is loaded
        assert _derived_samples_per_step(card) == recipe.samples_per_step()
    fm = json.loads(shipped_checkpoint("fm").with_suffix(".json").read_text())
    r = fm["config"]["recipe"]
    heads = fm["meta"]["architecture"]["num_output_heads"]
    assert _derived_samples_per_step(fm) == r["batch_per_dataset"] * (heads - 1) + r["default_batch"]
