import numpy as np
import pytest
import torch

from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMConfig, FMPrecoder

pytest.importorskip("onnxruntime")

from mimofm.export import export_fm_onnx, run_onnx
from tests.models.toys import FM_TINY


@pytest.mark.parametrize("rate_mode", ["paper", "per-user"])
def test_factorised_onnx_export_matches_pytorch_at_any_batch(tmp_path, rate_mode):
    torch.manual_seed(0)
    model = FMPrecoder(FMConfig(num_bs_ant=16, rate_mode=rate_mode, **FM_TINY)).eval()
    with torch.no_grad():
        if model.extractor.user_rate_embed is not None:  # zero-initialized: make it matter
            model.extractor.user_rate_embed.weight.normal_()
        model.heads[0].mask_out.bias[:5] = -4.0  # some antennas off in rate-request mode
        model.heads[0].mask_out.bias[-1] = 0.0
    path = export_fm_onnx(model, tmp_path / "fm.onnx", output="factors")
    for batch in (1, 7):  # exported at batch 2: the batch axis is dynamic
        h = torch.randn(batch, 4, 16, dtype=torch.complex64) * 10 ** torch.empty(batch, 4, 1).uniform_(-1, 1)
        rates = torch.rand(batch, 4) * 2
        with torch.no_grad():
            for r in (None, rates):
                w_t = model(h, rates=r).w.numpy()
                w_o = run_onnx(path, h.numpy(), None if r is None else r.numpy())
                assert w_o.shape == (batch, 16, 4)
                assert np.abs(w_o - w_t).max() < 1e-4
    # each sample either keeps the mask (5 antennas off) or meets its requests exactly (exact power layer,
    # all antennas on when the masked beams cannot)
    w_o = run_onnx(path, h.numpy(), rates.numpy())
    off = (np.abs(w_o[:, :5]) == 0).all((1, 2))
    got = user_rates(h.to(torch.complex128), torch.from_numpy(w_o)).numpy()
    exact = np.isclose(got, rates.double().numpy(), rtol=1e-6, atol=1e-9).all(-1)
    assert (off | exact).all()
    with torch.no_grad():
        assert (np.abs(model(h, rates=rates, exact_rates=False).w.numpy()[:, :5]) == 0).all()


def test_the_default_fm_graph_outputs_w_itself_like_pytorch_at_any_batch(tmp_path):
    import onnx

    torch.manual_seed(0)
    model = FMPrecoder(FMConfig(num_bs_ant=16, **FM_TINY)).eval()
    path = export_fm_onnx(model, tmp_path / "fm.onnx")
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["W_re", "W_im"]
    assert [i.name for i in proto.graph.input] == ["h_re", "h_im"]
    assert {(n.domain, n.op_type) for n in proto.graph.node} >= {("com.microsoft", "Inverse")}
    for batch in (1, 6):  # exported at batch 2: the batch axis is dynamic
        # per-user gains over two decades (20 dB spread), as on ray-traced sites
        h = torch.randn(batch, 4, 16, dtype=torch.complex64) * 10 ** torch.empty(batch, 4, 1).uniform_(-1, 1)
        with torch.no_grad():
            w_t = model(h).w.numpy()
        w_o = run_onnx(path, h.numpy())
        assert w_o.shape == (batch, 16, 4) and w_o.dtype == np.complex64
        assert np.abs(w_o - w_t).max() < 2e-5  # float32 graph vs complex128 solve in PyTorch
        np.testing.assert_allclose((np.abs(w_o) ** 2).sum((1, 2)), 1.0, rtol=1e-5)
    with pytest.raises(MimofmInputError, match="--factorised"):
        run_onnx(path, h.numpy(), np.ones((batch, 4), dtype=np.float32))
    with pytest.raises(MimofmInputError, match="'W' or 'factors'"):
        export_fm_onnx(model, tmp_path / "x.onnx", output="w")


def test_onnx_export_refuses_the_old_head():
    model = FMPrecoder(FMConfig(num_bs_ant=16, head_form="rzf-mix", **FM_TINY))
    with pytest.raises(MimofmInputError, match="head_form='structure'"):
        export_fm_onnx(model, "unused.onnx")


def test_papp_onnx_export_matches_pytorch(tmp_path):
    from mimofm.export import export_papp_onnx, run_onnx
    from mimofm.models.papp import PaPP, PaPPConfig
    from tests.models.test_papp import TINY as PAPP_TINY

    h = torch.randn(5, 4, 16, dtype=torch.complex64)
    for num_rf in (
        None,
        6,
    ):  # fully digital and hybrid (its analog and digital stages formed outside the graph)
        torch.manual_seed(0)
        model = PaPP(PaPPConfig(num_rf=num_rf, **PAPP_TINY)).eval()
        path = export_papp_onnx(model, tmp_path / f"papp-{num_rf}.onnx")
        with torch.no_grad():
            assert np.abs(run_onnx(path, h.numpy()) - model(h).numpy()).max() < 1e-4
    with pytest.raises(MimofmInputError, match="no rate-target mode"):
        run_onnx(path, h.numpy(), np.ones((5, 4)))


def test_wifoe_onnx_user_and_bs_graphs_match_pytorch_for_any_batch_and_user_count(tmp_path):
    from mimofm.export import export_wifoe_onnx, run_wifoe_onnx
    from mimofm.models.wifoe import TaskShape, WiFoE, WiFoEConfig

    torch.manual_seed(0)
    m = WiFoE(
        WiFoEConfig(
            d_model=32,
            num_layers=2,
            num_heads=4,
            d_ff=64,
            num_experts=4,
            top_k=2,
            tasks=[TaskShape("A", 16, 4, 6)],
        )
    ).eval()
    paths = export_wifoe_onnx(m, "A", tmp_path / "A")
    assert all(p.exists() for p in paths.values())
    g = torch.Generator().manual_seed(1)
    for b, k in ((1, 3), (5, 7)):
        h = torch.complex(torch.randn(b, k, 16, generator=g), torch.randn(b, k, 16, generator=g))
        z = torch.complex(torch.randn(b, k, 4, generator=g), torch.randn(b, k, 4, generator=g)) * 0.7
        with torch.no_grad():
            w = m(h, "A", noise=z).numpy()
        np.testing.assert_allclose(run_wifoe_onnx(tmp_path / "A", h.numpy(), z.numpy()), w, atol=1e-5)
    with torch.no_grad():  # pilots sent with more energy (a stated pilot SNR): the same on both sides
        w = m(h, "A", noise=z, pilot_energy=6.0).numpy()
    np.testing.assert_allclose(
        run_wifoe_onnx(tmp_path / "A", h.numpy(), z.numpy(), pilot_energy=6.0), w, atol=1e-5
    )
    assert not any(mod.dense_dispatch for mod in m.modules() if hasattr(mod, "dense_dispatch"))
