"""docs/api.md is generated from the public surface's docstrings (scripts/gen_api_docs.py), and those
docstrings state what a caller needs: shapes for tensors, units for quantities."""

import importlib.util
import inspect
from pathlib import Path

import mimofm

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts" / "gen_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_generated_from_the_docstrings():
    assert _generator().render() == (ROOT / "docs" / "api.md").read_text(), (
        "docs/api.md is stale: run `make docs-api` (python scripts/gen_api_docs.py)"
    )


def test_every_public_name_is_documented_with_shapes_where_it_takes_arrays():
    for name in mimofm.__all__:
        if name == "__version__":
            continue
        obj = getattr(mimofm, name)
        doc = inspect.getdoc(obj) or ""
        assert len(doc) > 40, f"{name}: thin docstring {doc!r}"
        params = {} if name == "MimofmInputError" else inspect.signature(obj).parameters
        if {"h", "w"} & set(params) or name in ("load_precoder", "PrecoderModule", "load_channels"):
            assert "[..." in doc or "[num_positions" in doc, f"{name}: no shape contract in its docstring"
        if name in ("sum_rate", "user_rates"):
            assert "bit/s/Hz" in doc
