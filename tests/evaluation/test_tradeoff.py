import pytest
import torch

from mimofm.channels.io import load_channels
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff, random_requests, relative_rate_error
from mimofm.models.fm import FMConfig, FMPrecoder
from tests.models.toys import FM_TINY, toy_site


def test_random_requests_sum_to_beta_times_the_reference():
    r_max = torch.tensor([4.0, 10.0, 0.5])
    req = random_requests(r_max, 4, 0.3, seed=1)
    assert req.shape == (3, 4) and bool((req >= 0).all())
    torch.testing.assert_close(req.sum(-1), 0.3 * r_max.double())


def test_relative_error_uses_the_floor_for_tiny_requests():
    err = relative_rate_error(torch.tensor([[1.1, 0.05]]), torch.tensor([[1.0, 0.0]]), floor=0.1)
    torch.testing.assert_close(err, torch.tensor([(0.1 / 1.0 + 0.05 / 0.1) / 2]))


def test_baselines_never_need_more_energy_than_fm_at_its_own_rates(tmp_path):
    cs = load_channels(toy_site(tmp_path / "s.h5", 3))
    torch.manual_seed(0)
    model = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()  # untrained: every antenna on
    cfg = TradeoffConfig(
        snr_db=[10.0], betas=[0.5], samples=12, greedy_samples=3, positions="all", exact_rates=False
    )  # the network's own powers and mask
    rows = {r["method"]: r for r in evaluate_tradeoff([cs], cfg, model)["results"]}
    assert set(rows) == {"fm", "qos@fm-rates", "greedy@fm-rates", "qos@requests"}
    fm = rows["fm"]
    assert fm["antennas_on_mean"] == 16 and fm["num_samples"] == 12
    # QoS is the least power at fm's achieved rates with all antennas, greedy may switch some off
    assert rows["qos@fm-rates"]["feasible_fraction"] == 1.0
    assert rows["qos@fm-rates"]["energy_w_mean"] <= fm["energy_w_mean"] * (1 + 1e-6)
    assert rows["qos@fm-rates"]["fm_energy_ratio"] >= 1 - 1e-6
    assert (
        rows["greedy@fm-rates"]["fm_energy_ratio"] >= rows["qos@fm-rates"]["fm_energy_ratio"] - 1e-6
        or rows["greedy@fm-rates"]["energy_w_mean"] <= fm["energy_w_mean"]
    )
    assert rows["qos@requests"]["requested_sum_rate_mean"] == pytest.approx(fm["requested_sum_rate_mean"])


def test_exact_layer_and_switch_off_meet_feasible_requests_with_less_energy(tmp_path):
    cs = load_channels(toy_site(tmp_path / "s.h5", 3))
    torch.manual_seed(0)
    model = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()
    cfg = TradeoffConfig(snr_db=[20.0], betas=[0.2], samples=12, greedy_samples=0, positions="all")
    res = {}
    for exact in (False, True):
        cfg.exact_rates = exact
        res[exact] = {r["method"]: r for r in evaluate_tradeoff([cs], cfg, model)["results"]}
    fm, raw = res[True]["fm"], res[False]["fm"]
    assert fm["rel_rate_error_feasible_mean"] < 1e-4 < raw["rel_rate_error_feasible_mean"]
    assert fm["antennas_on_mean"] < raw["antennas_on_mean"] == 16  # antennas switched off on fm's beams
    assert res[True]["qos@fm-rates"]["fm_energy_ratio"] < 1  # below QoS with every antenna on
    assert raw["qos_beams_fraction"] == 0.0


def test_demanding_feasible_requests_are_met_on_qos_beams_where_fms_cannot(tmp_path):
    """An untrained fm's beams cannot meet large requests; the exact layer then transmits the QoS beams,
    so every request QoS can meet is met, and the share served that way is recorded."""
    cs = load_channels(toy_site(tmp_path / "s.h5", 3))
    torch.manual_seed(0)
    model = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()
    cfg = TradeoffConfig(snr_db=[20.0], betas=[0.8], samples=16, greedy_samples=0, positions="all")
    fm = next(r for r in evaluate_tradeoff([cs], cfg, model)["results"] if r["method"] == "fm")
    assert fm["rel_rate_error_feasible_mean"] < 1e-4
    assert 0.0 < fm["qos_beams_fraction"] <= 1.0


def test_fixed_targets_need_one_rate_per_user():
    with pytest.raises(MimofmInputError, match="one rate per user"):
        TradeoffConfig(rate_targets=[1.0, 2.0]).validate()
    with pytest.raises(MimofmInputError, match="betas"):
        TradeoffConfig(betas=[1.5]).validate()
