import numpy as np
import pytest
import torch

from mimofm.core.rates import sum_rate
from mimofm.precoders.bounds import dpc_sum_capacity
from mimofm.precoders.linear import mrt, zf, zf_wf
from mimofm.precoders.wmmse import wmmse
from tests.conftest import correlated, rayleigh


def test_single_user_equals_mrt_and_capacity():
    h = rayleigh(10, 1, 16, seed=1, snr_db=7.0)
    d = dpc_sum_capacity(h)
    cap = torch.log2(1 + h.abs().square().sum((-2, -1)))
    torch.testing.assert_close(d.sum_rate, cap)
    torch.testing.assert_close(d.sum_rate, sum_rate(h, mrt(h)))


@pytest.mark.parametrize("gen", [rayleigh, correlated])
@pytest.mark.parametrize("snr_db", [-10.0, 10.0, 30.0])
def test_dpc_above_wmmse_above_zf_every_sample(gen, snr_db):
    h = gen(48, 4, 8, seed=2, snr_db=snr_db)
    d = dpc_sum_capacity(h)
    w = wmmse(h, setting="reference").sum_rate
    assert bool((d.upper_bound >= d.sum_rate).all())
    assert float((d.upper_bound - d.sum_rate).max()) < 1e-6
    assert bool((d.upper_bound >= w - 1e-10 * w.abs()).all())  # certified bound, up to round-off
    assert bool((d.sum_rate >= w - 1e-7).all())
    assert bool((w >= sum_rate(h, zf_wf(h)) - 1e-9).all())
    assert bool((sum_rate(h, zf_wf(h)) >= sum_rate(h, zf(h)) - 1e-9).all())


def test_orthogonal_users_at_high_snr_equal_zf_wf():
    """With orthogonal user channels there is no interference to pre-cancel: DPC = ZF-WF."""
    q, _ = torch.linalg.qr(rayleigh(4, 8, 8, seed=3))
    h = (q[:, :3, :] * torch.tensor([30.0, 10.0, 3.0], dtype=torch.float64)[None, :, None]).to(torch.complex128)
    torch.testing.assert_close(dpc_sum_capacity(h).sum_rate, sum_rate(h, zf_wf(h)), rtol=1e-8, atol=1e-8)


def test_more_users_than_antennas_and_rank_deficient():
    h = rayleigh(6, 6, 3, seed=4, snr_db=10.0)
    d = dpc_sum_capacity(h)
    assert bool(torch.isfinite(d.sum_rate).all())
    assert bool((d.sum_rate >= wmmse(h).sum_rate - 1e-7).all())
    h2 = rayleigh(4, 3, 5, seed=5)
    h2[:, 1] = h2[:, 0]
    assert bool(torch.isfinite(dpc_sum_capacity(h2).sum_rate).all())
    torch.testing.assert_close(dpc_sum_capacity(h2).powers.sum(-1), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("snr_db", [-20.0, 80.0])
def test_extreme_snr_finite(snr_db):
    d = dpc_sum_capacity(correlated(8, 4, 16, seed=6, snr_db=snr_db))
    assert bool(torch.isfinite(d.sum_rate).all()) and bool((d.sum_rate > 0).all())


def test_matches_convex_solver():
    cp = pytest.importorskip("cvxpy")
    h = rayleigh(3, 2, 3, seed=7, snr_db=5.0)
    d = dpc_sum_capacity(h)
    for b in range(3):
        hb = h[b].numpy()  # [K, N], row k = h_k^H
        q = cp.Variable(2, nonneg=True)
        # I + Σ q_k h_k h_k^H in the real 2N x 2N embedding (log det halves)
        mats = []
        for k in range(2):
            v = hb[k].conj()[:, None]
            c = v @ v.conj().T
            mats.append(np.block([[c.real, -c.imag], [c.imag, c.real]]))
        m = np.eye(6) + sum(q[k] * mats[k] for k in range(2))
        prob = cp.Problem(cp.Maximize(cp.log_det(m) / 2), [cp.sum(q) == 1])
        prob.solve(solver=cp.SCS, eps=1e-9, max_iters=200000)
        assert d.sum_rate[b].item() == pytest.approx(prob.value / np.log(2), rel=1e-4)
