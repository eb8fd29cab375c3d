import doctest

import pytest
import torch

import mimofm
import mimofm.api
from mimofm.core.validation import MimofmInputError


def test_docstring_examples_run():
    torch.manual_seed(0)
    res = doctest.testmod(mimofm.api, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 6 and res.failed == 0


def test_every_registry_precoder_loads_and_bounds_are_refused():
    h = torch.randn(3, 2, 8, dtype=torch.complex128)
    for name in ("mrt", "zf", "zf-wf", "rzf", "wmmse"):
        w = mimofm.load_precoder(name)(h)
        assert w.shape == (3, 8, 2)
        assert float(mimofm.total_power(w).max()) <= 1 + 1e-9
    with pytest.raises(MimofmInputError, match="bound"):
        mimofm.load_precoder("dpc")
    with pytest.raises(MimofmInputError, match="no rate-target mode"):
        mimofm.load_precoder("zf")(h, rate_targets=torch.ones(3, 2))


def test_fm_rate_targets_are_checked():
    fm = mimofm.load_precoder("fm")
    h = torch.randn(2, 4, 64, dtype=torch.complex64)
    with pytest.raises(MimofmInputError, match="rate_targets"):
        fm(h, rate_targets=-torch.ones(2, 4))
    with pytest.raises(MimofmInputError, match="1 <= users <= antennas"):
        fm(torch.randn(2, 9, 8, dtype=torch.complex64))
    with pytest.raises(MimofmInputError, match="4 users × 64 antennas"):  # a fixed-configuration checkpoint
        mimofm.load_precoder("papp-lite")(torch.randn(2, 4, 32, dtype=torch.complex64))


@pytest.mark.parametrize("name", ["fm", "papp"])
def test_fm_and_papp_serve_any_configuration_batched_or_not(name):
    f = mimofm.load_precoder(name)
    g = torch.Generator().manual_seed(0)
    for k, n in [(1, 8), (2, 32), (8, 64), (16, 128)]:
        h = torch.randn(3, 2, k, n, dtype=torch.complex64, generator=g) * 3
        w = f(h)  # two batch axes
        assert w.shape == (3, 2, n, k)
        torch.testing.assert_close(mimofm.total_power(w), torch.ones(3, 2), rtol=1e-5, atol=0)
        torch.testing.assert_close(f(h[1, 0]), w[1, 0], rtol=1e-4, atol=1e-6)  # unbatched [K, N]


def test_papp_is_served_like_fm():
    papp = mimofm.load_precoder("papp")
    h = torch.randn(3, 4, 64, dtype=torch.complex64)
    w = papp(h)
    assert w.shape == (3, 64, 4)
    torch.testing.assert_close(mimofm.total_power(w), torch.ones(3), rtol=1e-5, atol=0)
    with pytest.raises(MimofmInputError, match="no rate-target mode"):
        papp(h, rate_targets=torch.ones(3, 4))


def test_wifoe_api_needs_a_known_task_and_is_seedable():
    import pytest
    import torch

    from mimofm.core.validation import MimofmInputError

    with pytest.raises(MimofmInputError, match="task="):
        mimofm.load_precoder("wifoe")
    with pytest.raises(MimofmInputError, match="no branch for task 'T11'"):
        mimofm.load_precoder("wifoe", task="T11")
    wf = mimofm.load_precoder("wifoe", task="T4")
    h = torch.randn(3, 4, 64, dtype=torch.complex64)
    run = lambda **kw: wf(h, generator=torch.Generator().manual_seed(0), **kw)  # noqa: E731
    # a stated received SNR fixes the reference gain: 16 dB and pilots at 10 dB mean E_s = 10·64/10^1.6,
    # whatever else is in the batch
    torch.testing.assert_close(run(snr_db=16.0, pilot_snr_db=10.0), run(pilot_energy=10 * 64 / 10**1.6))
    h2 = h.clone()
    h2[1:] *= 3  # other samples of the batch change: sample 0 is precoded the same
    torch.testing.assert_close(
        wf(h2, generator=torch.Generator().manual_seed(0), snr_db=16.0, pilot_snr_db=10.0)[0],
        run(snr_db=16.0, pilot_snr_db=10.0)[0],
    )
    # nothing stated: the shipped checkpoint's rule, pilots at the data SNR + 4 dB (20 dB at 16 dB)
    torch.testing.assert_close(run(snr_db=16.0), run(pilot_energy=100 * 64 / 10**1.6))
    g = float(h.abs().square().sum(-1).flatten().median())  # without snr_db: the batch's median user
    torch.testing.assert_close(run(pilot_snr_db=10.0), run(pilot_energy=10 * 64 / g))
    with pytest.raises(MimofmInputError, match="not both"):
        wf(h, pilot_energy=1.0, pilot_snr_db=0.0)
    a = wf(h, generator=torch.Generator().manual_seed(0))
    b = wf(h, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (3, 64, 4)


def test_refined_precoders_take_a_checkpoint_and_gain_over_their_base():
    from mimofm.core.rates import sum_rate
    from mimofm.models.zoo import shipped_checkpoint
    from tests.conftest import correlated

    h = correlated(16, 4, 64, seed=0, snr_db=0.0).to(
        torch.complex64
    )  # users sharing directions, spread gains
    for base in ("fm", "papp"):
        plain = mimofm.load_precoder(base)(h)
        refined = mimofm.load_precoder(f"{base}-refined", checkpoint=str(shipped_checkpoint(base)))(h)
        torch.testing.assert_close(mimofm.total_power(refined), torch.ones(16), rtol=1e-5, atol=0)
        h64 = h.to(torch.complex128)
        assert float(sum_rate(h64, refined.to(torch.complex128)).mean()) > float(
            sum_rate(h64, plain.to(torch.complex128)).mean()
        )
    with pytest.raises(MimofmInputError, match="maximum-sum-rate"):
        mimofm.load_precoder("fm-refined")(h, rate_targets=torch.ones(16, 4))


def test_wmmse_polished_precoders_are_one_update_on_the_network_and_never_below_it():
    from mimofm.core.rates import sum_rate
    from mimofm.precoders.wmmse import wmmse
    from tests.conftest import correlated

    h = correlated(12, 6, 32, seed=3, snr_db=0.0).to(torch.complex64)
    h64 = h.to(torch.complex128)
    for base in ("fm", "papp"):
        plain = mimofm.load_precoder(base)(h)
        polished = mimofm.load_precoder(f"{base}+wmmse-1")(h)
        expect = wmmse(h64, start=plain.to(torch.complex128), max_iter=1, tol=0.0).w
        torch.testing.assert_close(polished, expect.to(h.dtype), rtol=1e-4, atol=1e-5)
        assert bool(
            (
                sum_rate(h64, polished.to(torch.complex128))
                >= sum_rate(h64, plain.to(torch.complex128)) - 1e-5
            ).all()
        )
    two = mimofm.load_precoder("papp+wmmse-2")(h).to(torch.complex128)
    assert float(sum_rate(h64, two).mean()) > float(sum_rate(h64, polished.to(torch.complex128)).mean())
    with pytest.raises(MimofmInputError, match="maximum-sum-rate"):
        mimofm.load_precoder("fm+wmmse-1")(h, rate_targets=torch.ones(12, 6))
