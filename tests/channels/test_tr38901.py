"""3GPP TR 38.901 tasks generated for real with Sionna PHY, a few positions each."""

import pytest
import torch

from mimofm.channels.tr38901 import TASKS, TaskConfig, generate_task, get_task
from mimofm.core.validation import MimofmInputError


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_generates_finite_nonzero_channels(name):
    cfg = TASKS[name]
    cs = generate_task(cfg, 8, seed=1)
    assert cs.h.shape == (8, cfg.num_bs_ant) and cs.h.dtype == torch.complex64
    assert bool(torch.isfinite(cs.h).all()) and bool((cs.h.abs().amax(-1) > 0).all())
    assert bool((cs.los == bool(cfg.los)).all())
    assert cs.meta["pilot_length"] == cfg.pilot_length and cs.meta["feedback_bits"] == cfg.feedback_bits


def test_groups_follow_the_paper_and_dg_scenario_is_unseen():
    groups = {g: [t for t in TASKS.values() if t.group == g] for g in ("pretrain", "unseen", "domain_generalization")}
    assert [t.name for t in groups["pretrain"]] == [f"T{i}" for i in range(1, 10)]
    pre = {(t.scenario, t.los, t.num_bs_ant) for t in groups["pretrain"]}
    for t in groups["domain_generalization"]:
        assert (t.scenario, t.los, t.num_bs_ant) not in pre
    sizes = {t.num_bs_ant for t in TASKS.values()}
    assert min(sizes) == 64 and max(sizes) == 256 and any(t.array == "ula" for t in TASKS.values())


def test_deterministic_and_normalized():
    a = generate_task(get_task("T4"), 16, seed=5)
    b = generate_task(get_task("T4"), 16, seed=5)
    c = generate_task(get_task("T4"), 16, seed=6)
    assert torch.equal(a.h, b.h) and not torch.equal(a.h, c.h)
    n = generate_task(get_task("T4"), 64, seed=5, normalize=True)
    assert float(n.h.abs().square().sum(-1).mean() / 64) == pytest.approx(1.0, rel=1e-5)


def test_path_loss_grows_with_distance():
    cs = generate_task(get_task("T8"), 256, seed=2)  # UMa LOS
    d = cs.positions[:, :2].norm(dim=-1)
    g = 10 * torch.log10(cs.h.abs().square().sum(-1).double())
    near, far = g[d < d.median()].mean(), g[d >= d.median()].mean()
    assert near > far + 3.0


def test_mixed_los_uses_the_3gpp_probability():
    cs = generate_task(TaskConfig("mix", "umi", None, 8, 8), 128, seed=3)
    assert 0.05 < float(cs.los.float().mean()) < 0.95


@pytest.mark.parametrize("kw, match", [
    (dict(scenario="moon"), "scenario"),
    (dict(array="ula", cols=2), "ULA"),
    (dict(frequency_ghz=0.0), "frequency_ghz"),
    (dict(rows=2, cols=1, max_ue=8), "max_ue"),
])
def test_bad_config(kw, match):
    base = dict(name="x", scenario="umi", los=False, rows=8, cols=8)
    base.update(kw)
    with pytest.raises(MimofmInputError, match=match):
        TaskConfig(**base).validate()
    with pytest.raises(MimofmInputError, match="unknown task"):
        get_task("T99")
