import math

import pytest

from mimofm.core.linkbudget import LinkBudget, SNRSpec, dbm_to_w, median_gain
from mimofm.core.validation import MimofmInputError
from tests.conftest import rayleigh


def test_paper_defaults_20w_10db():
    lb = LinkBudget(noise_dbm=-90.0)
    assert dbm_to_w(lb.tx_power_dbm) == pytest.approx(20.0, rel=1e-4)
    assert lb.effective_tx_power_w == pytest.approx(2.0, rel=1e-4)
    assert lb.scale() == pytest.approx(math.sqrt(2.0 / 1e-12), rel=1e-4)


def test_site_relative_snr_sets_the_median():
    h = rayleigh(1, 500, 16, seed=3, snr_db=-100)[0]  # raw-gain-like magnitudes
    for snr in (-10.0, 0.0, 25.0, 70.0):
        lb = LinkBudget().with_snr(snr, h)
        assert lb.median_snr_db(h) == pytest.approx(snr, abs=1e-9)
        scale, _ = SNRSpec(snr_db=snr).scale_for(h, LinkBudget())
        g = (h * scale).abs().square().sum(-1).median()
        assert 10 * math.log10(float(g)) == pytest.approx(snr, abs=1e-6)


def test_plain_snr_and_absolute_noise():
    h = rayleigh(1, 10, 4)[0]
    scale, _ = SNRSpec(snr_db=20.0, relative_to="none").scale_for(h, LinkBudget())
    assert scale == pytest.approx(10.0)
    scale, b = SNRSpec(noise_dbm=-80.0).scale_for(h, LinkBudget(tx_power_dbm=30.0, system_loss_db=0.0))
    assert scale == pytest.approx(math.sqrt(1.0 / 1e-11))
    assert b.noise_dbm == -80.0
    assert median_gain(h) > 0


def test_bad_specs_raise():
    with pytest.raises(MimofmInputError, match="exactly one"):
        SNRSpec(snr_db=1.0, noise_dbm=-90.0)
    with pytest.raises(MimofmInputError, match="system_loss_db"):
        LinkBudget(system_loss_db=-3.0)
    with pytest.raises(MimofmInputError, match="snr_db"):
        SNRSpec(snr_db=float("inf"))


def test_per_antenna_snr_puts_n_t_times_the_snr_at_the_median():
    h = rayleigh(1, 500, 32, seed=4)[0]  # [positions, N_t]
    scale, _ = SNRSpec(snr_db=5.0, relative_to="per-antenna").scale_for(h, LinkBudget())
    assert median_gain(h * scale) == pytest.approx(32 * 10**0.5, rel=1e-9)
    rec, _ = SNRSpec(snr_db=5.0, relative_to="received").scale_for(h, LinkBudget())
    site, _ = SNRSpec(snr_db=5.0).scale_for(h, LinkBudget())
    assert rec == site and median_gain(h * rec) == pytest.approx(10**0.5, rel=1e-9)


def test_fdd_operating_point_gain_and_pilot_energy():
    from mimofm.core.linkbudget import FDDOperatingPoint

    n = 64
    rx = FDDOperatingPoint(10.0)  # received: E‖h‖² = SNR; full-energy pilots arrive at SNR − 10·log10 N_t
    assert rx.gain(n) == pytest.approx(10.0) and rx.pilot_energy(n) == 1.0
    assert rx.resolved_pilot_snr_db(n) == pytest.approx(10.0 - 10 * math.log10(n))
    pa = FDDOperatingPoint(10.0, "per-antenna")  # the FDD lineage: a full-energy pilot arrives at the SNR
    assert pa.gain(n) == pytest.approx(640.0) and pa.resolved_pilot_snr_db(n) == pytest.approx(10.0)
    assert pa.channel_scale(n) == pytest.approx(10**0.5)  # normalized tasks: E‖h‖² = N_t -> N_t·SNR
    for conv in ("received", "per-antenna"):
        op = FDDOperatingPoint(16.0, conv, pilot_snr_db=7.5)
        assert op.resolved_pilot_snr_db(n) == pytest.approx(7.5)
        assert op.pilot_energy(n) * op.gain(n) / n == pytest.approx(10**0.75)
    assert FDDOperatingPoint(16.0, "received", 16.0 - 10 * math.log10(n)).pilot_energy(n) == pytest.approx(
        1.0
    )
    with pytest.raises(MimofmInputError, match="convention"):
        FDDOperatingPoint(10.0, "beamformed")
    with pytest.raises(MimofmInputError, match="pilot_snr_db"):
        FDDOperatingPoint(10.0, pilot_snr_db=float("nan"))
