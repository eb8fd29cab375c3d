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
