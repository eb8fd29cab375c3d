"""Recipe files (YAML) -> typed configs, with ``key=value`` overrides validated by name."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import yaml

from mimofm.channels.catalog import sites
from mimofm.core.validation import MimofmInputError
from mimofm.training.trainer import TrainConfig

__all__ = ["apply_overrides", "load_recipe", "resolve_sites", "site_dir"]


def site_dir() -> Path:
    """The folder of the generated site files (``$MIMOFM_SITE_DIR``, default ``~/.cache/mimofm/sites``)."""
    return Path(os.environ.get("MIMOFM_SITE_DIR", Path.home() / ".cache" / "mimofm" / "sites"))


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _check_keys(section: str, given: dict, cls) -> None:
    """Unknown keys and values of the wrong scalar type are errors that name the key."""
    if not isinstance(given, dict):
        raise MimofmInputError(f"recipe section `{section}` must be a mapping, got {type(given).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(map(str, given)) - set(fields))
    if bad:
        raise MimofmInputError(
            f"unknown key(s) {', '.join(f'{section}.{b}' for b in bad)} in the recipe; "
            f"valid: {', '.join(sorted(fields))}"
        )
    for key, value in given.items():
        kind = (
            fields[key].type
            if isinstance(fields[key].type, str)
            else getattr(fields[key].type, "__name__", "")
        )
        allowed = _TYPES.get(kind)
        if allowed is None:
            continue
        ok = isinstance(value, allowed) and not (kind in ("int", "float") and isinstance(value, bool))
        if ok and kind == "float" and not math.isfinite(float(value)):
            ok = False
        if not ok:
            raise MimofmInputError(f"recipe key `{section}.{key}` must be a finite {kind}, got {value!r}")


def apply_overrides(doc: dict, overrides: list[str]) -> dict:
    """``["train.steps=100", "fm.model.d_model=64"]`` applied to the recipe document (YAML-typed values)."""
    for ov in overrides:
        if "=" not in ov:
            raise MimofmInputError(f"override {ov!r} must look like section.key=value")
        path, value = ov.split("=", 1)
        keys = path.split(".")
        node = doc
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                raise MimofmInputError(f"override {ov!r}: {k!r} is not a section of the recipe")
            node = node[k]
        if keys[-1] not in node:
            raise MimofmInputError(f"override {ov!r}: unknown key {path!r}")
        node[keys[-1]] = yaml.safe_load(value)
    return doc


def resolve_sites(spec: Any) -> list[str]:
    """``"catalog:train"`` -> the train-split site files in :func:`site_dir`; a list of paths stays, and a
    ``"catalog:<split>"`` entry in it is replaced by that split's files (e.g. the catalog plus TR 38.901
    files from ``mimofm data tr38901``)."""
    if isinstance(spec, list) and any(isinstance(s, str) and s.startswith("catalog:") for s in spec):
        return [
            f
            for s in spec
            for f in resolve_sites(s if isinstance(s, str) and s.startswith("catalog:") else [s])
        ]
    if isinstance(spec, str) and spec.startswith("catalog:"):
        split = spec.split(":", 1)[1]
        files = [site_dir() / f"{s.name}.h5" for s in sites(split)]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise MimofmInputError(
                f"site files missing in {site_dir()}: {', '.join(missing)}; "
                f"generate them with `make catalog` (or set MIMOFM_SITE_DIR)"
            )
        return [str(f) for f in files]
    if isinstance(spec, list) and all(isinstance(s, str) for s in spec):
        return spec
    raise MimofmInputError(f"`sites` must be 'catalog:<split>' or a list of files, got {spec!r}")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> tuple[str, TrainConfig, dict]:
    """Read a recipe file: (family, TrainConfig, family section with sites resolved)."""
    path = Path(path)
    if not path.exists():
        raise MimofmInputError(f"recipe file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MimofmInputError(f"recipe file {str(path)!r} is not valid YAML ({e})") from None
    if not isinstance(doc, dict) or "recipe" not in doc:
        raise MimofmInputError(f"recipe file {str(path)!r} needs a top-level `recipe:` (e.g. fm)")
    doc = apply_overrides(doc, overrides or [])
    family = doc["recipe"]
    if family not in ("fm", "papp", "wifoe", "toy"):
        raise MimofmInputError(f"`recipe:` must name a model family (fm, papp, wifoe, toy), got {family!r}")
    extra = sorted(set(doc) - {"recipe", "train", family})
    if extra:
        raise MimofmInputError(f"unknown section(s) {', '.join(extra)} in {path.name}")
    train = doc.get("train") or {}
    _check_keys("train", train, TrainConfig)
    section = doc.get(family) or {}
    if not isinstance(section, dict):
        raise MimofmInputError(f"recipe section `{family}` must be a mapping, got {type(section).__name__}")
    cfg = TrainConfig(**train)
    cfg.validate()
    return family, cfg, dict(section)
