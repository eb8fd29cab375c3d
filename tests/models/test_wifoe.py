"""wifoe: the end-to-end FDD pipeline's contracts (pilots, bits, routing, equivariance) and training."""

from __future__ import annotations

import pytest
import torch

from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.models.layers import MoEFFN
from mimofm.models.wifoe import TaskShape, WiFoE, WiFoEConfig, parameter_counts, sign_ste, wifoe_flops
from tests.conftest import rayleigh

A = TaskShape("A", num_bs_ant=16, pilot_length=4, feedback_bits=6)
B = TaskShape("B", num_bs_ant=12, pilot_length=3, feedback_bits=4)
SMALL = dict(d_model=32, num_layers=2, num_heads=4, d_ff=64, num_experts=4, top_k=2, encoder_width=32)


def _model(**kw) -> WiFoE:
    torch.manual_seed(0)
    return WiFoE(WiFoEConfig(**{**SMALL, **kw}, tasks=[A, B])).eval()


@pytest.mark.parametrize("moe,pre_ln", [(True, False), (False, False), (True, True)])
def test_bs_side_is_permutation_equivariant_over_users(moe, pre_ln):
    m = _model(moe=moe, pre_ln=pre_ln)
    q = sign_ste(torch.randn(5, 6, A.feedback_bits, generator=torch.Generator().manual_seed(1)))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    w = m.decode(q, "A")
    wp = m.decode(q[:, perm], "A")
    torch.testing.assert_close(wp, w[:, :, perm], atol=1e-5, rtol=1e-5)


def test_pilots_meet_the_per_symbol_power_constraint_and_power_budget_is_met():
    m = _model()
    for t in ("A", "B"):
        x = m.branch(t).pilots()
        assert x.shape == (m.branch(t).shape.num_bs_ant, m.branch(t).shape.pilot_length)
        assert bool((x.abs().square().sum(0) <= 1.0 + 1e-5).all())
    h = rayleigh(7, 5, A.num_bs_ant, seed=2).to(torch.complex64)
    w = m(h, "A", generator=torch.Generator().manual_seed(0))
    assert w.shape == (7, A.num_bs_ant, 5)
    torch.testing.assert_close(w.abs().square().sum((-2, -1)), torch.ones(7), atol=1e-5, rtol=0)


def test_feedback_is_exactly_b_bits_of_plus_minus_one_with_a_gradient():
    m = _model().train()
    h = rayleigh(4, 3, B.num_bs_ant, seed=3).to(torch.complex64)
    q = m.feedback(m.receive(h, "B", generator=torch.Generator().manual_seed(0)), "B")
    assert q.shape == (4, 3, B.feedback_bits)
    assert set(q.detach().unique().tolist()) <= {-1.0, 1.0}
    q.sum().backward()  # straight-through: the pilots and the encoder get a gradient
    assert m.branch("B").pilot_re_im.grad is not None and m.branch("B").pilot_re_im.grad.abs().sum() > 0


def test_router_picks_k_distinct_experts_per_token_and_reports_finite_aux_loss():
    torch.manual_seed(0)
    moe = MoEFFN(16, 32, num_experts=5, top_k=3)
    z = torch.randn(4, 7, 16)
    y, stats = moe(z)
    assert y.shape == z.shape
    top = stats.topk
    assert top.shape == (28, 3)
    assert all(len(set(row.tolist())) == 3 for row in top)
    assert torch.isfinite(stats.aux_loss) and stats.aux_loss >= 0.99  # ≥ 1 by a Cauchy–Schwarz-like bound
    torch.testing.assert_close(stats.load.sum(), torch.tensor(1.0))
    assert not hasattr(moe, "aux_loss")  # the statistics are returned, not stored on the module
    # the export path (every expert on every token, zero gates off the top-k) returns the same
    moe.dense_dispatch = True
    y_dense, stats_dense = moe(z)
    torch.testing.assert_close(y_dense, y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats_dense.aux_loss, stats.aux_loss)
    torch.testing.assert_close(stats_dense.load, stats.load)
    # the output is the gated sum of the chosen experts, computed token by token
    x = z.reshape(-1, 16)
    logits = moe.router(x)
    gates = logits.gather(1, top).softmax(-1)
    ref = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j, e in enumerate(top[t].tolist()):
            hdn = torch.nn.functional.gelu(x[t] @ moe.w1[e] + moe.b1[e])
            ref[t] += gates[t, j] * (hdn @ moe.w2[e] + moe.b2[e])
    torch.testing.assert_close(y.reshape(-1, 16), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(MimofmInputError, match="top_k"):
        MoEFFN(16, 32, num_experts=2, top_k=3)


def test_baseline_variants_and_errors():
    h = rayleigh(3, 4, A.num_bs_ant, seed=4).to(torch.complex64)
    cep = _model(feedback="estimate")
    est = cep.estimate(cep.receive(h, "A", generator=torch.Generator().manual_seed(0)), "A")
    assert est.shape == h.shape and est.is_complex()
    assert cep(h, "A").shape == (3, A.num_bs_ant, 4)
    dsc = _model(decoder="mlp", max_ue=6)
    assert len(dsc.trunk) == 0 and dsc(h, "A").shape == (3, A.num_bs_ant, 4)
    with pytest.raises(MimofmInputError, match="max_ue"):
        dsc(rayleigh(1, 7, A.num_bs_ant).to(torch.complex64), "A")
    m = _model()
    with pytest.raises(MimofmInputError, match="no branch for task 'C'"):
        m(h, "C")
    with pytest.raises(MimofmInputError, match="N_t = 12"):
        m(h, "B")
    with pytest.raises(MimofmInputError, match="feedback"):
        WiFoEConfig(feedback="analog", tasks=[A])


def test_counts_moe_activates_fewer_flops_than_its_parameters_suggest():
    moe, dense = _model(), _model(moe=False, d_ff=4 * 64)  # dense: the FFN width of all 4 experts
    pm, pd = parameter_counts(moe), parameter_counts(dense)
    assert pm["total"] == pm["trunk"] + sum(pm["per_task"].values())
    assert pm["per_task"] == pd["per_task"]
    fm_, fd = wifoe_flops(moe.cfg, A, 6), wifoe_flops(dense.cfg, A, 6)
    assert fm_["user"] == fd["user"] and fm_["total"] == 6 * fm_["user"] + fm_["bs"]
    assert fm_["bs"] < fd["bs"]  # top-2 of 4 experts of width 64 vs one FFN of width 256


def test_frozen_trunk_and_new_branch():
    m = _model()
    m.freeze_trunk()
    new = m.add_task(TaskShape("C", 8, 2, 3))
    assert all(not p.requires_grad for p in m.trunk.parameters())
    assert all(p.requires_grad for p in new.parameters())
    assert m.cfg.tasks[-1]["name"] == "C"
    with pytest.raises(MimofmInputError, match="already"):
        m.add_task(TaskShape("C", 8, 2, 3))


def test_pre_ln_trunk_has_identity_residuals_and_a_final_norm():
    from torch import nn

    m = _model(pre_ln=True)
    assert isinstance(m.trunk[-1], nn.LayerNorm) and all(b.norm_first for b in m.trunk[:-1])
    q = sign_ste(torch.randn(3, 5, A.feedback_bits, generator=torch.Generator().manual_seed(2)))
    w, routing = m.decode_with_routing(q, "A")
    torch.testing.assert_close(w, m.decode(q, "A"))
    assert routing.expert_load().shape == (2, 4)  # the final norm is not a block
    m.freeze_trunk(keep_norms=True)  # only the LayerNorms of the trunk train
    trainable = {n for n, p in m.trunk.named_parameters() if p.requires_grad}
    assert trainable and all("norm" in n or n.startswith("2.") for n in trainable)
    blk = m.trunk[0]
    with torch.no_grad():  # a block whose attention and FFN output zero is the identity
        blk.attn.out_proj.weight.zero_()
        blk.attn.out_proj.bias.zero_()
        blk.ffn.b2.zero_()
        blk.ffn.w2.zero_()
    z = torch.randn(3, 5, SMALL["d_model"])
    torch.testing.assert_close(blk(z)[0], z)


def test_a_few_training_steps_beat_the_untrained_pipeline():
    """Plain end-to-end training on i.i.d. channels (no Sionna): the sum rate goes up."""
    m = _model().train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(5)

    def rate(model, seed):
        h = rayleigh(256, 4, A.num_bs_ant, seed=seed).to(torch.complex64)
        with torch.no_grad():
            w = model(h, "A", generator=torch.Generator().manual_seed(seed))
        return float(sum_rate(h.to(torch.complex128), w.to(torch.complex128)).mean())

    before = rate(m.eval(), 99)
    m.train()
    for s in range(60):
        h = rayleigh(64, 4, A.num_bs_ant, seed=s).to(torch.complex64)
        w, routing = m.forward_with_routing(h, "A", generator=g)
        loss = -sum_rate(h, w).mean() + 0.01 * routing.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = rate(m.eval(), 99)
    assert after > before * 1.3, (before, after)


@pytest.mark.parametrize("conv", ["received", "per-antenna"])
def test_received_pilot_power_equals_the_stated_pilot_snr(conv):
    """On i.i.d. channels scaled to the operating point, E|√E_s·h x_ℓ|² (unit noise) is the stated pilot
    SNR."""
    from mimofm.core.linkbudget import FDDOperatingPoint

    m = _model()
    n = A.num_bs_ant
    op = FDDOperatingPoint(12.0, conv, pilot_snr_db=3.0)
    h = rayleigh(4000, 1, n, seed=5, snr_db=0.0).to(torch.complex64) * op.channel_scale(n)  # E‖h‖² = g
    zero = torch.zeros(4000, 1, A.pilot_length, dtype=torch.complex64)
    with torch.no_grad():
        y = m.receive(h, "A", noise=zero, pilot_energy=op.pilot_energy(n))
        y1 = m.receive(h, "A", noise=zero)  # full-energy pilots: SNR − 10·log10 N_t (received) or the SNR
    assert float(y.abs().square().mean()) == pytest.approx(10**0.3, rel=0.05)
    full = 10**1.2 / (n if conv == "received" else 1)
    assert float(y1.abs().square().mean()) == pytest.approx(full, rel=0.05)


def test_pilot_energy_defaults_to_the_unit_energy_pipeline_and_may_vary_per_sample():
    m = _model()
    h = rayleigh(6, 3, A.num_bs_ant, seed=6).to(torch.complex64)
    z = torch.complex(*torch.randn(2, 6, 3, A.pilot_length, generator=torch.Generator().manual_seed(1)))
    x = m.branch("A").pilots()
    torch.testing.assert_close(m.receive(h, "A", z), h @ x + z)  # the knob not given: y = hX + z, as before
    e = torch.tensor([1.0, 4.0, 9.0, 1.0, 0.25, 2.0])
    y = m.receive(h, "A", torch.zeros_like(z), pilot_energy=e)
    torch.testing.assert_close(y, (h @ x) * e.sqrt()[:, None, None])
    with pytest.raises(MimofmInputError, match="pilot_energy"):
        m.receive(h, "A", z, pilot_energy=0.0)


def test_shipped_wifoe_is_pinned_at_its_operating_point():
    """Golden values of the shipped checkpoint (recipes/wifoe.yaml) on fixed i.i.d. channels at its calibrated
    point (16 dB received, pilots at 20 dB): a regression in the model, the pilots or the loading
    fails here."""
    import json

    from mimofm.core.linkbudget import FDDOperatingPoint
    from mimofm.models.zoo import load_wifoe, shipped_checkpoint

    card = json.loads(shipped_checkpoint("wifoe").with_suffix(".json").read_text())
    rec = card["config"]["recipe"]
    assert (rec["snr_convention"], rec["pilot_snr_offset_db"], rec["eval_snr_db"], rec["loss_norm"]) == (
        "received",
        4.0,
        16.0,
        "per-sample",
    )
    m = load_wifoe(None).eval()
    op = FDDOperatingPoint(16.0, "received", 20.0)
    golden = {"T4": 0.8175819481570993, "T7": 0.7511884172073248, "T1": 1.003305999649085}
    for task, value in golden.items():
        n = m.branch(task).shape.num_bs_ant
        h = rayleigh(32, 4, n, seed=7, snr_db=0.0).to(torch.complex64) * op.channel_scale(n)
        with torch.no_grad():
            w = m(h, task, generator=torch.Generator().manual_seed(0), pilot_energy=op.pilot_energy(n))
        assert float(sum_rate(h.to(torch.complex128), w.to(torch.complex128)).mean()) == pytest.approx(
            value, rel=2e-3
        )
