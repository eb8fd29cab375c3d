"""QoS power minimization and greedy antenna switch-off: physics checks and an SOCP reference."""

import numpy as np
import pytest
import torch

from mimofm.core.energy import energy
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.precoders.linear import zf
from mimofm.precoders.qos import greedy_antenna_selection, qos_power_min
from tests.conftest import correlated, rayleigh


def _targets(batch: int, k: int, hi: float, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * hi


def test_targets_met_with_reported_power():
    h = torch.cat([correlated(50, 4, 8, seed=1, snr_db=10.0), rayleigh(50, 4, 8, seed=2, snr_db=10.0)])
    targets = _targets(100, 4, 3.0)
    r = qos_power_min(h, targets, noise_power=0.5)
    assert bool(r.feasible.all())
    assert bool((user_rates(h, r.w, noise_power=0.5) >= targets - 1e-6).all())
    torch.testing.assert_close(r.power, r.w.abs().square().sum((-2, -1)))
    # the targets are met with equality: any less power would miss one
    torch.testing.assert_close(user_rates(h, r.w, noise_power=0.5), targets, rtol=1e-8, atol=1e-8)


def test_power_scales_with_noise():
    h = rayleigh(6, 3, 5, seed=3)
    t = _targets(6, 3, 2.0, seed=1)
    torch.testing.assert_close(qos_power_min(h, t, noise_power=0.1).power, 0.1 * qos_power_min(h, t).power)


def test_zf_needs_at_least_the_qos_power():
    """ZF with per-user powers reaching the same SINRs can never use less power than the optimum."""
    h = torch.cat([rayleigh(30, 3, 6, seed=2, snr_db=5.0), correlated(30, 3, 6, seed=3, snr_db=5.0)])
    targets = torch.full((60, 3), 2.0, dtype=torch.float64)
    r = qos_power_min(h, targets)
    wz = zf(h)
    wz = wz / wz.norm(dim=-2, keepdim=True)
    gain = (h @ wz).abs().square().diagonal(dim1=-2, dim2=-1)  # interference-free
    p_zf = ((2.0**targets - 1) / gain).sum(-1)
    assert bool((p_zf >= r.power * (1 - 1e-9)).all())
    assert bool((p_zf > r.power * 1.001).any())  # and strictly more on some channels


def test_zero_targets_zero_power_and_budget():
    h = rayleigh(4, 3, 4, seed=3)
    r = qos_power_min(h, torch.tensor([0.0, 1.0, 0.0]), max_power=1e-6)
    assert bool((r.w[..., 0].abs() == 0).all()) and bool((r.w[..., 2].abs() == 0).all())
    assert bool(r.feasible.all()) and not bool(r.within_budget.any())
    # one user alone: power γ/‖h‖² (MRT)
    torch.testing.assert_close(r.power, 1.0 / h[:, 1].abs().square().sum(-1))
    z = qos_power_min(h, torch.zeros(3))
    assert bool((z.power == 0).all()) and bool((z.w == 0).all()) and bool(z.feasible.all())


def test_infeasible_reported_or_raised():
    h = rayleigh(3, 3, 4, seed=4)
    h[:, 1] = h[:, 0]  # two users in the same direction cannot both get SINR >= 1
    r = qos_power_min(h, torch.ones(3))
    assert not bool(r.feasible.any()) and not bool(r.within_budget.any())
    assert bool(torch.isinf(r.power).all())
    assert bool(torch.isfinite(r.w).all()) and bool((r.w == 0).all())
    # the same channel with one of the twins silent is feasible
    assert bool(qos_power_min(h, torch.tensor([1.0, 0.0, 1.0])).feasible.all())
    with pytest.raises(MimofmInputError, match="infeasible"):
        qos_power_min(h, torch.ones(3), on_infeasible="raise")


def test_more_users_than_antennas():
    """K > N: low targets are reachable (interference-limited), high ones are not (SINR product bound)."""
    h = rayleigh(8, 4, 2, seed=6, snr_db=10.0)
    low = qos_power_min(h, torch.full((4,), 0.2))
    assert bool(low.feasible.all())
    assert bool((user_rates(h, low.w) >= 0.2 - 1e-6).all())
    high = qos_power_min(h, torch.full((4,), 3.0))  # Σ SINR/(1+SINR) ≤ N is violated
    assert not bool(high.feasible.any()) and bool(torch.isinf(high.power).all())
    assert bool(torch.isfinite(high.w).all())


@pytest.mark.parametrize("bad", [[-1.0, 1.0], [float("nan"), 1.0], [1.0, 1.0, 1.0]])
def test_bad_targets_name_the_argument(bad):
    with pytest.raises(MimofmInputError, match="rate_targets"):
        qos_power_min(rayleigh(1, 2, 4), torch.tensor(bad))


def test_matches_socp_solver():
    cp = pytest.importorskip("cvxpy")
    for b, (k, n) in enumerate([(2, 3), (3, 4), (3, 3), (2, 4)]):
        gen = correlated if b % 2 else rayleigh
        h = gen(1, k, n, seed=10 + b, snr_db=3.0)[0]
        targets = torch.tensor([1.0, 2.0, 0.5][:k], dtype=torch.float64)
        ours = qos_power_min(h, targets, noise_power=0.7)
        hb = h.numpy()
        gam = 2.0 ** targets.numpy() - 1
        w = cp.Variable((n, k), complex=True)
        cons = []
        for u in range(k):
            hw = hb[u] @ w  # [k] = h_u^H W
            noise = np.sqrt(0.7) * np.ones(1)
            cons += [
                np.sqrt(1 + 1 / gam[u]) * cp.real(hw[u]) >= cp.norm(cp.hstack([hw, noise]), 2),
                cp.imag(hw[u]) == 0,
            ]
        prob = cp.Problem(cp.Minimize(cp.sum_squares(cp.real(w)) + cp.sum_squares(cp.imag(w))), cons)
        prob.solve(solver=cp.CLARABEL)
        assert prob.status == "optimal"
        assert ours.power.item() == pytest.approx(prob.value, rel=1e-5)


def test_greedy_antenna_switch_off_saves_energy():
    h = rayleigh(10, 2, 8, seed=5, snr_db=15.0)
    targets = torch.full((10, 2), 1.0, dtype=torch.float64)
    full = qos_power_min(h, targets, max_power=1.0)
    assert bool(full.within_budget.all())
    e_full = energy(torch.ones(10, 8, dtype=torch.float64), full.power, 20.0, 2.0)
    sel = greedy_antenna_selection(h, targets, p_tx_w=20.0, p_rf_w=2.0)
    assert bool(sel.feasible.all())
    assert bool((sel.energy_w <= e_full + 1e-9).all()) and bool((sel.omega.sum(-1) < 8).all())
    assert set(sel.omega.unique().tolist()) <= {0.0, 1.0}
    assert bool((user_rates(h, sel.w) >= targets - 1e-6).all())
    assert bool((sel.w.abs().sum(-1)[sel.omega == 0] == 0).all())  # switched-off antennas radiate nothing
    torch.testing.assert_close(sel.gamma, sel.w.abs().square().sum((-2, -1)))
    torch.testing.assert_close(sel.energy_w, energy(sel.omega, sel.gamma, 20.0, 2.0))


def test_greedy_rf_cost_drives_switch_off():
    """Cheap RF chains keep (almost) every antenna; expensive ones leave about as few as the users."""
    h = rayleigh(6, 2, 6, seed=7, snr_db=20.0)
    targets = torch.full((2,), 0.5, dtype=torch.float64)
    cheap = greedy_antenna_selection(h, targets, p_tx_w=20.0, p_rf_w=1e-4)
    dear = greedy_antenna_selection(h, targets, p_tx_w=20.0, p_rf_w=50.0)
    assert bool((dear.omega.sum(-1) <= cheap.omega.sum(-1)).all())
    assert bool((dear.omega.sum(-1) <= 3).all()) and bool((cheap.omega.sum(-1) >= 5).all())
    assert bool((user_rates(h, dear.w) >= 0.5 - 1e-6).all())


def test_greedy_infeasible_sample_reported():
    h = rayleigh(2, 2, 4, seed=8, snr_db=10.0)
    h[1, 1] = h[1, 0]  # sample 1: identical users, positive targets
    sel = greedy_antenna_selection(h, torch.ones(2), p_tx_w=10.0, p_rf_w=1.0)
    assert sel.feasible.tolist() == [True, False]
    assert bool((sel.omega[1] == 1).all()) and sel.gamma[1].item() == 1.0
    assert sel.energy_w[1].item() == pytest.approx(10.0 + 4 * 1.0)
    assert bool((sel.w[1] == 0).all()) and bool(torch.isfinite(sel.energy_w).all())
