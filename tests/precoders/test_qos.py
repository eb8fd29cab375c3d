import numpy as np
import pytest
import torch

from mimofm.core.energy import energy
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import zf
from mimofm.precoders.qos import greedy_antenna_selection, qos_power_min
from tests.conftest import correlated, rayleigh


def test_targets_met_with_reported_power():
    h = correlated(100, 4, 8, seed=1, snr_db=10.0)
    targets = torch.rand(100, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    r = qos_power_min(h, targets, noise_power=0.5)
    assert bool(r.feasible.all())
    assert bool((user_rates(h, r.w, noise_power=0.5) >= targets - 1e-9).all())
    torch.testing.assert_close(r.power, r.w.abs().square().sum((-2, -1)))


def test_zf_needs_at_least_the_qos_power():
    """ZF with per-user powers reaching the same SINRs can never use less power than the optimum."""
    h = rayleigh(50, 3, 6, seed=2, snr_db=5.0)
    targets = torch.full((50, 3), 2.0, dtype=torch.float64)
    r = qos_power_min(h, targets)
    wz = zf(h)
    wz = wz / wz.norm(dim=-2, keepdim=True)
    gain = (h @ wz).abs().square().diagonal(dim1=-2, dim2=-1)  # interference-free
    p_zf = ((2.0**targets - 1) / gain).sum(-1)
    assert bool((p_zf >= r.power * (1 - 1e-9)).all())


def test_zero_targets_zero_power_and_budget():
    h = rayleigh(4, 3, 4, seed=3)
    r = qos_power_min(h, torch.tensor([0.0, 1.0, 0.0]), max_power=1e-6)
    assert bool((r.w[..., 0].abs() == 0).all()) and bool((r.w[..., 2].abs() == 0).all())
    assert bool(r.feasible.all()) and not bool(r.within_budget.any())
    assert bool((qos_power_min(h, torch.zeros(3)).power == 0).all())


def test_infeasible_reported_or_raised():
    h = rayleigh(3, 3, 4, seed=4)
    h[:, 1] = h[:, 0]  # two users in the same direction cannot both get SINR >= 1
    r = qos_power_min(h, torch.ones(3))
    assert not bool(r.feasible.any()) and bool(torch.isinf(r.power).all())
    assert bool(torch.isfinite(r.w).all()) and bool((r.w == 0).all())
    with pytest.raises(MimofmInputError, match="infeasible"):
        qos_power_min(h, torch.ones(3), on_infeasible="raise")


@pytest.mark.parametrize("bad", [[-1.0, 1.0], [float("nan"), 1.0], [1.0, 1.0, 1.0]])
def test_bad_targets_name_the_argument(bad):
    with pytest.raises(MimofmInputError, match="rate_targets"):
        qos_power_min(rayleigh(1, 2, 4), torch.tensor(bad))


def test_matches_socp_solver():
    cp = pytest.importorskip("cvxpy")
    for b, (k, n) in enumerate([(2, 3), (3, 4), (3, 3)]):
        h = rayleigh(1, k, n, seed=10 + b, snr_db=3.0)[0]
        targets = torch.tensor([1.0, 2.0, 0.5][:k], dtype=torch.float64)
        ours = qos_power_min(h, targets)
        hb = h.numpy()
        gam = 2.0 ** targets.numpy() - 1
        w = cp.Variable((n, k), complex=True)
        cons = []
        for u in range(k):
            hw = hb[u] @ w  # [k]
            cons += [np.sqrt(1 + 1 / gam[u]) * cp.real(hw[u]) >= cp.norm(cp.hstack([hw, np.ones(1)]), 2),
                     cp.imag(hw[u]) == 0]
        prob = cp.Problem(cp.Minimize(cp.sum_squares(cp.real(w)) + cp.sum_squares(cp.imag(w))), cons)
        prob.solve(solver=cp.CLARABEL)
        assert ours.power.item() == pytest.approx(prob.value, rel=1e-5)


def test_greedy_antenna_switch_off_saves_energy():
    h = rayleigh(10, 2, 8, seed=5, snr_db=15.0)
    targets = torch.full((10, 2), 1.0, dtype=torch.float64)
    full = qos_power_min(h, targets, max_power=1.0)
    e_full = energy(torch.ones(10, 8, dtype=torch.float64), full.power.clamp(max=1.0), 20.0, 2.0)
    sel = greedy_antenna_selection(h, targets, p_tx_w=20.0, p_rf_w=2.0)
    assert bool(sel.feasible.all())
    assert bool((sel.energy_w <= e_full + 1e-9).all()) and bool((sel.omega.sum(-1) < 8).all())
    assert set(sel.omega.unique().tolist()) <= {0.0, 1.0}
    assert bool((user_rates(h, sel.w) >= targets - 1e-9).all())
    assert bool((sel.w.abs().sum(-1)[sel.omega == 0] == 0).all())  # switched-off antennas radiate nothing
