import json

import pytest
import torch

from mimofm.core.energy import total_power
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMConfig, FMPrecoder
from mimofm.models.zoo import load_fm
from mimofm.precoders.structured import structured_precoder, transmit
from mimofm.training.checkpoint import save_checkpoint
from mimofm.training.trainer import TrainConfig, train
from tests.conftest import correlated
from tests.models.toys import FM_TINY, tiny_fm_recipe, toy_site


def test_mask_is_binary_with_sigmoid_gradient_and_power_is_gamma():
    torch.manual_seed(0)
    m = FMPrecoder(FMConfig(num_bs_ant=16, num_output_heads=2, **FM_TINY))
    h = correlated(8, 4, 16, seed=1, snr_db=10.0).to(torch.complex64)
    with torch.no_grad():
        m.heads[0].mask_out.bias[:8] = -5.0  # switch antennas 0..7 off, γ stays high
        m.heads[0].mask_out.bias[-1] = 0.0  # γ around 0.5
    out = m(h, torch.rand(8, 4), head=0, exact_rates=False)  # the head's own mask and power
    assert set(out.omega.unique().tolist()) <= {0.0, 1.0} and bool((out.omega[:, :8] == 0).all())
    assert bool((out.w[:, :8].abs() == 0).all())  # switched-off antennas radiate nothing
    torch.testing.assert_close(
        total_power(out.w.to(torch.complex128)).float(), out.gamma, rtol=1e-4, atol=1e-6
    )
    assert 0.2 < float(out.gamma.detach().mean()) < 0.8
    # straight-through: the threshold passes the loss gradient on to the mask logits
    out.omega.sum().backward()
    assert m.heads[0].mask_out.weight.grad.abs().sum() > 0


def test_max_rate_mode_uses_full_power_and_all_antennas():
    m = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY))
    out = m(correlated(4, 4, 16, seed=2).to(torch.complex64))
    assert bool((out.omega == 1).all()) and bool((out.gamma == 1).all())
    torch.testing.assert_close(
        total_power(out.w.to(torch.complex128)).float(), torch.ones(4), rtol=1e-5, atol=0
    )


def test_checkpoint_shape_mismatch_is_a_clear_error():
    m = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY))
    with pytest.raises(MimofmInputError, match="serves 4 users × 16 antennas"):
        m.check_input(correlated(2, 4, 8).to(torch.complex64), None)


def test_tiny_fm_training_beats_its_untrained_self(tmp_path):
    sites = [toy_site(tmp_path / "a.h5", 1), toy_site(tmp_path / "b.h5", 2)]
    rec = tiny_fm_recipe(sites, pretrain_steps=60, default_batch=32, rmax_samples=16)
    torch.manual_seed(0)
    before = rec.evaluate(rec.build_model())
    out = train(
        rec, TrainConfig(steps=60, lr=3e-3, ckpt_every=60, out_dir=str(tmp_path / "run")), progress=False
    )
    after = out["metrics"]
    assert after["default_ratio_to_wmmse@10dB"] > before["default_ratio_to_wmmse@10dB"] + 0.02
    assert len(rec.datasets()) == 4  # LOS and NLOS users of each site: k = 2 × sites


def test_phase_two_loss_runs_and_tracks_requests(tmp_path):
    sites = [toy_site(tmp_path / "a.h5", 3)]
    rec = tiny_fm_recipe(sites, pretrain_steps=0, default_batch=16, rmax_samples=8)
    torch.manual_seed(0)
    model = rec.build_model()
    loss, metrics = rec.loss(model, rec.batch(0), step=0)
    assert metrics["phase"] == 2 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.heads[0].mask_out.parameters())


def test_old_rzf_mix_checkpoints_still_load(tmp_path):

    from mimofm.models.zoo import load_fm
    from mimofm.training.checkpoint import save_checkpoint

    cfg = FMConfig(num_bs_ant=16, head_form="rzf-mix", **FM_TINY)
    m = FMPrecoder(cfg)
    arch = cfg.to_dict()
    arch.pop("head_form")  # a card written before `head_form` existed
    save_checkpoint(tmp_path / "old", m, step=1, config={"recipe_name": "fm"}, meta={"architecture": arch})
    loaded = load_fm(str(tmp_path / "old"))
    assert loaded.cfg.head_form == "rzf-mix"
    h = correlated(2, 4, 16, seed=4).to(torch.complex64)
    torch.testing.assert_close(loaded(h).w, m.eval()(h).w)
    assert json.loads((tmp_path / "old.json").read_text())["step"] == 1


def test_per_user_rate_mode_starts_as_the_paper_model_and_scales_lambda_by_gamma():
    torch.manual_seed(0)
    paper = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()
    torch.manual_seed(0)
    per_user = FMPrecoder(FMConfig(num_bs_ant=16, rate_mode="per-user", **FM_TINY)).eval()
    per_user.load_state_dict(paper.state_dict(), strict=False)  # the extra embedding stays zero
    h = correlated(3, 4, 16, seed=5).to(torch.complex64)
    with torch.no_grad():
        torch.testing.assert_close(per_user(h).w, paper(h).w)  # maximum-rate mode: identical
        per_user.heads[0].mask_out.bias[-1] = -1.0  # γ ≈ 0.27 in rate-target mode
        out = per_user(h, torch.ones(3, 4), exact_rates=False)

        f = per_user.extractor(h, torch.log1p(torch.ones(3, 4)))
        lam, p = per_user.heads[0].structure(f)
        w = transmit(structured_precoder(h, lam * out.gamma[:, None], p), out.omega, out.gamma)
        torch.testing.assert_close(out.w, w)


def test_cards_of_the_short_lived_request_option_load_when_it_was_off(tmp_path):
    from mimofm.models.zoo import load_fm

    cfg = FMConfig(num_bs_ant=16, **FM_TINY)
    arch = {**cfg.to_dict(), "request_in_user_tokens": False}
    arch.pop("rate_mode")
    save_checkpoint(
        tmp_path / "a", FMPrecoder(cfg), step=1, config={"recipe_name": "fm"}, meta={"architecture": arch}
    )
    assert load_fm(str(tmp_path / "a")).cfg.rate_mode == "paper"
    arch["request_in_user_tokens"] = True
    save_checkpoint(
        tmp_path / "b", FMPrecoder(cfg), step=1, config={"recipe_name": "fm"}, meta={"architecture": arch}
    )
    with pytest.raises(MimofmInputError, match="rate_mode: per-user"):
        load_fm(str(tmp_path / "b"))


def test_rate_target_mode_is_exact_where_the_beams_allow_and_keeps_the_head_elsewhere():
    torch.manual_seed(0)
    m = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()
    h = correlated(32, 4, 16, seed=4, snr_db=15.0).to(torch.complex64)
    req = torch.full((32, 4), 0.3)
    req[16:] = 20.0  # far beyond any precoder at this SNR
    with torch.no_grad():
        ex, raw = m(h, rates=req), m(h, rates=req, exact_rates=False)
    got = user_rates(h.to(torch.complex128), ex.w.to(torch.complex128))
    torch.testing.assert_close(got[:16], req[:16].double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ex.w[16:], raw.w[16:])  # infeasible: the head's own precoder
    torch.testing.assert_close(total_power(ex.w.to(torch.complex128)).float(), ex.gamma, rtol=1e-4, atol=1e-6)


def test_fm_refinement_is_for_the_maximum_sum_rate_mode_only():
    model = load_fm(None)
    h = correlated(2, model.cfg.num_ue, model.cfg.num_bs_ant, seed=8).to(torch.complex64)
    with torch.no_grad():
        out = model(h, refine_steps=2)
        assert out.w.shape == (2, model.cfg.num_bs_ant, model.cfg.num_ue) and bool((out.omega == 1).all())
        with pytest.raises(MimofmInputError, match="maximum-sum-rate"):
            model(h, torch.ones(2, model.cfg.num_ue), refine_steps=2)
