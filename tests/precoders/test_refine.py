import pytest
import torch

from mimofm.channels.bundled import bundled_sites
from mimofm.core.rates import sum_rate, user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.complexity import mimofm_multiplications
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.precoders.refine import refine_multiplications, refine_structure, structure_rates
from mimofm.precoders.structured import structured_precoder
from tests.conftest import correlated


def _start(batch, k, seed):
    g = torch.Generator().manual_seed(seed)
    lam = torch.rand(batch, k, generator=g, dtype=torch.float64) + 0.1
    return lam / lam.sum(-1, keepdim=True), torch.softmax(
        torch.randn(batch, k, generator=g, dtype=torch.float64), -1
    )


def test_user_space_rates_equal_the_rates_of_the_full_precoder():
    h = correlated(16, 4, 32, seed=0, snr_db=20.0)
    lam, p = _start(16, 4, 1)
    w = structured_precoder(h, lam, p).to(torch.complex128)
    torch.testing.assert_close(structure_rates(h @ h.mH, lam, p), user_rates(h, w), rtol=1e-5, atol=1e-6)


def test_refinement_raises_the_sum_rate_and_keeps_power_shares():
    h = correlated(64, 4, 32, seed=2, snr_db=20.0)
    lam, p = _start(64, 4, 3)
    before = sum_rate(h, structured_precoder(h, lam, p).to(torch.complex128))
    with torch.no_grad():  # works under no_grad, as at deployment
        lam2, p2 = refine_structure(h, lam, p, steps=20)
    after = sum_rate(h, structured_precoder(h, lam2, p2).to(torch.complex128))
    assert float(after.mean()) > float(before.mean()) * 1.02
    assert bool((after >= before - 1e-9).all())  # the best iterate is kept: never below the start
    torch.testing.assert_close(p2.sum(-1), torch.ones(64, dtype=torch.float64))
    assert bool((lam2 > 0).all())


def test_a_sample_is_refined_the_same_alone_or_in_a_batch():
    h = correlated(8, 4, 16, seed=4, snr_db=10.0)
    lam, p = _start(8, 4, 5)
    batch = refine_structure(h, lam, p, steps=5)
    alone = refine_structure(h[3:4], lam[3:4], p[3:4], steps=5)
    torch.testing.assert_close(batch[0][3:4], alone[0])
    torch.testing.assert_close(batch[1][3:4], alone[1])


def test_zero_steps_is_the_start_and_bad_arguments_are_named():
    h = correlated(2, 3, 8, seed=6)
    lam, p = _start(2, 3, 7)
    out = refine_structure(h, lam, p, steps=0)
    torch.testing.assert_close(out[0], lam)
    torch.testing.assert_close(out[1], p)
    with pytest.raises(MimofmInputError, match="steps"):
        refine_structure(h, lam, p, steps=-1)
    with pytest.raises(MimofmInputError, match="lr"):
        refine_structure(h, lam, p, lr=0.0)


def test_refined_registry_precoders_gain_over_their_starts_on_a_bundled_site():
    cs = bundled_sites()[0]
    cfg = EvalConfig(
        precoders=["rzf", "rzf-refined", "papp", "papp-refined"], snr_db=[20.0], samples=24, positions="test"
    )
    rate = {r["precoder"]: r["sum_rate_mean"] for r in evaluate_sets([cs], cfg)["results"]}
    assert rate["rzf-refined"] > rate["rzf"] and rate["papp-refined"] > rate["papp"]


def test_refined_counts_add_the_steps_to_the_base():
    assert mimofm_multiplications("papp-refined", 4, 64) == pytest.approx(
        mimofm_multiplications("papp", 4, 64) + refine_multiplications(4)
    )
    assert refine_multiplications(4, 0) == 0.0 and refine_multiplications(4, 20) > refine_multiplications(
        4, 10
    )


def test_wmmse_polished_counts_add_the_updates_and_the_start_to_the_network():
    k, n = 4, 64
    base = mimofm_multiplications("papp", k, n)
    one, two = mimofm_multiplications("papp+wmmse-1", k, n), mimofm_multiplications("papp+wmmse-2", k, n)
    update = mimofm_multiplications("wmmse-2", k, n, 2.0) - mimofm_multiplications("wmmse-1", k, n, 1.0)
    assert one > base + mimofm_multiplications("wmmse-1", k, n, 1.0)
    assert two - one == pytest.approx(update)
