import numpy as np
import pytest
import torch

from mimofm.adaptation.common import local_positions
from mimofm.adaptation.papp import PaPPFineTune
from mimofm.channels.io import load_channels
from mimofm.channels.site_data import draw_samples
from mimofm.core.energy import normalize_power, total_power
from mimofm.core.validation import MimofmInputError
from mimofm.models.papp import PaPP, PaPPConfig, papp_multiplications
from mimofm.precoders.linear import rzf
from mimofm.precoders.wmmse import wmmse_precoder, wmmse_receivers
from mimofm.training.papp_recipe import PaPPRecipe
from mimofm.training.trainer import TrainConfig, train
from tests.conftest import correlated
from tests.models.toys import PAPP_TINY, toy_site

TINY = {"num_bs_ant": 16, "num_ue": 4, **PAPP_TINY}


def test_teacher_output_is_the_classical_wmmse_step_for_its_variables():
    torch.manual_seed(0)
    m = PaPP(PaPPConfig(**TINY)).eval()
    with torch.no_grad():  # move the heads off their zero start so (u, v, μ) are the network's own
        for p in m.teacher.parameters():
            p.normal_(std=0.1)
    h = correlated(5, 4, 16, seed=1, snr_db=10.0)
    feats, ctx = m.extractor(h.to(torch.complex64))
    u, v, mu = m.teacher.variables(feats, ctx, h)
    w = m.teacher(feats, ctx, h)
    torch.testing.assert_close(w, normalize_power(wmmse_precoder(h, u, v, mu)))
    assert bool((v >= 1).all()) and bool((mu > 0).all())


def test_untrained_teacher_is_rzf_plus_one_wmmse_step():
    m = PaPP(PaPPConfig(**TINY)).eval()
    h = correlated(4, 4, 16, seed=2, snr_db=20.0)
    u0, v0 = wmmse_receivers(h @ rzf(h))
    ref = normalize_power(wmmse_precoder(h, u0, v0, (v0 * u0.abs().square()).sum(-1)))
    torch.testing.assert_close(m.teacher_precoder(h), ref)


def test_student_outputs_unit_power_and_hybrid_phases_are_unit_modulus():
    h = correlated(6, 4, 16, seed=3).to(torch.complex64)
    for num_rf in (None, 6):
        m = PaPP(PaPPConfig(num_rf=num_rf, **TINY)).eval()
        w = m(h)
        assert w.shape == (6, 16, 4)
        torch.testing.assert_close(total_power(w), torch.ones(6), rtol=1e-5, atol=0)
    feats, _ = m.extractor(h)
    a, wd = m.student.hybrid(feats, h)
    assert a.shape == (6, 16, 6) and wd.shape == (6, 6, 4)
    torch.testing.assert_close(a.abs(), torch.ones(a.shape, dtype=torch.float64), rtol=1e-9, atol=0)
    with torch.no_grad():
        hp = m.hybrid_precoder(h)
        torch.testing.assert_close(hp.w, m(h), rtol=0, atol=1e-5)
        torch.testing.assert_close(hp.analog @ hp.digital, hp.w, rtol=0, atol=1e-5)
        hp4 = m.hybrid_precoder(h, num_rf=4)  # the same checkpoint served with fewer RF chains
        assert hp4.analog.shape == (6, 16, 4) and hp4.digital.shape == (6, 4, 4)
        torch.testing.assert_close(total_power(m(h, num_rf=4)), torch.ones(6), rtol=1e-5, atol=0)
    with pytest.raises(MimofmInputError, match="num_rf"):
        m(h, num_rf=3)
    with pytest.raises(MimofmInputError, match="fully digital"):
        PaPP(PaPPConfig(**TINY)).hybrid_precoder(h)


def test_bad_sizes_and_inputs_are_clear_errors():
    with pytest.raises(MimofmInputError, match="num_rf"):
        PaPP(PaPPConfig(num_rf=2, **TINY))
    m = PaPP(PaPPConfig(**TINY))
    with pytest.raises(MimofmInputError, match="4 users × 16 antennas"):
        m.check_input(torch.zeros(2, 4, 8, dtype=torch.complex64))
    assert papp_multiplications(PaPPConfig()) < papp_multiplications(PaPPConfig(feature_dim=128))


def _recipe(tmp_path, **kw):
    sites = [toy_site(tmp_path / "a.h5", 1), toy_site(tmp_path / "b.h5", 2, rank=2)]
    model = {k: v for k, v in TINY.items() if k != "num_bs_ant"}
    kw = {"domains_per_step": 4, "meta_gen_domains": 1, **kw}
    return PaPPRecipe(
        sites=sites,
        model=model,
        snr_grid_db=[10.0],
        batch_per_domain=16,
        teacher_warmup_steps=20,
        rmax_samples=16,
        **kw,
    )


def test_site_meta_split_keeps_the_generalization_site_out_of_meta_train(tmp_path):
    rec = _recipe(tmp_path, meta_split="site", domains_per_step=5, meta_gen_domains=2)
    site = [d.name.rsplit("/", 1)[0] for d in rec.datasets()]
    assert len(set(site)) == 2
    held_seen = set()
    for step in range(20):
        picks = list(rec._domain_datasets(np.random.default_rng([0, step])))
        train, gen = {site[i] for i in picks[:-2]}, {site[i] for i in picks[-2:]}
        assert len(picks) == 5 and len(gen) == 1 and not train & gen
        held_seen |= gen
    assert held_seen == set(site)  # every site takes its turn
    with pytest.raises(MimofmInputError, match="meta_split"):
        _recipe(tmp_path, meta_split="sites")


@pytest.mark.parametrize("mldg", [True, False])
def test_tiny_papp_training_improves_the_teacher(tmp_path, mldg):
    rec = _recipe(tmp_path, mldg=mldg)
    torch.manual_seed(0)
    before = rec.evaluate(rec.build_model().eval())
    out = train(
        rec, TrainConfig(steps=40, lr=3e-3, ckpt_every=40, out_dir=str(tmp_path / "run")), progress=False
    )
    after = out["metrics"]
    # the teacher (RZF + one WMMSE step at the start) learns its WMMSE variables
    assert after["teacher_ratio_to_wmmse@10dB"] > before["teacher_ratio_to_wmmse@10dB"] + 0.02
    # the student is still at its RZF start: papp's student training is not done yet (docs/papp.md)
    assert after["student_ratio_to_wmmse@10dB"] > 0.5


def test_mldg_gradient_is_train_plus_beta_times_gen_at_the_virtual_step(tmp_path):
    rec = _recipe(tmp_path, meta_beta=0.5, meta_lr=0.1)
    torch.manual_seed(0)
    model = rec.build_model().eval()  # eval: no dropout, fixed batch-norm statistics
    batch = rec.batch(0)
    loss, _ = rec.loss(model, batch, step=0)
    g = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    # by hand: δ_train at θ, then δ_gen at θ' = θ − α δ_train
    params = dict(model.named_parameters())
    lt = torch.stack([rec._domain_loss(model, params, h, s, r, False)[0] for h, s, r in batch[:-1]]).mean()
    dt = torch.autograd.grad(lt, list(params.values()), allow_unused=True)
    fast = {k: p - 0.1 * (d if d is not None else 0) for (k, p), d in zip(params.items(), dt)}
    fast = {k: v.detach().requires_grad_(True) for k, v in fast.items()}
    lg = torch.stack([rec._domain_loss(model, fast, h, s, r, False)[0] for h, s, r in batch[-1:]]).mean()
    dg = torch.autograd.grad(lg, list(fast.values()), allow_unused=True)
    for a, t, gen in zip(g, dt, dg):
        if a is None:
            continue
        ref = (t if t is not None else 0) + 0.5 * (gen if gen is not None else 0)
        torch.testing.assert_close(a, ref, rtol=1e-4, atol=1e-6)


def test_finetuning_permutes_and_turns_users_and_improves_on_local_samples(tmp_path):
    rec = _recipe(tmp_path)
    torch.manual_seed(0)
    train(rec, TrainConfig(steps=20, lr=3e-3, ckpt_every=20, out_dir=str(tmp_path / "pre")), progress=False)
    local = local_positions(load_channels(toy_site(tmp_path / "new.h5", 7, rank=2)), 12, 4, seed=0)
    ft = PaPPFineTune(
        checkpoint=str(tmp_path / "pre" / "last"), local=local, snr_grid_db=[10.0], batch_size=32
    )
    h = ft.batch(3)
    assert h.shape == (32, 4, 16)
    # the same draw without the shuffle: same users per sample, different order in some samples
    import numpy as np

    rng = np.random.default_rng([0, 3, 29])
    snr = [10.0][int(rng.integers(1))]
    plain = draw_samples(local, 32, 4, int(rng.integers(2**62)), snr)
    g, g0 = h.abs().square().sum(-1), plain.abs().square().sum(-1)
    torch.testing.assert_close(g.sort(-1).values, g0.sort(-1).values)
    assert bool((g != g0).any())
    # each user's channel is turned by its own phase: first antenna's phase no longer matches any plain user's
    assert not torch.isclose(h[..., 0][:, :, None], plain[..., 0][:, None, :]).any(-1).all()
    before = ft.evaluate(ft.build_model())["ratio_to_rzf"]
    out = train(
        ft, TrainConfig(steps=30, lr=3e-3, ckpt_every=30, out_dir=str(tmp_path / "ft")), progress=False
    )
    assert out["metrics"]["ratio_to_rzf"] > before


def test_csi_error_domains_see_an_estimate_and_are_scored_on_the_true_channel(tmp_path):
    rec = _recipe(tmp_path, csi_error_fraction=1.0, csi_nmse_db_grid=[-10.0])
    for h, seen, _ in rec.batch(0):
        err = (seen - h).abs().square().sum(-1) / h.abs().square().sum(-1)
        assert 0.05 < float(err.mean()) < 0.2  # NMSE -10 dB
    assert all(torch.equal(h, seen) for h, seen, _ in _recipe(tmp_path / "p").batch(0))
    with pytest.raises(MimofmInputError, match="csi_error_fraction"):
        _recipe(tmp_path / "q", csi_error_fraction=1.5)


def test_bounded_teacher_corrections_stay_finite_where_unbounded_ones_overflow():
    h = correlated(8, 4, 16, seed=3, snr_db=20.0).to(torch.complex64)
    outs = {}
    for clamp in (None, 10.0):
        torch.manual_seed(0)
        m = PaPP(PaPPConfig(correction_clamp=clamp, **TINY)).eval()
        with torch.no_grad():
            m.teacher.user_head[-1].bias.fill_(800.0)  # e^800 overflows float64
            m.teacher.mu_head[-1].bias.fill_(-800.0)
            outs[clamp] = m.teacher_precoder(h)
    assert not bool(torch.isfinite(outs[None]).all())
    assert bool(torch.isfinite(outs[10.0]).all())


def test_init_from_continues_from_a_checkpoint_and_refuses_another_architecture(tmp_path):
    from mimofm.training.checkpoint import save_checkpoint

    rec = _recipe(tmp_path)
    torch.manual_seed(0)
    first = rec.build_model()
    save_checkpoint(
        tmp_path / "start", first, config={"recipe_name": "papp"}, meta={"architecture": first.cfg.to_dict()}
    )
    torch.manual_seed(1)  # a fresh model would differ
    cont = _recipe(tmp_path, init_from=str(tmp_path / "start")).build_model()
    for (name, a), b in zip(first.state_dict().items(), cont.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    wider = {**{k: v for k, v in TINY.items() if k != "num_bs_ant"}, "feature_dim": 24}
    with pytest.raises(MimofmInputError, match="another architecture"):
        PaPPRecipe(
            **{**_recipe(tmp_path).config(), "model": wider, "init_from": str(tmp_path / "start")}
        ).build_model()
