import numpy as np
import pytest
import torch

from mimofm.channels.catalog import CATALOG, HELDOUT_SCENES, position_split, sites
from mimofm.channels.sampling import (
    MultiUserSampler,
    candidate_positions,
    draw_user_sets,
    gather_users,
    imperfect_csi,
    permute_users,
    rotate_user_phases,
)
from mimofm.core.validation import MimofmInputError
from tests.conftest import rayleigh


def test_draws_are_uniform_over_positions():
    idx = draw_user_sets(20, 4, 20000, seed=0)
    counts = np.bincount(idx.ravel(), minlength=20)
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean()
    assert all(len(set(r)) == 4 for r in idx[:500])


def test_los_nlos_and_split_candidates():
    los = torch.tensor([True, False] * 10)
    split = position_split(20, seed=1)
    c_los = candidate_positions(20, los=los, mix="los")
    assert bool(los[c_los].all())
    c = candidate_positions(20, los=los, mix="nlos", split=split, split_code=2)
    assert not bool(los[c].any()) and bool((split[c] == 2).all())
    idx = draw_user_sets(20, 2, 100, seed=0, candidates=c_los)
    assert set(idx.ravel()) <= set(c_los)
    with pytest.raises(MimofmInputError, match="LOS flags"):
        candidate_positions(20, mix="los")


def test_position_split_is_a_partition_and_seeded():
    a = position_split(1000, seed=3)
    assert set(np.unique(a)) == {0, 1, 2}
    assert abs((a == 0).mean() - 0.7) < 0.01 and abs((a == 2).mean() - 0.15) < 0.01
    assert np.array_equal(a, position_split(1000, seed=3)) and not np.array_equal(
        a, position_split(1000, seed=4)
    )


def test_catalog_splits_cannot_leak():
    assert len(CATALOG) >= 16 and len({s.scene for s in CATALOG.values()}) >= 4
    train_scenes = {s.scene for s in sites("train")} | {s.scene for s in sites("val")}
    assert not train_scenes & set(HELDOUT_SCENES)
    roles = {s.role for s in sites("heldout")}
    assert {"mostly-LOS", "mixed", "mostly-NLOS"} <= roles
    with pytest.raises(MimofmInputError, match="unknown site"):
        from mimofm.channels.catalog import get_site

        get_site("atlantis")


def test_imperfect_csi_nmse_and_determinism():
    h = rayleigh(4000, 2, 16, seed=1) * torch.tensor([1e-6, 1e-3], dtype=torch.float64)[None, :, None]
    hh = imperfect_csi(h, nmse_db=-10.0, seed=5)
    err = (hh - h).abs().square().sum(-1) / h.abs().square().sum(-1)  # [S, K]
    assert float(10 * torch.log10(err.mean(0)).max()) == pytest.approx(-10.0, abs=0.2)
    assert float(10 * torch.log10(err.mean(0)).min()) == pytest.approx(-10.0, abs=0.2)
    assert torch.equal(hh, imperfect_csi(h, -10.0, seed=5))


def test_permutation_keeps_users():
    h = rayleigh(8, 4, 3, seed=2)
    hp, perm = permute_users(h, seed=0)
    for s in range(8):
        torch.testing.assert_close(hp[s], h[s, perm[s]])


def test_phase_rotation_changes_channels_but_no_rate():
    from mimofm.core.rates import user_rates
    from mimofm.precoders.linear import rzf

    h = rayleigh(8, 4, 16, seed=4).to(torch.complex128)
    hr = rotate_user_phases(h, seed=1)
    assert hr.dtype == h.dtype and not torch.allclose(hr, h)
    ratio = hr / h  # one unit-modulus factor per user, the same on every antenna
    torch.testing.assert_close(ratio.abs(), torch.ones_like(ratio.abs()))
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio))
    w = rzf(h)
    torch.testing.assert_close(user_rates(hr, w), user_rates(h, w))
    torch.testing.assert_close(user_rates(hr, rzf(hr)), user_rates(h, w))


def test_streaming_sampler_indexes_without_copy():
    h = rayleigh(1, 50, 8, seed=3)[0]
    it = iter(MultiUserSampler(h, num_ue=3, batch=16, seed=0))
    a, b = next(it), next(it)
    assert a.shape == (16, 3, 8) and not torch.equal(a, b)
    again = next(iter(MultiUserSampler(h, num_ue=3, batch=16, seed=0)))
    assert torch.equal(a, again)
    assert (
        gather_users(h, np.zeros((1, 1), dtype=np.int64)).data_ptr() != h.data_ptr()
    )  # gathered batch, site untouched
