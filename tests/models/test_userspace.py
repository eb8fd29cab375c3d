"""The user-space form of fm and papp: features from the Gram matrix, any K <= N_t, one model."""

import math

import pytest
import torch

from mimofm.channels.site_data import check_configs, subarray
from mimofm.core.energy import normalize_power, total_power
from mimofm.core.rates import sinr
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMConfig, FMPrecoder, fm_flops
from mimofm.models.papp import PaPP, PaPPConfig, papp_multiplications
from mimofm.models.userspace import F_A, F_P, F_U, antenna_features, pair_features, user_features
from mimofm.precoders.linear import rzf
from mimofm.precoders.registry import PrecoderSpec
from mimofm.precoders.structured import structured_precoder
from mimofm.precoders.wmmse import wmmse_precoder, wmmse_receivers
from tests.conftest import correlated
from tests.models.toys import PAPP_TINY

FM_TINY = {"d_model": 32, "num_attention_heads": 2, "num_layers": 1, "ffn": 64, "dropout": 0.0}
CONFIGS = [(1, 8), (2, 16), (4, 64), (8, 32), (16, 16), (16, 256)]


def test_user_features_of_orthogonal_users_and_rzf_rates():
    # orthogonal users: no correlation, full orthogonality, RZF's rate is log2(1 + SINR) of its own beam
    h = torch.zeros(1, 3, 8, dtype=torch.complex128)
    gains = torch.tensor([1.0, 10.0, 100.0])
    for u in range(3):
        h[0, u, 2 * u] = gains[u].sqrt()
    f = user_features(h)[0]
    assert f.shape == (3, F_U)
    torch.testing.assert_close(f[:, 0], torch.log10(gains) / 3)
    torch.testing.assert_close(f[:, 1], (torch.log10(gains) - torch.log10(gains).mean()) / 3)
    assert bool((f[:, 2] == 0).all()) and bool((f[:, 3] == 0).all())
    torch.testing.assert_close(f[:, 4], torch.ones(3))  # 1/[(I + δI)^{-1}]_uu, capped at 1
    # equal power 1/3 on orthogonal beams: SINR_u = g_u / 3
    torch.testing.assert_close(f[:, 5], (torch.log2(1 + gains / 3) / 8).float())
    torch.testing.assert_close(f[:, 6], torch.full((3,), math.log2(3) / 4))
    torch.testing.assert_close(f[:, 7], torch.full((3,), 3 / 8))


def test_rzf_rate_feature_matches_the_structured_precoder_on_correlated_users():
    h = correlated(5, 4, 16, seed=3, snr_db=15.0)
    w = structured_precoder(h, torch.full((5, 4), 0.25), torch.full((5, 4), 0.25))
    ref = torch.log2(1 + sinr(h, w.to(torch.complex128))) / 8
    torch.testing.assert_close(user_features(h)[..., 5], ref.float(), rtol=1e-4, atol=1e-6)


def test_pair_and_antenna_features():
    h = correlated(3, 4, 32, seed=4)
    pf = pair_features(h)
    assert pf.shape == (3, 4, 4, F_P)
    torch.testing.assert_close(pf[..., 0], pf[..., 0].transpose(1, 2))  # |ρ_uv|² is symmetric
    torch.testing.assert_close(pf[..., 0].diagonal(dim1=1, dim2=2), torch.ones(3, 4))
    torch.testing.assert_close(pf[..., 1], -pf[..., 1].transpose(1, 2))  # s_v − s_u is antisymmetric
    af = antenna_features(h)
    assert af.shape == (3, 32, F_A)
    # the first two are log10(N · share) / 2 of shares that each sum to 1 (up to the 1e-6 floor)
    for j in (0, 1):
        share = (10 ** (2 * af[..., j].double()) - 1e-6) / 32
        torch.testing.assert_close(share.sum(-1), torch.ones(3, dtype=torch.float64), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("k", "n"), CONFIGS)
def test_one_fm_serves_any_configuration_at_full_power(k, n):
    torch.manual_seed(0)
    m = FMPrecoder(FMConfig(input_form="user", rate_mode="per-user", num_output_heads=2, **FM_TINY)).eval()
    h = correlated(3, k, n, seed=k + n).to(torch.complex64)
    m.check_input(h, None)
    out = m(h)
    assert out.w.shape == (3, n, k) and out.omega.shape == (3, n)
    torch.testing.assert_close(total_power(out.w.to(torch.complex128)).float(), torch.ones(3))
    req = m(h, torch.full((3, k), 0.5))
    assert bool((total_power(req.w.to(torch.complex128)) <= 1 + 1e-5).all())


def test_untrained_user_form_fm_is_rzf_with_equal_powers_and_permutation_equivariant():
    m = FMPrecoder(FMConfig(input_form="user", num_output_heads=1, **FM_TINY)).eval()
    with torch.no_grad():
        m.heads[0].w_out.weight.zero_()  # (λ, p) = 1/K: the head's start
    h = correlated(4, 5, 24, seed=5).to(torch.complex64)
    ref = structured_precoder(h, torch.full((4, 5), 0.2), torch.full((4, 5), 0.2))
    torch.testing.assert_close(m(h).w, normalize_power(ref), rtol=1e-4, atol=1e-6)
    m2 = FMPrecoder(FMConfig(input_form="user", num_output_heads=1, **FM_TINY)).eval()
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(m2(h[:, perm]).w, m2(h).w[..., perm], rtol=1e-4, atol=1e-6)


def test_user_form_fm_refuses_more_users_than_antennas_and_the_rzf_mix_head():
    m = FMPrecoder(FMConfig(input_form="user", **FM_TINY))
    with pytest.raises(MimofmInputError, match="1 <= users <= antennas"):
        m.check_input(torch.ones(2, 9, 8, dtype=torch.complex64), None)
    with pytest.raises(MimofmInputError, match="head_form='structure'"):
        FMPrecoder(FMConfig(input_form="user", head_form="rzf-mix", **FM_TINY))


@pytest.mark.parametrize(("k", "n"), CONFIGS)
def test_one_papp_serves_any_configuration(k, n):
    torch.manual_seed(0)
    m = PaPP(PaPPConfig(input_form="user", **PAPP_TINY)).eval()
    h = correlated(3, k, n, seed=k * n).to(torch.complex64)
    m.check_input(h)
    w = m(h)
    assert w.shape == (3, n, k)
    torch.testing.assert_close(total_power(w), torch.ones(3), rtol=1e-5, atol=0)
    # the untrained teacher is RZF + one WMMSE step at every configuration
    h64 = h.to(torch.complex128)
    u0, v0 = wmmse_receivers(h64 @ rzf(h64))
    ref = normalize_power(wmmse_precoder(h64, u0, v0, (v0 * u0.abs().square()).sum(-1)))
    torch.testing.assert_close(m.teacher_precoder(h).to(torch.complex128), ref, rtol=1e-4, atol=1e-6)


def test_user_form_papp_is_permutation_equivariant_and_has_no_hybrid_student():
    m = PaPP(PaPPConfig(input_form="user", **PAPP_TINY)).eval()
    h = correlated(2, 4, 32, seed=6).to(torch.complex64)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(m(h[:, perm]), m(h)[..., perm], rtol=1e-4, atol=1e-6)
    with pytest.raises(MimofmInputError, match="hybrid student serves one configuration"):
        PaPP(PaPPConfig(input_form="user", num_rf=6, **PAPP_TINY))


def test_complexity_counts_grow_with_the_configuration():
    fm_cfg = FMConfig(input_form="user", **FM_TINY)
    papp_cfg = PaPPConfig(input_form="user", **PAPP_TINY)
    assert fm_flops(fm_cfg, 4, 64) < fm_flops(fm_cfg, 4, 128) < fm_flops(fm_cfg, 8, 128)
    assert papp_multiplications(papp_cfg, 4, 64) < papp_multiplications(papp_cfg, 16, 64)
    assert fm_flops(fm_cfg) == fm_flops(fm_cfg, fm_cfg.num_ue, fm_cfg.num_bs_ant)


def test_subarrays_keep_the_mean_gain_and_configs_are_checked():
    h = correlated(50, 3, 64, seed=7)
    sub = subarray(h, 16, 2)
    torch.testing.assert_close(sub, h[..., 32:48] * 2.0)
    assert subarray(h, 64, 0) is h
    with pytest.raises(MimofmInputError, match="no block 4"):
        subarray(h, 16, 4)
    assert check_configs([[2, 16], [4, 64]], 64) == [(2, 16), (4, 64)]
    with pytest.raises(MimofmInputError, match=r"configuration \[8, 4\]"):
        check_configs([[8, 4]], 64)
    with pytest.raises(MimofmInputError, match=r"configuration \[2, 24\]"):
        check_configs([[2, 24]], 64)


def test_fixed_configuration_precoders_refuse_other_configurations_before_any_work():
    spec = PrecoderSpec("papp-lite", "precoder", lambda h: None, "", needs_k_le_n=True, serves=(4, 64))
    spec.check_configuration(4, 64)
    with pytest.raises(MimofmInputError, match="fixed-configuration checkpoint for 4 users × 64 antennas"):
        spec.check_configuration(8, 64)
    with pytest.raises(MimofmInputError, match="needs num_ue <= num_bs_ant"):
        spec.check_configuration(8, 4)


def test_user_form_onnx_graphs_serve_any_configuration_like_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    import numpy as np

    from mimofm.export import export_fm_onnx, export_papp_onnx, run_onnx

    torch.manual_seed(0)
    fm = FMPrecoder(FMConfig(input_form="user", rate_mode="per-user", **FM_TINY)).eval()
    papp = PaPP(PaPPConfig(input_form="user", **PAPP_TINY)).eval()
    fm_w_path = export_fm_onnx(fm, tmp_path / "fm-w.onnx")  # W itself: the default
    fm_path = export_fm_onnx(fm, tmp_path / "fm.onnx", output="factors")
    papp_path = export_papp_onnx(papp, tmp_path / "p.onnx")
    for k, n in [(2, 8), (8, 32), (16, 128)]:  # one graph each, users and antennas dynamic
        h = correlated(3, k, n, seed=k + n)
        h32 = h.to(torch.complex64)
        req = np.full((3, k), 0.5, dtype=np.float32)
        with torch.no_grad():
            ref_max, ref_req = fm(h32).w, fm(h32, torch.from_numpy(req)).w
            ref_papp = papp(h32)
        w_graph = run_onnx(fm_w_path, h.numpy())
        assert w_graph.shape == (3, n, k)
        np.testing.assert_allclose(w_graph, ref_max.numpy(), atol=2e-5)  # float32 in the graph
        np.testing.assert_allclose(run_onnx(fm_path, h.numpy()), ref_max.numpy(), atol=2e-5)
        np.testing.assert_allclose(run_onnx(fm_path, h.numpy(), req), ref_req.numpy(), atol=2e-5)
        np.testing.assert_allclose(run_onnx(papp_path, h.numpy()), ref_papp.numpy(), atol=2e-5)


def test_the_user_form_mask_keeps_the_k_most_likely_antennas_on_with_their_gradient():
    torch.manual_seed(0)
    m = FMPrecoder(FMConfig(input_form="user", rate_mode="per-user", **FM_TINY))
    with torch.no_grad():
        m.heads[0].mask_out[-1].bias.fill_(-30.0)  # every antenna's probability far below 0.5
    h = correlated(3, 4, 16, seed=9).to(torch.complex64)
    out = m(h, torch.full((3, 4), 0.5), exact_rates=False)
    assert bool((out.omega.sum(-1) == 4).all())  # exactly K = 4 antennas on, never none
    torch.testing.assert_close(total_power(out.w.to(torch.complex128)).float(), out.gamma.detach())
    out.omega.sum().backward()
    assert m.heads[0].mask_out[-1].weight.grad.abs().sum() > 0
