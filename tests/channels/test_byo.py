"""Bring your own channels: DeepMIMO, Sionna, QuaDRiGa/MATLAB and NumPy/HDF5 layouts become H [n, N_t].

Every imported H is compared with the slice, sum or mean of the source array it must equal. The samples of
tests/channels/data were made by the libraries themselves (see tests/channels/data/make_samples.py):
DeepMIMO v4 (``deepmimo`` 4.0.5, ``Dataset.compute_channels`` on hand-made ray paths, since no scenario can
be downloaded here) and Sionna 2.2 (TR 38.901 UMi ``a``/``tau``, ``cir_to_ofdm_channel``). QuaDRiGa needs
MATLAB/Octave, which is not available: its samples are written here in its documented layouts
(``qd_channel.fr`` / ``coeff``: ``[rx antennas, tx antennas, carriers | paths, snapshots]``; users stacked as
``[N_r, N_t, n]``), with scipy (MATLAB v5) and the MATLAB v7.3 writer of test_import.
"""

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from mimofm.channels.io import ImportOptions, load_channels, read_channels
from mimofm.core.validation import MimofmInputError
from tests.channels.test_import import _mat73

DATA = Path(__file__).parent / "data"
RTOL = 1e-6


def _close(got, want):
    got = got.numpy() if hasattr(got, "numpy") else got
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


def _rand(*shape, seed=0, scale=1e-5):
    rng = np.random.default_rng(seed)
    return ((rng.normal(size=shape) + 1j * rng.normal(size=shape)) * scale).astype(np.complex64)


# ---------------------------------------------------------------------------------------------
# DeepMIMO v4


@pytest.fixture(scope="module")
def deepmimo():
    with np.load(DATA / "deepmimo_v4.npz") as z:
        return {k: z[k] for k in z.files}


def test_deepmimo_v4_subcarrier_mean_is_the_default_and_explained(deepmimo, caplog):
    ch = deepmimo["channel"]  # [users 24, rx 1, tx 16, subcarriers 8], as Dataset.compute_channels returns it
    with caplog.at_level(logging.INFO, logger="mimofm.channels.io"):
        cs = load_channels(DATA / "deepmimo_v4.npz")
    _close(cs.h, ch[:, 0, :, :].mean(axis=-1))
    assert cs.h.shape == (24, 16)
    np.testing.assert_array_equal(cs.positions.numpy(), deepmimo["rx_pos"])  # DeepMIMO's rx_pos
    line = (
        "read 'channel' [24, 1, 16, 8] as DeepMIMO v4 [users, rx, tx, subcarriers]: "
        "subcarrier mean over 8 -> [24, 16]"
    )
    assert line in caplog.text


def test_deepmimo_v4_one_subcarrier_and_all_subcarriers(deepmimo, tmp_path):
    ch = deepmimo["channel"]
    cs, read_as = read_channels(DATA / "deepmimo_v4.npz", None, ImportOptions(subcarrier=3))
    _close(cs.h, ch[:, 0, :, 3])
    assert "subcarrier 3 of 8" in read_as.line()
    cs = load_channels(DATA / "deepmimo_v4.npz", subcarrier="all")
    # [24, 16, 8] -> [24, 8, 16] -> [192, 16]: user-major, each user's 8 subcarriers in a row
    _close(cs.h, ch[:, 0].transpose(0, 2, 1).reshape(24 * 8, 16))
    np.testing.assert_array_equal(cs.positions.numpy(), np.repeat(deepmimo["rx_pos"], 8, axis=0))
    # the name the brief's users give it: `channels`
    np.savez(tmp_path / "dm.npz", channels=ch)
    _, read_as = read_channels(tmp_path / "dm.npz")
    assert read_as.line().startswith("read 'channels' [24, 1, 16, 8] as DeepMIMO v4")


def test_deepmimo_v4_time_domain_paths_summed_agree_with_its_frequency_domain(deepmimo):
    """DeepMIMO's time-domain channel holds one entry per path (sqrt(P)·e^{jφ}·array response) and its OFDM
    channel at subcarrier 0 is the same sum over paths divided by sqrt(total subcarriers): the two
    readings of one dataset agree."""
    td = load_channels(DATA / "deepmimo_v4.npz", var="channel_td", layout="n,nrx,ntx,path")
    _close(td.h, deepmimo["channel_td"][:, 0].sum(axis=-1))
    f0 = load_channels(DATA / "deepmimo_v4.npz", subcarrier=0)
    _close(td.h.numpy() / np.sqrt(int(deepmimo["total_subcarriers"])), f0.h.numpy())


def test_deepmimo_user_without_paths_is_refused_with_the_fix(deepmimo, tmp_path):
    ch = deepmimo["channel"].copy()
    ch[5] = 0  # DeepMIMO leaves users without paths at zero
    np.savez(tmp_path / "dm.npz", channel=ch)
    with pytest.raises(MimofmInputError, match=r"1 all-zero rows \(first: 5\).*num_paths > 0"):
        load_channels(tmp_path / "dm.npz")


def test_ue_with_several_antennas_needs_a_layout(deepmimo, tmp_path):
    ch = np.concatenate([deepmimo["channel"]] * 2, axis=1)  # [24, 2 UE antennas, 16, 8]
    np.savez(tmp_path / "two.npz", channel=ch)
    with pytest.raises(MimofmInputError, match="no known 4-D layout"):
        load_channels(tmp_path / "two.npz")
    with pytest.raises(MimofmInputError, match=r"the UEs have 2 antennas .*mark that axis `n`"):
        load_channels(tmp_path / "two.npz", layout="n,nrx,ntx,sc")
    cs = load_channels(tmp_path / "two.npz", layout="n,n,ntx,sc")  # each UE antenna a position
    _close(cs.h, ch.mean(axis=-1).reshape(48, 16))  # [24, 2, 16] -> [48, 16]


# ---------------------------------------------------------------------------------------------
# Sionna


@pytest.fixture(scope="module")
def umi():
    with np.load(DATA / "sionna_umi_cir.npz") as z:
        return z["a"], z["tau"]  # [2, 6, 1, 1, 16, 23, 1], [2, 6, 1, 23]


def test_sionna_tr38901_cir_downlink(umi):
    a, _ = umi
    cs, read_as = read_channels(DATA / "sionna_umi_cir.npz")
    # [batch, num_rx, 1, 1, N_t, paths, 1] -> sum over paths -> [batch·num_rx, N_t]
    _close(cs.h, a[:, :, 0, 0, :, :, 0].sum(axis=-1).reshape(12, 16))
    assert read_as.line() == (
        "read 'a' [2, 6, 1, 1, 16, 23, 1] as Sionna PHY CIR a [batch, num_rx, num_rx_ant, num_tx, "
        "num_tx_ant, num_paths, num_time_steps] (downlink): sum over 23 paths; positions = batch 2 × "
        "num_rx 6 -> [12, 16]"
    )


def test_sionna_tr38901_cir_uplink_by_reciprocity():
    with np.load(DATA / "sionna_umi_uplink_cir.npz") as z:
        a = z["a"]  # [batch 2, num_rx 1 (BS), N_t 16, num_tx 6 (UEs), 1, paths, 1]
    cs, read_as = read_channels(DATA / "sionna_umi_uplink_cir.npz")
    # sum over paths: [batch, N_t, UEs] -> [batch, UEs, N_t] -> [12, N_t]; transpose, never conjugate
    want = a[:, 0, :, :, 0, :, 0].sum(axis=-1).transpose(0, 2, 1).reshape(12, 16)
    _close(cs.h, want)
    assert "uplink" in read_as.line() and "not conjugated" in read_as.line()


def test_sionna_ofdm_channel_in_hdf5_and_its_zero_frequency_equals_the_cir(umi):
    """``cir_to_ofdm_channel`` at 12 subcarriers of 30 kHz: frequencies -6..5 × 30 kHz, so subcarrier 6 is
    0 Hz, where the frequency response is the sum of the path coefficients (the CIR reading)."""
    with h5py.File(DATA / "sionna_umi_ofdm.h5") as f:
        hf = f["h_freq"][()]  # [2, 6, 1, 1, 16, 1, 12]
    cs, read_as = read_channels(DATA / "sionna_umi_ofdm.h5")
    _close(cs.h, hf[:, :, 0, 0, :, 0, :].mean(axis=-1).reshape(12, 16))
    assert "Sionna PHY frequency response" in read_as.line() and "subcarrier mean over 12" in read_as.line()
    dc = load_channels(DATA / "sionna_umi_ofdm.h5", subcarrier=6)
    _close(dc.h, hf[:, :, 0, 0, :, 0, 6].reshape(12, 16))
    a, _ = umi
    np.testing.assert_allclose(
        dc.h.numpy(),
        a[:, :, 0, 0, :, :, 0].sum(axis=-1).reshape(12, 16),
        rtol=1e-4,
        atol=1e-4 * np.abs(a).max(),
    )


def test_sionna_rt_paths_cir_layout(umi, tmp_path):
    """Sionna RT's ``Paths.cir()`` has no batch axis: ``[num_rx, num_rx_ant, num_tx, num_tx_ant, num_paths,
    num_time_steps]`` (its documented shape). No ray tracing in the tests: the sample is the first batch of
    the TR 38.901 one, which has exactly that layout."""
    a, tau = umi
    np.savez(tmp_path / "rt.npz", a=a[0], tau=tau[0])
    cs, read_as = read_channels(tmp_path / "rt.npz")
    _close(cs.h, a[0, :, 0, 0, :, :, 0].sum(axis=-1))
    assert read_as.line().startswith("read 'a' [6, 1, 1, 16, 23, 1] as Sionna RT CIR a [num_rx,")


def test_sionna_array_without_a_name_hint_is_refused_then_read_with_a_layout(umi, tmp_path):
    a, _ = umi
    np.save(tmp_path / "a.npy", a)  # a .npy has no variable name and no tau: paths or subcarriers?
    with pytest.raises(
        MimofmInputError, match=r"--layout n,n,nrx,1,ntx,path,t or --layout n,n,nrx,1,ntx,t,sc"
    ):
        load_channels(tmp_path / "a.npy")
    cs = load_channels(tmp_path / "a.npy", layout="n,n,nrx,1,ntx,path,t")
    _close(cs.h, a[:, :, 0, 0, :, :, 0].sum(axis=-1).reshape(12, 16))


def test_several_time_steps_or_transmitters_are_refused_with_the_fix(umi, tmp_path):
    a, tau = umi
    np.savez(tmp_path / "t.npz", a=np.repeat(a, 3, axis=-1), tau=tau)  # 3 time steps
    with pytest.raises(MimofmInputError, match=r"3 time steps \(num_time_steps\).*mark that axis `n`"):
        load_channels(tmp_path / "t.npz")
    np.savez(tmp_path / "bs.npz", a=np.repeat(a, 2, axis=3), tau=tau)  # 2 transmitters (BSs)
    with pytest.raises(MimofmInputError, match=r"num_tx has 2 entries where 1 is expected"):
        load_channels(tmp_path / "bs.npz")


# ---------------------------------------------------------------------------------------------
# QuaDRiGa / MATLAB


def test_quadriga_users_stacked_as_rx_tx_n_in_mat_v5_and_v73(tmp_path):
    h = _rand(1, 16, 40)  # [N_r = 1, N_t, n]: one qd_channel per user, stacked along the 3rd dimension
    scipy.io.savemat(tmp_path / "q5.mat", {"H": h})
    _mat73(tmp_path / "q73.mat", {"H": h})
    for name in ("q5.mat", "q73.mat"):
        cs, read_as = read_channels(tmp_path / name)
        _close(cs.h, h[0].T)  # [16, 40] -> [40, 16]
        assert "QuaDRiGa/MATLAB [rx, tx, positions]" in read_as.line(), name


def test_quadriga_frequency_response_and_coefficients(tmp_path):
    fr = _rand(1, 16, 6, 30, seed=1)  # qd_channel.fr(): [rx ant, tx ant, carriers, snapshots]
    coeff = _rand(1, 16, 5, 30, seed=2)  # qd_channel.coeff: [rx ant, tx ant, paths, snapshots]
    scipy.io.savemat(tmp_path / "fr.mat", {"H": fr})
    cs = load_channels(tmp_path / "fr.mat")
    _close(cs.h, fr[0].mean(axis=1).T)  # carriers averaged: [16, 30] -> [30, 16]
    cs = load_channels(tmp_path / "fr.mat", subcarrier=2)
    _close(cs.h, fr[0, :, 2, :].T)
    _mat73(tmp_path / "coeff.mat", {"coeff": coeff})
    cs, read_as = read_channels(tmp_path / "coeff.mat")
    _close(cs.h, coeff[0].sum(axis=1).T)  # paths summed
    assert "QuaDRiGa [rx, tx, paths, snapshots]" in read_as.line()


def test_mat_3d_with_several_rx_antennas_is_ambiguous(tmp_path):
    scipy.io.savemat(tmp_path / "q.mat", {"H": _rand(2, 16, 40)})
    with pytest.raises(MimofmInputError, match=r"QuaDRiGa \[N_r, N_t, n\].*--layout n,ntx,n"):
        load_channels(tmp_path / "q.mat")
    h = _rand(2, 16, 40)
    scipy.io.savemat(tmp_path / "q.mat", {"H": h})
    cs = load_channels(tmp_path / "q.mat", layout="n,ntx,n")  # each UE antenna a position
    _close(cs.h, h.transpose(0, 2, 1).reshape(80, 16))  # [2, 16, 40] -> [2, 40, 16] -> [80, 16]


# ---------------------------------------------------------------------------------------------
# NumPy / HDF5


def test_batches_of_users_are_flattened_with_their_los_and_positions(tmp_path):
    h = _rand(10, 4, 32)  # [B, K, N_t]
    los = np.random.default_rng(1).random((10, 4)) < 0.5
    pos = np.random.default_rng(2).uniform(size=(10, 4, 3))
    np.savez(tmp_path / "bk.npz", H=h, los=los, positions=pos)
    cs, read_as = read_channels(tmp_path / "bk.npz")
    _close(cs.h, h.reshape(40, 32))
    np.testing.assert_array_equal(cs.los.numpy(), los.reshape(40))
    np.testing.assert_array_equal(cs.positions.numpy(), pos.reshape(40, 3))
    assert "[batch, users, antennas]: positions = batch 10 × users 4 -> [40, 32]" in read_as.line()


def test_positions_antennas_subcarriers_in_hdf5(tmp_path):
    h = _rand(50, 64, 12)  # [n, N_t, S]
    los = np.arange(50) % 2 == 0
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["H"], f["los"] = h, los
    _close(load_channels(tmp_path / "s.h5").h, h.mean(axis=-1))
    _close(load_channels(tmp_path / "s.h5", subcarrier=11).h, h[:, :, 11])
    cs = load_channels(tmp_path / "s.h5", subcarrier="all")
    _close(cs.h, h.transpose(0, 2, 1).reshape(600, 64))  # [50, 64, 12] -> [50, 12, 64] -> [600, 64]
    np.testing.assert_array_equal(cs.los.numpy(), np.repeat(los, 12))


def test_ambiguous_3d_is_refused_and_resolved_by_subcarrier_or_layout(tmp_path):
    h = _rand(20, 32, 64)  # [B, K=32, N_t=64] or [n, N_t=32, S=64]?
    np.save(tmp_path / "x.npy", h)
    with pytest.raises(
        MimofmInputError,
        match=r"ambiguous: \[batch, users, antennas\].*pass --layout n,n,ntx or --layout n,ntx,sc",
    ):
        load_channels(tmp_path / "x.npy")
    _close(load_channels(tmp_path / "x.npy", subcarrier="mean").h, h.mean(axis=-1))
    _close(load_channels(tmp_path / "x.npy", layout="n,n,ntx").h, h.reshape(640, 64))


def test_layout_transposes_and_flattens_upa_axes(tmp_path):
    h = _rand(64, 100)
    np.save(tmp_path / "t.npy", h)  # stored [N_t, n]
    cs, read_as = read_channels(tmp_path / "t.npy", None, ImportOptions(layout="ntx,n"))
    _close(cs.h, h.T)
    assert "transposed" in read_as.line()
    upa = _rand(30, 4, 8)  # [n, rows, cols] of an 4×8 UPA
    np.save(tmp_path / "u.npy", upa)
    _close(load_channels(tmp_path / "u.npy", layout="n,ntx,ntx").h, upa.reshape(30, 32))


def test_var_picks_an_array_and_hdf5_paths(tmp_path):
    h, g = _rand(30, 8), _rand(30, 8, seed=3)
    np.savez(tmp_path / "two.npz", a=h, h_freq=g)
    with pytest.raises(MimofmInputError, match=r"several channel arrays \(`h_freq`, `a`\); pass --var"):
        load_channels(tmp_path / "two.npz")
    _close(load_channels(tmp_path / "two.npz", var="h_freq").h, g)
    with pytest.raises(MimofmInputError, match=r"has no variable `nope`.*found: a \[30, 8\] complex64"):
        load_channels(tmp_path / "two.npz", var="nope")
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["run1/channels"] = h
    _close(load_channels(tmp_path / "g.h5", var="run1/channels").h, h)


# ---------------------------------------------------------------------------------------------
# refusals


def test_transposed_h_is_refused_naming_the_swap(tmp_path):
    np.save(tmp_path / "t.npy", _rand(64, 1000))
    with pytest.raises(MimofmInputError) as e:
        load_channels(tmp_path / "t.npy")
    msg = str(e.value)
    assert "looks transposed: 64 rows × 1000 columns" in msg
    assert "--layout ntx,n" in msg and "--layout n,ntx" in msg and "[num_positions, num_bs_ant]" in msg
    assert load_channels(tmp_path / "t.npy", layout="n,ntx").h.shape == (64, 1000)  # the user says so
    np.savez(tmp_path / "few.npz", H=_rand(8, 16), los=np.ones(8, dtype=bool))  # `los` confirms 8 positions
    assert load_channels(tmp_path / "few.npz").h.shape == (8, 16)


def test_nonfinite_and_zero_users_are_refused_where_they_are(tmp_path):
    h = _rand(10, 4, 32)
    h[3, 2, 5] = np.nan
    np.save(tmp_path / "nan.npy", h)
    with pytest.raises(
        MimofmInputError, match=r"1 NaN/Inf entries in 1 positions \(first: 14 = source position \[3, 2\]\)"
    ):
        load_channels(tmp_path / "nan.npy")
    h = _rand(10, 4, 32)
    h[1, 2] = 0
    np.save(tmp_path / "zero.npy", h)
    with pytest.raises(
        MimofmInputError, match=r"all-zero rows \(first: 6 = source position \[1, 2\]\).*remove"
    ):
        load_channels(tmp_path / "zero.npy")


def test_tiny_gains_are_refused_saying_how_the_snr_is_set(tmp_path):
    np.save(tmp_path / "tiny.npy", _rand(40, 16, scale=1e-17))  # ‖h‖² ≈ 3e-33: about -325 dB
    with pytest.raises(MimofmInputError) as e:
        load_channels(tmp_path / "tiny.npy")
    msg = str(e.value)
    assert "median gain of -32" in msg and "below -300 dB" in msg
    assert "--snr-db" in msg and "median gain" in msg and "--noise-dbm" in msg and "raw gains" in msg
    h = _rand(40, 16).astype(np.complex128)
    h[7] *= 1e-150  # one position at about -3090 dB
    np.save(tmp_path / "one.npy", h)
    with pytest.raises(MimofmInputError, match=r"1 positions with a gain below -300 dB \(first: 7,"):
        load_channels(tmp_path / "one.npy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subcarrier": 8}, r"`--subcarrier 8` is out of range: 'channel' has 8 subcarriers \(0..7\)"),
        ({"subcarrier": "middle"}, "must be an index"),
        ({"subcarrier": -1}, ">= 0"),
        ({"layout": "n,ntx"}, r"names 2 axes but 'channel' has 4: \[24, 1, 16, 8\]"),
        ({"layout": "n,rx,ntx,sc"}, "unknown axis label"),
        ({"layout": "n,1,sc,sc"}, "at least one `n`"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(MimofmInputError, match=match):
        load_channels(DATA / "deepmimo_v4.npz", **kwargs)


def test_subcarrier_without_a_subcarrier_axis_is_refused(tmp_path):
    np.save(tmp_path / "h.npy", _rand(30, 8))
    with pytest.raises(MimofmInputError, match="has no subcarrier axis; drop --subcarrier"):
        load_channels(tmp_path / "h.npy", subcarrier=0)
