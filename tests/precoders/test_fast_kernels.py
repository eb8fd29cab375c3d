"""The fast classical kernels against their float64 references: single vs double precision, the NumPy
reference of ``mimofm bench classical``, Sionna's RZF, the μ solver against bisection, and per-sample
retirement in WMMSE against running each sample alone."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mimofm.core.rates import sum_rate
from mimofm.precoders import linear
from mimofm.precoders._common import fro2, gram, regularized_inverse
from mimofm.precoders.wmmse import _solve_mu, wmmse
from tests.conftest import correlated

ROOT = Path(__file__).resolve().parents[2]


def _numpy_reference():
    spec = importlib.util.spec_from_file_location(
        "numpy_reference", ROOT / "benchmarks" / "numpy_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["mrt", "zf", "zf_wf", "rzf", "rzf_equal_power"])
def test_single_precision_matches_double(name):
    h = correlated(64, 4, 32, seed=11, snr_db=20)
    fn = getattr(linear, name)
    w64 = fn(h, precision="double")
    w32 = fn(h.to(torch.complex64), precision="single")
    assert w32.dtype == torch.complex64
    r64, r32 = sum_rate(h, w64), sum_rate(h, w32.to(torch.complex128))
    torch.testing.assert_close(r32, r64, rtol=2e-4, atol=0)
    torch.testing.assert_close(fro2(w32.to(torch.complex128)), fro2(w64), rtol=1e-5, atol=0)


def test_ill_conditioned_samples_are_redone_in_double():
    h = correlated(8, 4, 16, seed=12, snr_db=10).to(torch.complex64)
    h[3, 1] = h[3, 0] + 3e-3 * h[3, 1]  # users 0 and 1 nearly collinear: cond(G) ~ 1e6
    x32, c32 = regularized_inverse(h, gram(h), 0.0, "single")
    g32 = gram(h)
    assert float(torch.linalg.cond(g32[3].to(torch.complex128))) > 1e5  # beyond single's limit
    h64 = h.to(torch.complex128)
    x64 = torch.linalg.inv(gram(h64))
    torch.testing.assert_close(x32[3].to(torch.complex128), x64[3], rtol=1e-5, atol=0)
    torch.testing.assert_close(c32[3].double(), torch.diagonal(x64[3]).real, rtol=1e-5, atol=0)


def test_rank_deficient_zero_forcing_is_the_pseudo_inverse():
    h = correlated(4, 3, 8, seed=13, snr_db=10)
    h[1, 2] = 2.0 * h[1, 0]  # rank 2: the Gram matrix is singular
    w = linear.zf(h)
    ref = torch.linalg.pinv(h[1])
    ref = ref * torch.sqrt(1.0 / fro2(ref))
    torch.testing.assert_close(w[1], ref, rtol=1e-6, atol=1e-9)


def test_rzf_equal_power_puts_p_over_k_on_every_user_and_matches_sionna():
    h = correlated(16, 4, 16, seed=14, snr_db=10)
    w = linear.rzf_equal_power(h, power=2.0)
    torch.testing.assert_close(w.abs().square().sum(-2), torch.full((16, 4), 0.5, dtype=torch.float64))
    precoding = pytest.importorskip("sionna.phy.mimo.precoding")
    # α = K σ²/P = 4/2; Sionna's columns have unit norm
    theirs = precoding.rzf_precoding_matrix(h, alpha=2.0, precision="double")
    torch.testing.assert_close(w, theirs * 0.5**0.5, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["zf", "zf-wf", "rzf", "rzf-eq", "mrt"])
def test_linear_kernels_equal_the_numpy_reference(method):
    ref = _numpy_reference()
    h = correlated(32, 4, 16, seed=15, snr_db=10)
    ours = {
        "zf": linear.zf,
        "zf-wf": linear.zf_wf,
        "rzf": linear.rzf,
        "rzf-eq": linear.rzf_equal_power,
        "mrt": linear.mrt,
    }[method](h)
    theirs = torch.from_numpy(ref.REFERENCES[method](h.numpy()))
    torch.testing.assert_close(ours, theirs, rtol=1e-8, atol=1e-11)


def test_truncated_wmmse_equals_the_numpy_reference():
    ref = _numpy_reference()
    h = correlated(32, 4, 16, seed=16, snr_db=15)
    for i in (1, 3):
        out = wmmse(h, max_iter=i, tol=0.0)
        assert bool((out.iterations == i).all())
        theirs = torch.from_numpy(ref.wmmse(h.numpy(), iterations=i)[0])
        torch.testing.assert_close(sum_rate(h, out.w), sum_rate(h, theirs), rtol=1e-9, atol=0)


def _bisect(lam, num, power, steps=200):
    safe = lam > 0

    def f(mu):
        return np.where(safe, num / np.where(safe, lam + mu, 1.0) ** 2, 0.0).sum()

    if f(0.0) <= power:
        return 0.0
    lo, hi = 0.0, np.sqrt(num[safe].sum() / power)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > power else (lo, mid)
    return hi


def test_newton_mu_equals_bisection():
    g = np.random.default_rng(0)
    lam = g.exponential(size=(300, 6)) * 10.0 ** g.uniform(-6, 3, size=(300, 1))
    lam[::7, 0] = 0.0  # numerical null space
    lam[::11, :2] = 1e-12 * lam[::11, 2:3]  # nearly singular
    num = g.exponential(size=(300, 6)) * 10.0 ** g.uniform(-3, 3, size=(300, 1))
    power = 1.0
    mu = _solve_mu(torch.from_numpy(lam), torch.from_numpy(num), power).numpy()
    expected = np.array([_bisect(a, b, power) for a, b in zip(lam, num)])
    assert (expected == 0).any() and (expected > 0).any()
    np.testing.assert_allclose(mu, expected, rtol=1e-10, atol=1e-14)


def test_retiring_converged_samples_changes_no_result():
    h = correlated(12, 4, 16, seed=17, snr_db=20)
    batch = wmmse(h)
    assert len(set(batch.iterations.tolist())) > 1  # samples stop at different iterations
    for b in range(h.shape[0]):
        alone = wmmse(h[b : b + 1])
        assert int(alone.iterations[0]) == int(batch.iterations[b])
        torch.testing.assert_close(alone.sum_rate[0], batch.sum_rate[b], rtol=1e-12, atol=0)
        torch.testing.assert_close(alone.w[0], batch.w[b], rtol=1e-9, atol=1e-12)


def test_single_precision_wmmse_matches_double():
    h = correlated(64, 4, 32, seed=18, snr_db=10)
    r64 = wmmse(h, max_iter=5, tol=0.0).sum_rate
    r32 = wmmse(h.to(torch.complex64), max_iter=5, tol=0.0, precision="single").sum_rate
    torch.testing.assert_close(r32, r64, rtol=1e-4, atol=0)


@pytest.mark.parametrize("snr_db", [0.0, 30.0])
def test_dpc_newton_agrees_with_water_filling_alone(snr_db, monkeypatch):
    from mimofm.precoders import bounds

    h = correlated(64, 4, 16, seed=19, snr_db=snr_db)
    fast = bounds.dpc_sum_capacity(h)
    assert int(fast.iterations.max()) <= 10  # the Newton phase finishes every sample
    monkeypatch.setattr(bounds, "_NEWTON_STEPS", 0)
    slow = bounds.dpc_sum_capacity(h)
    assert float(slow.iterations.double().mean()) > 3 * float(fast.iterations.double().mean())
    torch.testing.assert_close(fast.sum_rate, slow.sum_rate, rtol=1e-8, atol=0)
    assert bool((fast.upper_bound >= slow.sum_rate - 1e-9).all())
