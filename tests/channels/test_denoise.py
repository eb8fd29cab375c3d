import math

import numpy as np
import pytest
import torch

from mimofm.channels.bundled import bundled_sites
from mimofm.channels.denoise import array_shape, beamspace_denoise
from mimofm.channels.sampling import imperfect_csi
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets


def _plane_waves(batch: int, rows: int, cols: int, paths: int, seed: int) -> torch.Tensor:
    """A few plane waves on a half-wavelength planar array, antennas column-first:
    ``[batch, 1, rows·cols]``."""
    g = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="xy")  # [cols, rows]
    # [cols, rows] -> [cols·rows]: index = col·rows + row
    r, c = r.reshape(-1), c.reshape(-1)
    h = np.zeros((batch, rows * cols), complex)
    for _ in range(paths):
        u, v = g.uniform(-1, 1, (2, batch, 1))
        amp = (g.standard_normal((batch, 1)) + 1j * g.standard_normal((batch, 1))) / math.sqrt(2)
        h += amp * np.exp(1j * np.pi * (u * r + v * c))
    return torch.tensor(h)[:, None, :]


def _nmse(est, h):
    return float(((est - h).abs().square().sum(-1) / h.abs().square().sum(-1)).mean())


def test_denoising_a_few_plane_waves_removes_most_of_the_error():
    h = _plane_waves(200, 8, 8, 3, seed=0)
    est = imperfect_csi(h, -10.0, seed=1)
    out = beamspace_denoise(est, 8, 8, -10.0)
    assert out.shape == est.shape and out.dtype == est.dtype
    assert _nmse(est, h) == pytest.approx(0.1, rel=0.1)
    assert _nmse(out, h) < 0.6 * _nmse(est, h)  # at least 2.2 dB better (off-grid paths leak)


def test_a_wrong_antenna_order_is_worse_than_the_right_one():
    h = _plane_waves(200, 4, 16, 2, seed=2)  # not square: the order matters
    est = imperfect_csi(h, -10.0, seed=3)
    right = _nmse(beamspace_denoise(est, 4, 16, -10.0), h)
    wrong = _nmse(beamspace_denoise(est, 16, 4, -10.0), h)
    assert right < wrong


def test_a_tiny_threshold_keeps_everything_and_inverts_exactly():
    h = _plane_waves(8, 8, 8, 2, seed=4)
    est = imperfect_csi(h, -10.0, seed=5)
    out = beamspace_denoise(est, 8, 8, -10.0, threshold=1e-12)
    torch.testing.assert_close(out, est)


def test_bad_arguments_are_named():
    h = _plane_waves(2, 8, 8, 1, seed=6)
    with pytest.raises(MimofmInputError, match="8x4"):
        beamspace_denoise(h, 8, 4, -10.0)
    with pytest.raises(MimofmInputError, match="nmse_db"):
        beamspace_denoise(h, 8, 8, float("nan"))
    with pytest.raises(MimofmInputError, match="does not match"):
        array_shape({"settings": {"rows": 4, "cols": 4}}, 64)
    assert array_shape({}, 16) == (1, 16)


def test_eval_with_denoised_csi_is_paired_and_better_for_wmmse():
    cs = bundled_sites()[0]
    assert array_shape(cs.meta, cs.num_bs_ant) == (8, 8)
    base = dict(precoders=["wmmse"], snr_db=[20.0], samples=40, positions="test", csi_nmse_db=-10.0)
    raw = evaluate_sets([cs], EvalConfig(**base))["results"][0]
    den = evaluate_sets([cs], EvalConfig(**base, csi_denoise=True))["results"][0]
    assert den["csi_denoise"] is True and raw["csi_denoise"] is False
    assert den["sum_rate_mean"] > raw["sum_rate_mean"]
    with pytest.raises(MimofmInputError, match="csi_nmse_db"):
        EvalConfig(precoders=["zf"], snr_db=[20.0], csi_denoise=True).validate()
