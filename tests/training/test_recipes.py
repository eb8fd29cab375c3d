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
