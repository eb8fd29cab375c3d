import pytest
import torch

from mimofm.core.energy import total_power
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import mrt, rzf, zf_wf
from mimofm.precoders.wmmse import wmmse, wmmse_precoder, wmmse_receivers
from tests.conftest import correlated, rayleigh


@pytest.mark.parametrize("snr_db", [-10.0, 10.0, 30.0, 70.0])
def test_user_and_antenna_forms_agree_per_step(snr_db):
    """One update from the same start: the N_U- and N_T-dimensional forms agree to round-off."""
    h = correlated(16, 4, 12, seed=1, snr_db=snr_db)
    a = wmmse(h, form="user", max_iter=1, tol=0.0)
    b = wmmse(h, form="antenna", max_iter=1, tol=0.0)
    torch.testing.assert_close(a.w, b.w, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(a.sum_rate, b.sum_rate, rtol=1e-12, atol=0)


@pytest.mark.parametrize("snr_db", [-10.0, 10.0, 30.0])
def test_user_and_antenna_forms_agree_after_iterating(snr_db):
    """Many updates: well-conditioned channels keep W equal; ill-conditioned ones (users switched
    off at low SNR amplify round-off along the trajectory) still end at the same sum rate."""
    h = rayleigh(16, 4, 12, seed=1, snr_db=snr_db)
    a = wmmse(h, form="user", max_iter=8, tol=0.0)
    b = wmmse(h, form="antenna", max_iter=8, tol=0.0)
    torch.testing.assert_close(a.w, b.w, rtol=1e-8, atol=1e-9)
    hc = correlated(16, 4, 12, seed=1, snr_db=snr_db)
    a = wmmse(hc, form="user", setting="paper", tol=1e-9, max_iter=300)
    b = wmmse(hc, form="antenna", setting="paper", tol=1e-9, max_iter=300)
    torch.testing.assert_close(a.sum_rate, b.sum_rate, rtol=1e-6, atol=0)


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 20.0])
def test_sum_rate_never_decreases_and_beats_start(snr_db):
    h = correlated(64, 4, 8, seed=2, snr_db=snr_db)
    r = wmmse(h, max_iter=60, tol=0.0, return_history=True)
    steps = r.history[1:] - r.history[:-1]
    assert float(steps.min()) >= -1e-9 * float(r.history.abs().max())
    assert bool((r.sum_rate >= r.start_sum_rate - 1e-12).all())
    for start in (zf_wf, rzf, mrt):
        assert bool((r.sum_rate >= sum_rate(h, start(h)) - 1e-9).all())


def test_exact_power_constraint_and_reported_rate():
    h = rayleigh(32, 4, 16, seed=3, snr_db=0.0)
    r = wmmse(h, power=2.5, noise_power=0.5)
    torch.testing.assert_close(
        total_power(r.w), torch.full((32,), 2.5, dtype=torch.float64), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(r.sum_rate, sum_rate(h, r.w, noise_power=0.5), rtol=1e-12, atol=0)


def test_reference_is_at_least_paper_and_stops_later():
    h = correlated(64, 4, 8, seed=4, snr_db=10.0)
    p, ref = wmmse(h, setting="paper"), wmmse(h, setting="reference")
    assert bool((ref.sum_rate >= p.sum_rate - 1e-9).all())
    assert int(p.iterations.max()) <= 100 and int(ref.iterations.max()) <= 500
    assert float(ref.sum_rate.mean()) > float(p.sum_rate.mean())


def test_single_user_reaches_capacity():
    h = rayleigh(8, 1, 16, seed=5, snr_db=5.0)
    r = wmmse(h)
    torch.testing.assert_close(r.sum_rate, torch.log2(1 + h.abs().square().sum((-2, -1))), rtol=1e-10, atol=0)


@pytest.mark.parametrize("median_snr_db", [-10.0, 30.0, 70.0])
@pytest.mark.parametrize("raw_gain_db", [-40.0, -140.0])
def test_raw_ray_traced_gains_complex64(median_snr_db, raw_gain_db):
    """Raw gains 1e-4 ... 1e-14 in complex64 with a matching noise power: finite, ordered, exact power."""
    h = correlated(32, 4, 64, seed=6, snr_db=0.0) * 10 ** (raw_gain_db / 20)
    noise = float(h.abs().square().sum(-1).median()) / 10 ** (median_snr_db / 10)
    h64 = h.to(torch.complex64)
    r = wmmse(h64, power=1.0, noise_power=noise)
    assert r.w.dtype == torch.complex64
    assert bool(torch.isfinite(r.w).all()) and bool(torch.isfinite(r.sum_rate).all())
    hs = h64.to(torch.complex128) / noise**0.5
    rate = sum_rate(hs, r.w.to(torch.complex128))
    assert bool((rate >= sum_rate(hs, zf_wf(hs)) - 1e-4 * rate.abs()).all())


def test_more_users_than_antennas():
    h = rayleigh(8, 6, 4, seed=7, snr_db=10.0)
    r = wmmse(h)
    assert bool(torch.isfinite(r.w).all())
    assert bool((r.sum_rate >= sum_rate(h, rzf(h)) - 1e-9).all())


def test_one_step_helpers_match_the_iteration():
    """wmmse_precoder with the bisected μ reproduces one iteration (what papp's teacher uses)."""
    h = rayleigh(4, 3, 6, seed=8, snr_db=5.0)
    w0 = mrt(h)
    u, v = wmmse_receivers(h @ w0)
    # the textbook u, v from their definitions
    g = h @ w0
    tot = g.abs().square().sum(-1) + 1
    torch.testing.assert_close(u, torch.diagonal(g, dim1=-2, dim2=-1) / tot)
    torch.testing.assert_close(v, 1 / (1 - torch.diagonal(g, dim1=-2, dim2=-1).abs().square() / tot))
    w1 = wmmse(h, max_iter=1, tol=0.0, setting="paper")  # may start elsewhere; check power monotonicity in μ
    small, large = wmmse_precoder(h, u, v, 1e-3), wmmse_precoder(h, u, v, 1e3)
    assert bool((total_power(small) > total_power(large)).all())
    assert bool(torch.isfinite(w1.w).all())


def test_bad_arguments():
    h = rayleigh(2, 2, 4)
    with pytest.raises(MimofmInputError, match="WMMSE setting"):
        wmmse(h, setting="fast")
    with pytest.raises(MimofmInputError, match="WMMSE form"):
        wmmse(h, form="dual")
    with pytest.raises(MimofmInputError, match="return_history"):
        wmmse(h, setting="reference", return_history=True)
    with pytest.raises(MimofmInputError, match="noise_power"):
        wmmse(h, noise_power=0.0)
    bad = h.clone()
    bad[0, 0, 0] = float("inf")
    with pytest.raises(MimofmInputError, match="NaN/Inf"):
        wmmse(bad)


def test_starved_users_do_not_break_the_iteration():
    """Users WMMSE switches off (sub-normal receivers) stay finite from every start (a ray-traced
    sample once produced NaN here)."""
    h = correlated(64, 4, 16, seed=9, snr_db=0.0)
    h = h * torch.tensor([10**1.5, 10**1.5, 1e-3, 1e-4], dtype=torch.float64)[None, :, None]
    for setting in ("paper", "reference"):
        r = wmmse(h, setting=setting)
        assert bool(torch.isfinite(r.w).all()) and bool(torch.isfinite(r.sum_rate).all())
        assert bool((r.sum_rate >= sum_rate(h, zf_wf(h)) - 1e-9).all())
    u = torch.tensor([[1.0 + 0j, 1e-310 + 1e-310j]], dtype=torch.complex128)
    from mimofm.precoders.wmmse import _switch_off_starved

    assert _switch_off_starved(u, torch.ones(1, 2, dtype=torch.float64))[0, 1] == 0


def _bisected_step(h, w0, power=1.0):
    """One textbook WMMSE update from ``w0`` with μ bisected so that ‖W‖² = power (independent of mimofm's
    Newton solve and of its user-space form)."""
    u, v = wmmse_receivers(h @ w0)
    lo = torch.full(h.shape[:-2], 1e-12, dtype=torch.float64)
    hi = torch.full(h.shape[:-2], 1e6, dtype=torch.float64)
    for _ in range(200):
        mid = (lo * hi).sqrt()
        too_much = total_power(wmmse_precoder(h, u, v, mid)) > power
        lo, hi = torch.where(too_much, mid, lo), torch.where(too_much, hi, mid)
    return wmmse_precoder(h, u, v, (lo * hi).sqrt())


@pytest.mark.parametrize("form", ["user", "antenna"])
def test_start_from_a_given_precoder_is_one_textbook_update(form):
    """``start=W0, max_iter=1``: exactly one WMMSE update from W0 (the warm start of ``papp+wmmse-1``)."""
    h = correlated(8, 4, 16, seed=11, snr_db=5.0)
    w0 = mrt(h)
    r = wmmse(h, start=w0, max_iter=1, tol=0.0, form=form)
    expect = _bisected_step(h, w0)
    torch.testing.assert_close(r.w, expect, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(r.start_sum_rate, sum_rate(h, w0), rtol=1e-10, atol=0)
    assert bool((r.sum_rate > r.start_sum_rate).all())


def test_start_outside_the_row_space_is_projected_and_never_lost():
    """A start with power in the users' null space enters as its row-space part at full power: every
    h_u^H w_k kept, so no rate lost; 0 updates return exactly that projection, and i updates never fall
    below the start."""
    h = rayleigh(6, 3, 10, seed=12, snr_db=0.0)
    w_row = zf_wf(h)
    null = torch.eye(10, dtype=h.dtype) - h.mH @ torch.linalg.solve(h @ h.mH, h)  # [B, N, N] projector
    junk = null @ torch.randn(6, 10, 3, dtype=h.dtype, generator=torch.Generator().manual_seed(0))
    w0 = 0.5 * (w_row + junk)  # less than full power in the row space, the rest wasted
    r0 = wmmse(h, start=w0, max_iter=0, tol=0.0)
    torch.testing.assert_close(r0.w, w_row / total_power(w_row).sqrt()[:, None, None], rtol=1e-9, atol=1e-10)
    assert bool((r0.sum_rate >= sum_rate(h, w0)).all())
    r2 = wmmse(h, start=w0, max_iter=2, tol=0.0)
    assert bool((r2.sum_rate >= r0.sum_rate - 1e-12).all())


def test_start_among_the_classical_starts_keeps_the_best():
    """``start_only=False``: the given start competes with ZF-WF/RZF/MRT; a poor start (MRT at high SNR)
    loses to ZF-WF and the result equals the paper setting's, a start better than all of them is kept."""
    h = correlated(8, 4, 16, seed=13, snr_db=30.0)
    poor = wmmse(h, start=mrt(h), start_only=False, max_iter=2, tol=0.0)
    plain = wmmse(h, max_iter=2, tol=0.0)
    torch.testing.assert_close(poor.w, plain.w, rtol=1e-12, atol=1e-13)
    good = wmmse(h, setting="reference").w  # converged: a better start than any classical one
    kept = wmmse(h, start=good, start_only=False, max_iter=0, tol=0.0)
    torch.testing.assert_close(kept.sum_rate, sum_rate(h, good), rtol=1e-9, atol=0)
    assert bool((kept.start_sum_rate > plain.start_sum_rate).all())


def test_start_is_checked():
    h = rayleigh(2, 2, 4)
    with pytest.raises(MimofmInputError, match="start"):
        wmmse(h, start=torch.zeros(2, 4, 3, dtype=h.dtype))
    with pytest.raises(MimofmInputError, match="start"):
        wmmse(h, start=mrt(h), setting="reference")
