import math

import pytest
import torch

from mimofm.core.energy import apply_mask_and_scale, energy, normalize_power, total_power
from mimofm.core.rates import sinr, sum_rate, user_rates
from mimofm.core.validation import MimofmInputError
from tests.conftest import rayleigh


def test_single_user_rate_is_log2_one_plus_snr_norm():
    h = rayleigh(5, 1, 8, seed=1)
    w = h.mH / h.norm(dim=-1, keepdim=True).mH  # unit-power MRT
    expected = torch.log2(1 + h.abs().square().sum((-2, -1)))
    torch.testing.assert_close(sum_rate(h, w), expected)


def test_sinr_matches_definition_elementwise():
    h = rayleigh(3, 3, 5, seed=2)
    w = rayleigh(3, 5, 3, seed=3)
    s = sinr(h, w, noise_power=0.5)
    for b in range(3):
        for u in range(3):
            sig = abs(h[b, u] @ w[b, :, u]) ** 2
            intf = sum(abs(h[b, u] @ w[b, :, j]) ** 2 for j in range(3) if j != u)
            assert math.isclose(s[b, u].item(), (sig / (intf + 0.5)).item(), rel_tol=1e-12)


def test_rates_decrease_with_noise_and_sum():
    h, w = rayleigh(4, 2, 4, seed=4), rayleigh(4, 4, 2, seed=5)
    assert bool((user_rates(h, w, 1.0) > user_rates(h, w, 2.0)).all())
    torch.testing.assert_close(sum_rate(h, w), user_rates(h, w).sum(-1))


def test_normalize_power_and_mask():
    w = rayleigh(6, 8, 3, seed=6)
    wn = normalize_power(w, 2.0)
    torch.testing.assert_close(total_power(wn), torch.full((6,), 2.0, dtype=torch.float64))
    omega = torch.zeros(6, 8, dtype=torch.float64)
    omega[:, :4] = 1
    gamma = torch.full((6,), 0.25, dtype=torch.float64)
    wt = apply_mask_and_scale(normalize_power(w), omega, gamma)
    assert bool((wt[:, 4:] == 0).all())
    assert bool((total_power(wt) <= 0.25 + 1e-12).all())


def test_energy_model_eq4():
    omega = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    gamma = torch.tensor([0.5])
    assert energy(omega, gamma, p_tx_w=20.0, p_rf_w=1.5).item() == pytest.approx(0.5 * 20 + 3 * 1.5)
    with pytest.raises(MimofmInputError, match="omega"):
        energy(omega * 2, gamma, 20.0, 1.0)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((2, 2, 4), float("nan"), dtype=torch.complex64), "NaN"),
        (torch.zeros(2, 2, 4, dtype=torch.complex64), "all-zero"),
        (torch.ones(2, 2, 4), "complex"),
        (torch.ones(4, dtype=torch.complex64), "rank"),
    ],
)
def test_bad_channels_raise_naming_argument(bad, match):
    w = torch.ones(2, 4, 2, dtype=torch.complex64)
    with pytest.raises(MimofmInputError, match=match) as e:
        sum_rate(bad, w)
    assert "`h`" in str(e.value)


def test_bad_noise_and_precoder_shape():
    h = rayleigh(2, 2, 4, dtype=torch.complex64)
    with pytest.raises(MimofmInputError, match="noise_power"):
        sum_rate(h, torch.ones(2, 4, 2, dtype=torch.complex64), noise_power=-1.0)
    with pytest.raises(MimofmInputError, match="`w`"):
        sum_rate(h, torch.ones(2, 3, 2, dtype=torch.complex64))
