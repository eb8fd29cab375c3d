import pytest
import torch

from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.hybrid import phase_extraction_hybrid
from mimofm.precoders.registry import run_precoder
from mimofm.precoders.wmmse import wmmse
from tests.conftest import correlated, rayleigh


@pytest.mark.parametrize("num_rf", [4, 8])
def test_hybrid_structure_power_and_rate_between_zf_like_and_fully_digital(num_rf):
    h = rayleigh(64, 4, 32, seed=3, snr_db=10.0)
    hp = phase_extraction_hybrid(h, num_rf)
    torch.testing.assert_close(hp.analog.abs(), torch.ones_like(hp.analog.abs()))
    torch.testing.assert_close(hp.analog @ hp.digital, hp.w)
    torch.testing.assert_close(hp.w.abs().square().sum((-2, -1)), torch.ones(64, dtype=torch.float64))
    r = sum_rate(h, hp.w).mean()
    assert r <= sum_rate(h, wmmse(h).w).mean() * 1.001
    assert r > 0.8 * sum_rate(h, wmmse(h).w).mean()


def test_more_rf_chains_do_not_hurt_and_registry_entries_run():
    h = correlated(64, 4, 32, seed=5, snr_db=20.0)
    r4 = sum_rate(h, phase_extraction_hybrid(h, 4).w).mean()
    r8 = sum_rate(h, phase_extraction_hybrid(h, 8).w).mean()
    assert r8 >= r4 * 0.99
    out = run_precoder("hybrid-pe-8", h[:3])
    assert out.w.shape == (3, 32, 4)
    with pytest.raises(MimofmInputError, match="num_rf"):
        phase_extraction_hybrid(h, 3)


def test_repeated_phase_columns_do_not_break_the_digital_stage():
    # one user twice: its WMMSE and matched-filter phase columns repeat, the analog matrix is rank deficient
    h = rayleigh(8, 3, 16, seed=7, snr_db=20.0)
    h = torch.cat([h, h[:, :1]], 1)
    hp = phase_extraction_hybrid(h, 8)
    assert bool(torch.isfinite(hp.w).all())
    torch.testing.assert_close(hp.analog @ hp.digital, hp.w)
    torch.testing.assert_close(hp.w.abs().square().sum((-2, -1)), torch.ones(8, dtype=torch.float64))
