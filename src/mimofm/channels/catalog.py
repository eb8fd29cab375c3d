"""The site catalog and its splits: which sites train, which validate, which are held out.

Splits cannot leak by construction:

* two whole scenes, ``etoile`` and ``florence``, are **never** used for training or validation; every
  held-out deployment site lives in them (``HELDOUT_SCENES``);
* the held-out set covers the papers' three roles: mostly-LOS (fm/papp "Ericsson"), mixed
  ("Decarie") and mostly-NLOS ("Sainte-Catherine");
* within a site, positions are split train/val/test by a seeded permutation (:func:`position_split`);
  nothing that chooses a model or a hyper-parameter may read a held-out site's ``test`` positions.

The LOS column is the fraction of geometric line-of-sight among the covered outdoor UE candidates,
measured when the anchors were chosen (``scripts/probe_anchors.py``-style probe, 1500 candidates,
seed 0); the generated files record their own LOS ratio.
"""

from __future__ import annotations

import numpy as np

from mimofm.channels.raytrace import SiteSpec
from mimofm.core.validation import MimofmInputError

__all__ = ["CATALOG", "HELDOUT_SCENES", "SPLIT_CODES", "get_site", "position_split", "sites"]

HELDOUT_SCENES = ("etoile", "florence")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

_SITES = [
    # name, scene, anchor (x, y), mast above surface (m), split, role, LOS among candidates
    SiteSpec("munich-a", "munich", (-129.0, 241.0), 20.0, split="train", note="LOS 0.64"),
    SiteSpec("munich-b", "munich", (126.0, 115.0), 20.0, split="train", note="LOS 0.43"),
    SiteSpec("munich-c", "munich", (55.0, 29.0), 5.0, split="train", note="LOS 0.42"),
    SiteSpec("munich-d", "munich", (-230.0, -211.0), 20.0, split="train", note="LOS 0.31"),
    SiteSpec("munich-e", "munich", (-20.0, -91.0), 5.0, split="train", note="LOS 0.27"),
    SiteSpec("munich-f", "munich", (115.0, -187.0), 20.0, split="train", note="LOS 0.38"),
    SiteSpec("sf-a", "san_francisco", (150.0, -100.0), 20.0, split="train", note="LOS 0.56"),
    SiteSpec("sf-b", "san_francisco", (0.0, 0.0), 20.0, split="train", note="LOS 0.38"),
    SiteSpec("sf-c", "san_francisco", (-83.0, 136.0), 20.0, split="train", note="LOS 0.22"),
    SiteSpec("sf-d", "san_francisco", (250.0, 100.0), 20.0, split="train", note="LOS 0.19"),
    SiteSpec("sf-e", "san_francisco", (57.0, 225.0), 10.0, split="train", note="LOS 0.16"),
    SiteSpec("sf-f", "san_francisco", (-200.0, -150.0), 5.0, split="train", note="LOS 0.02"),
    SiteSpec(
        "canyon",
        "simple_street_canyon",
        (0.0, 0.0),
        5.0,
        min_height_m=15.0,
        d_min_m=10.0,
        d_max_m=90.0,
        split="train",
        note="small street canyon, 10-90 m",
    ),
    SiteSpec("munich-val", "munich", (93.0, 213.0), 20.0, split="val", note="LOS 0.40"),
    SiteSpec("sf-val", "san_francisco", (-100.0, -50.0), 30.0, split="val", note="LOS 0.20"),
    SiteSpec(
        "etoile-open", "etoile", (-211.0, 229.0), 20.0, split="heldout", role="mostly-LOS", note="LOS 0.87"
    ),
    SiteSpec("etoile-mixed", "etoile", (25.0, -118.0), 20.0, split="heldout", role="mixed", note="LOS 0.55"),
    SiteSpec(
        "florence-dense",
        "florence",
        (-209.0, 52.0),
        5.0,
        split="heldout",
        role="mostly-NLOS",
        note="LOS 0.18",
    ),
    SiteSpec(
        "florence-mixed", "florence", (45.0, -65.0), 5.0, split="heldout", role="mostly-NLOS", note="LOS 0.29"
    ),
]
CATALOG: dict[str, SiteSpec] = {s.name: s for s in _SITES}

# the bundled compact evaluation set: one site per held-out role
BUNDLED_HELDOUT = ("etoile-open", "etoile-mixed", "florence-dense")


def _check_catalog() -> None:
    for s in _SITES:
        s.validate()
        if (s.scene in HELDOUT_SCENES) != (s.split == "heldout"):
            raise RuntimeError(f"catalog error: {s.name} in scene {s.scene} has split {s.split}")


_check_catalog()


def get_site(name: str) -> SiteSpec:
    """The catalog's :class:`~mimofm.channels.raytrace.SiteSpec` named ``name``; raises for an unknown
    name."""
    if name not in CATALOG:
        raise MimofmInputError(f"unknown site {name!r}; valid: {', '.join(CATALOG)}")
    return CATALOG[name]


def sites(split: str | None = None) -> list[SiteSpec]:
    """Catalog sites, optionally of one split (``train``, ``val``, ``heldout``)."""
    if split not in (None, "train", "val", "heldout"):
        raise MimofmInputError(f"unknown split {split!r}; valid: train, val, heldout")
    return [s for s in _SITES if split is None or s.split == split]


def position_split(
    num_positions: int, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> np.ndarray:
    """``[num_positions]`` int8 codes (0 train, 1 val, 2 test) from a seeded permutation."""
    if num_positions < 3:
        raise MimofmInputError(f"a site needs >= 3 positions to split, got {num_positions}")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise MimofmInputError(f"`fractions` must be 3 non-negative numbers summing to 1, got {fractions}")
    perm = np.random.default_rng([seed, 7919]).permutation(num_positions)
    n_train = round(fractions[0] * num_positions)
    n_val = round(fractions[1] * num_positions)
    codes = np.full(num_positions, 2, dtype=np.int8)
    codes[perm[:n_train]] = 0
    codes[perm[n_train : n_train + n_val]] = 1
    return codes
