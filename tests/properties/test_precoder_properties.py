"""Property-based tests of the core invariants (hypothesis): any gain scale, any SNR, degenerate channels."""

import os

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimofm.core.energy import total_power
from mimofm.core.rates import sum_rate
from mimofm.precoders.bounds import dpc_sum_capacity
from mimofm.precoders.linear import mrt, rzf, zf, zf_wf
from mimofm.precoders.wmmse import wmmse

# CI runs a bounded number of examples; MIMOFM_HYPOTHESIS_EXAMPLES=5000 for a long run
EXAMPLES = int(os.environ.get("MIMOFM_HYPOTHESIS_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def channels(draw):
    """A multi-user channel [2, K, N] in raw-gain units and a noise power giving a median SNR in -20..80 dB.

    User gains span up to 12 orders of magnitude; optionally two users share a direction (rank
    deficient) or all users come from a 1-2 dimensional subspace (ill conditioned).
    """
    k = draw(st.integers(1, 4))
    n = draw(st.integers(k, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    h = (rng.normal(size=(2, k, n)) + 1j * rng.normal(size=(2, k, n))) / np.sqrt(2)
    kind = draw(st.sampled_from(["iid", "same-direction", "low-rank"]))
    if kind == "same-direction" and k >= 2:
        h[:, 1] = h[:, 0] * (0.3 - 0.7j)
    elif kind == "low-rank":
        basis = rng.normal(size=(2, min(2, n), n)) + 1j * rng.normal(size=(2, min(2, n), n))
        h = (rng.normal(size=(2, k, basis.shape[1])) + 0j) @ basis + 1e-6 * h
    gains_db = rng.uniform(-120.0, 0.0, size=(2, k, 1))  # 12 orders of magnitude of power gain
    base_db = draw(st.floats(-140.0, -40.0))
    h = h * 10 ** ((base_db + gains_db) / 20)
    median_snr_db = draw(st.floats(-20.0, 80.0))
    g = np.median(np.sum(np.abs(h) ** 2, axis=-1))
    noise = g / 10 ** (median_snr_db / 10)
    return torch.from_numpy(h.astype(np.complex128)), float(noise)


@SETTINGS
@given(channels())
def test_finite_and_power_constraint(hn):
    h, noise = hn
    for fn in (mrt, zf, zf_wf, rzf):
        w = fn(h, power=1.0) if fn in (mrt, zf) else fn(h, power=1.0, noise_power=noise)
        assert bool(torch.isfinite(w).all())
        assert bool((total_power(w) <= 1.0 + 1e-9).all())
    r = wmmse(h, noise_power=noise)
    assert bool(torch.isfinite(r.w).all()) and bool(torch.isfinite(r.sum_rate).all())
    assert bool((total_power(r.w) <= 1.0 + 1e-9).all())


@SETTINGS
@given(channels())
def test_order_dpc_wmmse_zf(hn):
    h, noise = hn
    hs = h / noise**0.5  # unit noise
    w = wmmse(hs).sum_rate
    rates = {
        name: sum_rate(hs, fn(hs)) for name, fn in (("zf", zf), ("zf-wf", zf_wf), ("rzf", rzf), ("mrt", mrt))
    }
    for name, r in rates.items():
        assert bool(torch.isfinite(r).all())
        assert bool((w >= r - 1e-9 * r.abs().clamp_min(1.0)).all()), name
    d = dpc_sum_capacity(hs)
    assert bool(torch.isfinite(d.sum_rate).all())
    assert bool((d.upper_bound >= w - 1e-9 * w.abs().clamp_min(1.0)).all())


@SETTINGS
@given(channels())
def test_neural_precoder_finite_and_power_constraint(hn):
    """fm (shipped checkpoint shape, random weights here) on any finite channel: finite W, ‖W‖² = γ ≤ 1."""
    from mimofm.models.fm import FMConfig, FMPrecoder

    h, noise = hn
    k, n = h.shape[-2], h.shape[-1]
    torch.manual_seed(0)
    model = FMPrecoder(
        FMConfig(num_bs_ant=n, num_ue=k, d_model=16, num_attention_heads=2, num_layers=1, ffn=32, dropout=0.0)
    )
    model.eval()
    with torch.no_grad():
        hs = (h / noise**0.5).to(torch.complex64)
        for rates in (None, torch.rand(h.shape[:-1])):
            out = model(hs, rates)
            assert bool(torch.isfinite(out.w).all())
            p = total_power(out.w.to(torch.complex128))
            assert bool((p <= 1.0 + 1e-5).all())
            torch.testing.assert_close(p.float(), out.gamma.float(), rtol=1e-4, atol=1e-6)
