import pytest
import torch

from mimofm.core.energy import total_power
from mimofm.core.rates import effective_gains, sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import mrt, rzf, water_filling, zf, zf_wf
from tests.conftest import correlated, rayleigh

ALL = [mrt, zf, zf_wf, rzf]


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_power_constraint_and_dtype(fn, dtype):
    h = rayleigh(20, 4, 16, seed=1, dtype=dtype)
    w = fn(h, power=3.0)
    assert w.shape == (20, 16, 4) and w.dtype == dtype
    torch.testing.assert_close(
        total_power(w.to(torch.complex128)), torch.full((20,), 3.0, dtype=torch.float64), rtol=1e-5, atol=0
    )


def test_zf_nulls_interference():
    h = correlated(50, 4, 8, seed=2, snr_db=20)
    p = effective_gains(h, zf(h))
    off = p - torch.diag_embed(torch.diagonal(p, dim1=-2, dim2=-1))
    assert float(off.max()) < 1e-12 * float(p.max())
    p = effective_gains(h, zf_wf(h))
    off = p - torch.diag_embed(torch.diagonal(p, dim1=-2, dim2=-1))
    assert float(off.max()) < 1e-12 * float(p.max())


def test_zf_wf_beats_zf_and_is_waterfilling_optimal():
    h = correlated(200, 4, 8, seed=3, snr_db=5)
    r_wf, r_zf = sum_rate(h, zf_wf(h)), sum_rate(h, zf(h))
    assert bool((r_wf >= r_zf - 1e-9).all())
    # any other power split over the same ZF directions is no better (random perturbations)
    hp = torch.linalg.pinv(h)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = torch.rand(200, 4, generator=g, dtype=torch.float64)
        w = hp * torch.sqrt(p)[:, None, :]
        w = w / torch.sqrt(total_power(w))[:, None, None]
        assert bool((sum_rate(h, w) <= r_wf + 1e-9).all())


def test_water_filling_exact():
    floors = torch.tensor([[0.1, 0.2, 5.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    q = water_filling(floors, 1.0)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(q[0], torch.tensor([0.55, 0.45, 0.0], dtype=torch.float64))
    torch.testing.assert_close(q[1], torch.full((3,), 1 / 3, dtype=torch.float64))


def test_rzf_tends_to_zf_and_mrt():
    h = rayleigh(10, 3, 6, seed=4)
    cos = lambda a, b: (a.conj() * b).sum((-2, -1)).abs() / (a.norm(dim=(-2, -1)) * b.norm(dim=(-2, -1)))  # noqa: E731
    assert bool((cos(rzf(h, alpha=1e-9), zf(h)) > 1 - 1e-9).all())
    assert bool((cos(rzf(h, alpha=1e9), mrt(h)) > 1 - 1e-6).all())


def test_single_user_mrt_reaches_capacity():
    h = rayleigh(10, 1, 32, seed=5, snr_db=3)
    expected = torch.log2(1 + h.abs().square().sum((-2, -1)))
    for fn in ALL:
        torch.testing.assert_close(sum_rate(h, fn(h)), expected)


def test_agrees_with_sionna_rzf_precoding_matrix():
    sionna_precoding = pytest.importorskip("sionna.phy.mimo.precoding")
    from sionna.phy.config import config

    h = rayleigh(8, 4, 16, seed=6, dtype=torch.complex64)
    old = config.precision
    try:
        config.precision = "double"
        for alpha, ours in ((0.0, zf(h.to(torch.complex128))), (0.7, rzf(h.to(torch.complex128), alpha=0.7))):
            theirs = sionna_precoding.rzf_precoding_matrix(h.to(torch.complex128), alpha=alpha)
            # Sionna normalizes every column to unit norm; ours uses one global scale: compare directions
            ours_cols = ours / ours.norm(dim=-2, keepdim=True)
            torch.testing.assert_close(ours_cols, theirs.to(torch.complex128), rtol=1e-7, atol=1e-9)
    finally:
        config.precision = old


def test_zf_needs_k_le_n_and_names_arguments():
    h = rayleigh(2, 8, 4)
    with pytest.raises(MimofmInputError, match=r"`num_ue` \(8\) must be <= `num_bs_ant` \(4\)"):
        zf(h)
    with pytest.raises(MimofmInputError, match="num_ue"):
        zf_wf(h)
    assert rzf(h).shape == (2, 4, 8)  # RZF and MRT serve K > N
    with pytest.raises(MimofmInputError, match="power"):
        mrt(rayleigh(2, 2, 4), power=-1.0)
    with pytest.raises(MimofmInputError, match="power"):
        zf(rayleigh(2, 2, 4), power=float("nan"))


def test_rank_deficient_channels_stay_finite():
    h = rayleigh(4, 3, 6, seed=7)
    h[:, 1] = h[:, 0] * (0.5 + 0.5j)  # two users in the same direction
    for fn in ALL:
        w = fn(h)
        assert bool(torch.isfinite(w).all())
        assert bool(torch.isfinite(sum_rate(h, w)).all())
