import json

import numpy as np
import pytest
import torch

from mimofm.channels.bundled import bundled_dir, bundled_sites
from mimofm.channels.io import load_channels, save_channels_npz
from mimofm.channels.sampling import draw_user_sets, gather_users
from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError


def _h(n=20, a=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, a)) + 1j * rng.normal(size=(n, a))).astype(np.complex64)


def test_roundtrip(tmp_path):
    cs = ChannelSet(
        "s1",
        torch.from_numpy(_h()),
        torch.from_numpy(np.arange(20) % 2 == 0),
        torch.zeros(20, 3, dtype=torch.float64),
        {"x": 1},
    )
    save_channels_npz(tmp_path / "s1.npz", cs)
    back = load_channels(tmp_path / "s1.npz")
    assert back.name == "s1" and back.meta["x"] == 1
    torch.testing.assert_close(back.h, cs.h)
    assert bool((back.los == cs.los).all())
    assert not list(tmp_path.glob("*.tmp"))


def test_minimal_file_only_h(tmp_path):
    np.savez(tmp_path / "only.npz", H=_h())
    cs = load_channels(tmp_path / "only.npz")
    assert cs.name == "only" and cs.los is None and cs.num_bs_ant == 8


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"H": np.ones((4, 3))}, "complex"),
        ({"H": np.ones((4,), dtype=np.complex64)}, "num_positions, num_bs_ant"),
        ({"X": np.ones((4, 3), dtype=np.complex64)}, "no `H`"),
        ({"H": np.full((4, 3), np.nan, dtype=np.complex64)}, "NaN"),
        ({"H": np.zeros((4, 3), dtype=np.complex64)}, "all-zero"),
        ({"H": np.ones((4, 3), dtype=np.complex64), "los": np.ones(5, dtype=bool)}, "`los`"),
        ({"H": np.ones((4, 3), dtype=np.complex64), "positions": np.ones((4, 7))}, "`positions`"),
        ({"H": np.array([object()], dtype=object)}, "pickle"),
    ],
)
def test_bad_files_rejected_clearly(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(MimofmInputError, match=match):
        load_channels(p)


def test_not_a_zip_and_missing(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(MimofmInputError, match="readable"):
        load_channels(p)
    with pytest.raises(MimofmInputError, match="does not exist"):
        load_channels(tmp_path / "nope.npz")
    (tmp_path / "x.txt").write_bytes(b"")
    with pytest.raises(MimofmInputError, match="extension"):
        load_channels(tmp_path / "x.txt")


def test_user_sets_are_distinct_and_deterministic():
    a = draw_user_sets(50, 4, 200, seed=3)
    assert a.shape == (200, 4) and all(len(set(r)) == 4 for r in a)
    assert np.array_equal(a, draw_user_sets(50, 4, 200, seed=3))
    assert not np.array_equal(a, draw_user_sets(50, 4, 200, seed=4))
    h = torch.from_numpy(_h(50))
    assert gather_users(h, a).shape == (200, 4, 8)
    with pytest.raises(MimofmInputError, match="num_ue"):
        draw_user_sets(3, 4, 10, 0)


def test_bundled_sites_are_the_heldout_catalog_sites():
    """The shipped files are site files made by `make bundled-sites` from the catalog entries."""
    from dataclasses import asdict

    from mimofm.channels.catalog import BUNDLED_HELDOUT, get_site
    from mimofm.channels.raytrace import RTSettings

    shipped = {cs.name: cs for cs in bundled_sites()}
    assert set(shipped) == set(BUNDLED_HELDOUT)
    los = {n: float(cs.los.float().mean()) for n, cs in shipped.items()}
    assert los["etoile-open"] > 0.7 and 0.35 < los["etoile-mixed"] < 0.65 and los["florence-dense"] < 0.3
    for name, cs in shipped.items():
        spec = get_site(name)
        assert spec.split == "heldout"
        assert cs.meta["spec"] == json.loads(json.dumps(asdict(spec)))
        assert cs.meta["settings"] == json.loads(json.dumps(asdict(RTSettings())))
        assert cs.split is not None and set(cs.split.tolist()) == {0, 1, 2}
    assert sum(p.stat().st_size for p in bundled_dir().iterdir()) < 5 * 2**20
