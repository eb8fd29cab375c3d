"""`mimofm.load_precoder` as PyTorch users expect it: an nn.Module taking torch, numpy or nested lists,
unbatched or with any leading shape, on a chosen device; raw channel gains refused."""

import copy

import numpy as np
import pytest
import torch

import mimofm
from mimofm.channels.bundled import bundled_dir
from mimofm.core.linkbudget import LinkBudget
from mimofm.core.validation import MimofmInputError


def _h(*shape, seed=0, dtype=torch.complex64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=dtype, generator=g)  # CN(0, 1) entries: per-user SNR ≈ N


@pytest.mark.parametrize("name", ["zf", "fm"])
def test_numpy_and_list_input_return_numpy_equal_to_the_torch_result(name):
    f = mimofm.load_precoder(name)
    h = _h(3, 4, 64)
    w = f(h)
    w_np = f(h.numpy())
    assert isinstance(w, torch.Tensor) and isinstance(w_np, np.ndarray)
    assert w_np.dtype == np.complex64 and w_np.shape == (3, 64, 4)
    np.testing.assert_array_equal(w_np, w.numpy())
    w_list = f(h[0].numpy().tolist())  # nested lists of Python complex: read as complex128
    assert isinstance(w_list, np.ndarray) and w_list.shape == (64, 4)
    np.testing.assert_allclose(w_list, w[0].numpy(), rtol=0, atol=1e-5)


def test_unbatched_and_two_leading_axes_keep_their_shape():
    zf = mimofm.load_precoder("zf")
    h = _h(2, 3, 4, 16, dtype=torch.complex128)
    w = zf(h)
    assert w.shape == (2, 3, 16, 4) and w.dtype == torch.complex128
    torch.testing.assert_close(mimofm.total_power(w), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(zf(h[1, 2]), w[1, 2])  # unbatched [K, N] -> [N, K]
    # [..., K, N] -> [B, K, N]: the flattened batch gives the same precoders
    torch.testing.assert_close(zf(h.reshape(6, 4, 16)).reshape(2, 3, 16, 4), w)
    # ZF nulls the other users: H W is diagonal
    hw = h @ w  # [2, 3, 4, 16] @ [2, 3, 16, 4] -> [2, 3, 4, 4]
    off = hw - torch.diag_embed(torch.diagonal(hw, dim1=-2, dim2=-1))
    assert float(off.abs().max()) < 1e-10


def test_fm_rate_targets_take_numpy_and_leading_axes():
    fm = mimofm.load_precoder("fm")
    h = _h(2, 3, 4, 64, seed=1)
    r = torch.full((2, 3, 4), 0.5)
    w = fm(h, rate_targets=r)
    assert w.shape == (2, 3, 64, 4)
    assert float(mimofm.total_power(w).max()) <= 1 + 1e-5
    np.testing.assert_allclose(fm(h.numpy(), rate_targets=r.numpy()), w.numpy(), rtol=0, atol=1e-6)
    with pytest.raises(MimofmInputError, match=r"`rate_targets` must be of shape \[2, 3, 4\]"):
        fm(h, rate_targets=torch.ones(6, 4))


def test_a_precoder_is_an_nn_module_on_its_device():
    fm = mimofm.load_precoder("fm", device="cpu")
    assert isinstance(fm, torch.nn.Module) and isinstance(fm, mimofm.PrecoderModule)
    assert isinstance(fm.network, torch.nn.Module) and not fm.training
    assert fm.device == torch.device("cpu") and "name='fm'" in repr(fm)
    assert sum(p.numel() for p in fm.parameters()) == sum(p.numel() for p in fm.network.parameters()) > 0
    twin = copy.deepcopy(fm)  # a copy runs its own network
    h = _h(2, 4, 64)
    assert twin.network is not fm.network
    torch.testing.assert_close(twin(h), fm(h), rtol=0, atol=0)
    with torch.no_grad():
        for p in twin.network.parameters():
            p.mul_(0.5)
    assert not torch.equal(twin(h), fm(h))
    zf = mimofm.load_precoder("zf")
    assert zf.network is None and list(zf.parameters()) == [] and zf.name == "zf"
    with pytest.raises(MimofmInputError, match="unknown device"):
        mimofm.load_precoder("zf", device="nowhere")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_runs_there_and_returns_on_the_inputs_device():
    fm = mimofm.load_precoder("fm", device="cuda")
    assert fm.device.type == "cuda" and next(fm.parameters()).device.type == "cuda"
    h = _h(3, 4, 64)
    w_cpu = mimofm.load_precoder("fm")(h)
    torch.testing.assert_close(fm(h), w_cpu, rtol=1e-4, atol=1e-5)  # CPU in, CPU out
    assert fm(h.cuda()).device.type == "cuda"


def test_raw_channel_gains_are_refused_with_how_to_scale():
    from mimofm.channels.io import load_channels

    cs = load_channels(bundled_dir() / "etoile-mixed.h5")  # raw gains [positions, antennas]
    n = cs.num_bs_ant
    h_raw = cs.h[:32].reshape(8, 4, n)  # [32, N] -> [8 samples, 4 users, N]
    zf = mimofm.load_precoder("zf")
    for h in (h_raw, h_raw.numpy(), h_raw[0]):
        with pytest.raises(MimofmInputError, match="SNR-scaled") as e:
            zf(h)
        assert "mimofm.core.linkbudget" in str(e.value) and "LinkBudget" in str(e.value)
    # scaled as the message says: accepted, at the site-median SNR asked for
    hs = LinkBudget().with_snr(10.0, cs.h).apply(h_raw)
    w = zf(hs)
    assert w.shape == (8, n, 4)
    g = float(LinkBudget().with_snr(10.0, cs.h).apply(cs.h).abs().square().sum(-1).median())
    assert 10 * np.log10(g) == pytest.approx(10.0, abs=1e-4)


def test_real_or_ragged_input_is_refused():
    zf = mimofm.load_precoder("zf")
    with pytest.raises(MimofmInputError, match="complex torch tensor or numpy array"):
        zf(np.ones((4, 16)))
    with pytest.raises(MimofmInputError, match="complex torch tensor or numpy array"):
        zf([[1j, 2j], [1j]])


def test_wifoe_serves_an_unbatched_channel_like_a_batch_of_one():
    wf = mimofm.load_precoder("wifoe", task="T4")
    h = _h(4, 64, seed=2)
    run = lambda x: wf(x, generator=torch.Generator().manual_seed(0), snr_db=16.0)  # noqa: E731
    w = run(h)
    assert w.shape == (64, 4)
    torch.testing.assert_close(w, run(h[None])[0])


def test_public_surface():
    for name in mimofm.__all__:
        assert name in dir(mimofm) and getattr(mimofm, name) is not None
    names = mimofm.precoder_names()
    assert {"zf", "wmmse", "fm", "papp", "wifoe"} <= set(names) and "dpc" not in names
    assert mimofm.sum_rate.__module__ == "mimofm.core.rates"
    with pytest.raises(AttributeError):
        _ = mimofm.no_such_name
