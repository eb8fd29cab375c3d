"""DPC sum capacity: physics checks and an independent convex-solver reference."""

import numpy as np
import pytest
import torch

from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.bounds import dpc_sum_capacity
from mimofm.precoders.linear import mrt, zf, zf_wf
from mimofm.precoders.wmmse import wmmse
from tests.conftest import correlated, rayleigh


def test_single_user_equals_mrt_and_capacity():
    h = rayleigh(10, 1, 16, seed=1, snr_db=7.0)
    d = dpc_sum_capacity(h, power=2.0, noise_power=0.5)
    cap = torch.log2(1 + 2.0 * h.abs().square().sum((-2, -1)) / 0.5)
    torch.testing.assert_close(d.sum_rate, cap, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d.sum_rate, sum_rate(h, mrt(h, power=2.0), noise_power=0.5))
    torch.testing.assert_close(d.powers[..., 0], torch.full((10,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize("snr_db", [-10.0, 10.0, 30.0])
def test_dpc_above_wmmse_above_zf_every_sample(snr_db):
    # Rayleigh and correlated channels in one batch (one WMMSE call per SNR keeps the test fast)
    h = torch.cat([rayleigh(24, 4, 8, seed=2, snr_db=snr_db), correlated(24, 4, 8, seed=3, snr_db=snr_db)])
    d = dpc_sum_capacity(h)
    w = wmmse(h, setting="reference").sum_rate
    r_zf = sum_rate(h, zf(h))
    assert bool((d.upper_bound >= d.sum_rate).all())
    assert float((d.upper_bound - d.sum_rate).max()) <= 1e-10 * max(1.0, float(d.sum_rate.max()))
    assert bool((d.upper_bound >= w - 1e-12 * w.abs()).all())  # certified bound, up to round-off
    assert bool((d.sum_rate >= w - 1e-8).all())
    assert bool((w >= r_zf - 1e-9).all())
    assert bool((d.sum_rate > r_zf).all())  # interference pre-cancellation strictly helps


def test_orthogonal_users_equal_zf():
    """Orthogonal user channels: no interference to pre-cancel, DPC = ZF-WF (= ZF for equal gains)."""
    q, _ = torch.linalg.qr(rayleigh(4, 8, 8, seed=3))
    rows = q[:, :3, :]  # three orthonormal rows
    gains = torch.tensor([30.0, 10.0, 3.0], dtype=torch.float64)[None, :, None]
    h = (rows * gains).to(torch.complex128)
    torch.testing.assert_close(dpc_sum_capacity(h).sum_rate, sum_rate(h, zf_wf(h)), rtol=1e-9, atol=1e-9)
    h_eq = rows * 1e3  # equal gains at 60 dB: equal powers are optimal
    torch.testing.assert_close(
        dpc_sum_capacity(h_eq).sum_rate, sum_rate(h_eq, zf(h_eq)), rtol=1e-9, atol=1e-9
    )


def test_power_and_noise_fold_into_the_channel():
    h = correlated(5, 3, 4, seed=8, snr_db=0.0, dtype=torch.complex64)
    a = dpc_sum_capacity(h, power=4.0, noise_power=0.25)
    b = dpc_sum_capacity(h.to(torch.complex128) * 4.0)
    torch.testing.assert_close(a.sum_rate, b.sum_rate, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.powers.sum(-1), torch.full((5,), 4.0, dtype=torch.float64))
    assert a.sum_rate.dtype == torch.float64 and a.iterations.dtype == torch.int64


def test_more_users_than_antennas_and_rank_deficient():
    h = rayleigh(6, 6, 3, seed=4, snr_db=10.0)
    d = dpc_sum_capacity(h)
    assert bool(torch.isfinite(d.sum_rate).all())
    assert bool((d.upper_bound - d.sum_rate <= 1e-9 * d.sum_rate).all())
    assert bool((d.sum_rate >= wmmse(h).sum_rate - 1e-8).all())
    h2 = rayleigh(4, 3, 5, seed=5)
    h2[:, 1] = h2[:, 0]  # two users with the same channel
    d2 = dpc_sum_capacity(h2)
    assert bool(torch.isfinite(d2.sum_rate).all() and torch.isfinite(d2.upper_bound).all())
    torch.testing.assert_close(d2.powers.sum(-1), torch.ones(4, dtype=torch.float64))
    # the duplicate adds nothing: capacity equals the channel with user 1 removed
    torch.testing.assert_close(d2.sum_rate, dpc_sum_capacity(h2[:, [0, 2]]).sum_rate, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("snr_db", [-20.0, 80.0])
def test_extreme_snr_finite_and_converged(snr_db):
    d = dpc_sum_capacity(correlated(8, 4, 16, seed=6, snr_db=snr_db))
    assert bool(torch.isfinite(d.sum_rate).all()) and bool((d.sum_rate > 0).all())
    assert bool((d.upper_bound - d.sum_rate <= 1e-10 * d.sum_rate.clamp_min(1.0)).all())
    assert bool((d.iterations < 5000).all())


def test_bad_input_raises():
    with pytest.raises(MimofmInputError, match="power"):
        dpc_sum_capacity(rayleigh(1, 2, 2), power=-1.0)
    with pytest.raises(MimofmInputError, match="tol"):
        dpc_sum_capacity(rayleigh(1, 2, 2), tol=float("nan"))


def _cvx_capacity(hb: np.ndarray, p: float) -> float:
    """max log det(I + Σ q_k h_k h_k^H), q ≥ 0, Σq = P, in the real 2N x 2N embedding (bits)."""
    cp = pytest.importorskip("cvxpy")
    k, n = hb.shape
    q = cp.Variable(k, nonneg=True)
    mats = []
    for u in range(k):
        v = hb[u].conj()[:, None]  # h_u (column), row u of H is h_u^H
        c = v @ v.conj().T
        mats.append(np.block([[c.real, -c.imag], [c.imag, c.real]]))
    m = np.eye(2 * n) + sum(q[u] * mats[u] for u in range(k))
    prob = cp.Problem(cp.Maximize(cp.log_det(m) / 2), [cp.sum(q) == p])
    prob.solve(solver=cp.SCS, eps=1e-9, max_iters=200000)
    return prob.value / np.log(2)


@pytest.mark.parametrize("k,n", [(2, 3), (4, 2)])
def test_matches_convex_solver(k, n):
    pytest.importorskip("cvxpy")
    h = rayleigh(2, k, n, seed=7 + k, snr_db=5.0)
    d = dpc_sum_capacity(h, power=1.5)
    for b in range(2):
        ref = _cvx_capacity(h[b].numpy(), 1.5)
        assert d.sum_rate[b].item() == pytest.approx(ref, rel=1e-4)
        assert d.upper_bound[b].item() >= ref - 1e-4 * ref
