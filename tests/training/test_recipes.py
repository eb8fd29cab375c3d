"""Recipe site lists: the catalog's files, explicit files, and both mixed."""

import pytest

from mimofm.channels.catalog import sites
from mimofm.core.validation import MimofmInputError
from mimofm.training.recipes import resolve_sites


def test_a_site_list_mixes_the_catalog_with_extra_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMOFM_SITE_DIR", str(tmp_path))
    names = [s.name for s in sites("train")]
    for n in names:
        (tmp_path / f"{n}.h5").write_bytes(b"")
    catalog = [str(tmp_path / f"{n}.h5") for n in names]
    assert resolve_sites("catalog:train") == catalog
    assert resolve_sites(["a.h5", "b.h5"]) == ["a.h5", "b.h5"]
    assert resolve_sites(["catalog:train", "extra.h5"]) == [*catalog, "extra.h5"]
    (tmp_path / f"{names[0]}.h5").unlink()
    with pytest.raises(MimofmInputError, match=names[0]):
        resolve_sites(["catalog:train", "extra.h5"])
    with pytest.raises(MimofmInputError, match="catalog:<split>"):
        resolve_sites(3)
    (tmp_path / f"{names[0]}.h5").write_bytes(b"")
    with pytest.raises(MimofmInputError, match="catalog:<split>"):
        resolve_sites(["catalog:train", 3])


@pytest.mark.parametrize("name", ["papp-more-users", "papp-more-sites"])
def test_the_continued_papp_recipes_start_from_the_shipped_architecture(name):
    """The continued-pretraining recipes read, name only known keys, and start from the shipped papp
    with the recipe's own model (so `init_from` will accept it)."""
    from pathlib import Path

    from mimofm.models.papp import PaPPConfig
    from mimofm.models.zoo import load_papp
    from mimofm.training.papp_recipe import PaPPRecipe
    from mimofm.training.recipes import _check_keys, load_recipe

    root = Path(__file__).resolve().parents[2]
    family, cfg, section = load_recipe(root / "recipes" / f"{name}.yaml")
    assert family == "papp" and cfg.warmup == 0
    _check_keys("papp", section, PaPPRecipe)
    assert (root / section["init_from"]).with_suffix(".json").exists()
    shipped = load_papp(str(root / section["init_from"]))
    assert PaPPConfig(num_bs_ant=shipped.cfg.num_bs_ant, **section["model"]) == shipped.cfg
    assert section["teacher_warmup_steps"] == 0
