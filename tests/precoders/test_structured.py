"""Structured precoders (:mod:`mimofm.precoders.structured`): the RZF start, the optimal structure,
the hybrid structure's power, and the exact power and antenna steps of fm's rate-target mode."""

import torch

from mimofm.core.energy import total_power
from mimofm.core.rates import sum_rate, user_rates
from mimofm.precoders.hybrid import phase_extraction_hybrid
from mimofm.precoders.linear import rzf
from mimofm.precoders.qos import qos_power_min
from mimofm.precoders.structured import (
    SERVED_ALL_ANTENNAS,
    SERVED_MASKED,
    SERVED_OWN,
    SERVED_QOS,
    exact_rate_powers,
    exact_rates_or_keep,
    hybrid_structure,
    prune_antennas,
    rzf_directions,
    structured_precoder,
    structured_precoder_real,
    transmit,
)
from mimofm.precoders.wmmse import wmmse
from tests.conftest import correlated


def test_structured_precoder_starts_at_rzf_and_reaches_the_optimal_structure():

    h = correlated(6, 4, 16, seed=3, snr_db=10.0)
    k = h.shape[-2]
    eq = torch.full((6, k), 1.0 / k)
    w = structured_precoder(h, eq, eq).to(torch.complex128)
    ref = rzf(h)  # H^H (H H^H + K I)^{-1}, one scale: same directions; here columns get equal power
    cos = (w.conj() * ref).sum(-2).abs() / (w.norm(dim=-2) * ref.norm(dim=-2))
    torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-5)
    torch.testing.assert_close(w.norm(dim=-2).square(), eq.double(), rtol=1e-5, atol=0)
    # the WMMSE optimum has this structure: its powers with the fitted λ reproduce its sum rate
    opt = wmmse(h)
    p = opt.w.abs().square().sum(-2)
    lam = torch.nn.Parameter(torch.zeros(6, k))
    adam = torch.optim.Adam([lam], lr=0.1)
    for _ in range(150):
        w = structured_precoder(h, torch.softmax(lam, -1), p / p.sum(-1, keepdim=True))
        loss = -sum_rate(h, w.to(torch.complex128)).mean()
        adam.zero_grad()
        loss.backward()
        adam.step()
    assert float(-loss.detach()) >= 0.99 * float(opt.sum_rate.mean())


def test_structured_precoder_gradient_is_finite_when_a_power_share_underflows_to_zero():
    """A softmax share of exactly 0 (float32 underflow) gave NaN gradients through √p (papp-hbf skipped
    updates)."""
    h = correlated(2, 4, 16, seed=5, snr_db=20.0)
    logits = torch.tensor([[0.0, 1.0, -200.0, 2.0], [0.5, 0.0, 0.0, 0.0]], requires_grad=True)
    p = torch.softmax(logits, -1)
    assert float(p[0, 2].detach()) == 0.0
    lam = torch.full((2, 4), 0.25, requires_grad=True)
    w = structured_precoder(h, lam, p).to(torch.complex128)
    sum_rate(h, w).sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(lam.grad).all()
    assert float(w[0, :, 2].abs().max().detach()) < 1e-100  # the zero-share user still gets no power


def test_hybrid_structure_is_exact_in_power_and_starts_near_the_classical_hybrid():

    h = correlated(5, 4, 16, seed=4).to(torch.complex128) * 3.0
    g = torch.Generator().manual_seed(0)
    lam_a, lam_d = (
        torch.rand(5, 4, generator=g, dtype=torch.float64),
        torch.rand(5, 4, generator=g, dtype=torch.float64),
    )
    p = torch.softmax(torch.randn(5, 4, generator=g, dtype=torch.float64), -1)
    for r in (4, 8):
        a, wd = hybrid_structure(h, lam_a, lam_d, p, r)
        assert a.shape == (5, 16, r) and wd.shape == (5, r, 4)
        torch.testing.assert_close(a.abs(), torch.ones_like(a.real))
        w = a @ wd
        # the whitened digital stage: unit-norm columns of W̃ scaled by √p -> user powers are exactly p
        torch.testing.assert_close(w.abs().square().sum(-2), p, rtol=1e-4, atol=1e-8)
        # the analog stage only restricts: the same digital parameters on the full array do no worse here
        full = sum_rate(h, structured_precoder(h, lam_d, p).to(torch.complex128))
        assert float(sum_rate(h, w).mean()) <= float(full.mean()) + 1e-6
    # its RZF start is in the classical phase-extraction + WMMSE baseline's range
    eq = torch.full((5, 4), 0.25, dtype=torch.float64)
    a, wd = hybrid_structure(h, eq, eq, eq, 8)
    ratio = sum_rate(h, a @ wd).mean() / sum_rate(h, phase_extraction_hybrid(h, 8).w).mean()
    assert 0.7 < float(ratio) < 1.1


def test_exact_power_layer_meets_feasible_requests_with_the_least_power():

    h = correlated(64, 4, 16, seed=3, snr_db=15.0)
    w = rzf(h)
    req = 0.5 * user_rates(h, w)  # half of what RZF reaches at full power: feasible with RZF's beams
    w_e, ok = exact_rate_powers(h, w, req)
    assert bool(ok.all())
    torch.testing.assert_close(user_rates(h, w_e.to(h.dtype)), req, rtol=1e-9, atol=1e-12)
    assert bool((total_power(w_e) < 1).all())
    # least power: scaling every stream down a little misses some request
    assert bool((user_rates(h, 0.99 * w_e.to(h.dtype)) < req - 1e-9).any(-1).all())
    # requests beyond the budget (and zero requests: zero power) are recognised
    big = req.clone()
    big[:, 0] = 30.0
    assert not bool(exact_rate_powers(h, w, big)[1].any())
    zero = req.clone()
    zero[:, 1] = 0.0
    w_z, ok_z = exact_rate_powers(h, w, zero)
    assert bool(ok_z.all()) and float(w_z[..., 1].abs().max()) == 0.0


def test_antenna_switch_off_keeps_the_rates_and_lowers_the_energy():

    h = correlated(16, 4, 16, seed=6, snr_db=20.0)
    req = 0.3 * user_rates(h, rzf(h))
    w, ok = exact_rate_powers(h, rzf(h), req)
    om = torch.ones(16, 16, dtype=torch.float64)
    w_p, om_p = prune_antennas(h, w, om, req, ok, 20.0, 1.0)
    torch.testing.assert_close(user_rates(h, w_p.to(h.dtype)), req, rtol=1e-8, atol=1e-10)
    e = lambda w_, o: 20.0 * total_power(w_) + o.sum(-1)  # noqa: E731
    assert bool((e(w_p, om_p) <= e(w, om) + 1e-9).all()) and float(om_p.sum(-1).mean()) < 16
    assert bool((w_p[om_p == 0].abs() == 0).all())  # a switched-off antenna radiates nothing


def test_rzf_directions_are_the_equal_power_structure_and_transmit_scales_to_gamma():
    h = correlated(4, 4, 16, seed=2, snr_db=10.0)
    eq = torch.full((4, 4), 0.25, dtype=torch.float64)
    d = rzf_directions(h)
    assert d.shape == (4, 16, 4) and d.dtype == torch.complex64
    torch.testing.assert_close(d.abs().square().sum(-2), torch.ones(4, 4), rtol=1e-5, atol=0)
    # λ = 1/K: H^H (I + H H^H / K)^{-1} = K · H^H (H H^H + K I)^{-1}; p = 1/K scales unit columns by 1/2
    torch.testing.assert_close(structured_precoder(h, eq, eq), 0.5 * d, rtol=1e-4, atol=1e-5)
    omega = torch.ones(4, 16)
    omega[:, :5] = 0.0
    gamma = torch.tensor([1.0, 0.5, 0.25, 0.1])
    w = transmit(d, omega, gamma)
    torch.testing.assert_close(total_power(w), gamma, rtol=1e-5, atol=0)
    assert float(w[:, :5].abs().max()) == 0.0  # a switched-off antenna radiates nothing


def test_the_real_form_of_the_structure_is_the_complex_one_in_double_and_close_in_single():
    # the 2K x 2K real embedding (the ONNX graphs' form) inverts the same K x K complex system
    h = correlated(5, 6, 24, seed=4, snr_db=20.0)
    lam = torch.softmax(torch.randn(5, 6, generator=torch.Generator().manual_seed(0)), -1)
    p = torch.softmax(torch.randn(5, 6, generator=torch.Generator().manual_seed(1)), -1)
    ref = structured_precoder(h, lam, p).to(torch.complex128)
    w_re, w_im = structured_precoder_real(h.real, h.imag, lam.double(), p.double())
    torch.testing.assert_close(torch.complex(w_re, w_im), ref, rtol=0, atol=1e-6)  # ref is complex64
    w_re, w_im = structured_precoder_real(h.real.float(), h.imag.float(), lam, p)
    assert w_re.dtype == torch.float32
    torch.testing.assert_close(torch.complex(w_re, w_im).to(torch.complex128), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close((w_re.square() + w_im.square()).sum(-2), p, rtol=1e-5, atol=0)


def test_rate_mode_serves_feasible_requests_with_qos_beams_where_the_networks_cannot():
    """The order of fm's exact rate layer: masked beams, then every antenna, then the QoS beams, then the
    head's own precoder, each sample where the earlier steps cannot meet its requests within the budget."""
    h = correlated(
        4, 4, 16, seed=7, snr_db=20.0, rank=2
    )  # users sharing few directions: MRT is interference-bound
    mrt_beams = h.mH.clone()  # [B, N, K]
    ones = torch.ones(4, 16, dtype=torch.float64)
    half = ones.clone()
    half[:, 8:] = 0.0
    half[0, 1:] = 0.0  # one antenna left: its beams all point the same way
    gamma = torch.ones(4, dtype=torch.float64)
    zf_rate = user_rates(h, rzf(h, alpha=1e-9))  # what zero-forcing beams reach
    req = torch.stack(
        [
            0.5 * user_rates(h[0:1], transmit(mrt_beams[0:1], ones[0:1], gamma[0:1]))[0],  # all antennas can
            0.02 * user_rates(h[1:2], transmit(mrt_beams[1:2], half[1:2], gamma[1:2]))[0],  # masked beams can
            0.8 * zf_rate[2],  # only interference-free beams can
            torch.full((4,), 40.0, dtype=torch.float64),  # nothing can
        ]
    )
    w, om, g, served = exact_rates_or_keep(h, mrt_beams, half, gamma, req)
    assert served.tolist() == [SERVED_ALL_ANTENNAS, SERVED_MASKED, SERVED_QOS, SERVED_OWN]
    got = user_rates(h, w.to(h.dtype))
    torch.testing.assert_close(got[:3], req[:3], rtol=1e-6, atol=1e-9)
    q = qos_power_min(h[2:3], req[2:3], max_power=1.0)
    torch.testing.assert_close(g[2], q.power[0], rtol=1e-6, atol=0)  # the QoS beams' least power
    assert bool((om[0] == 1).all()) and om[1].sum() == 8 and bool((om[2] == 1).all()) and om[3].sum() == 8
    _, _, _, without = exact_rates_or_keep(h, mrt_beams, half, gamma, req, qos_fallback=False)
    assert without.tolist() == [SERVED_ALL_ANTENNAS, SERVED_MASKED, SERVED_OWN, SERVED_OWN]
