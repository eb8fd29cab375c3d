"""Regenerate the small channel samples of this folder, each made by the library whose format it shows.

Run from the repository root (not part of the tests; the samples are committed)::

    PYTHONPATH=src python tests/channels/data/make_samples.py sionna
    PYTHONPATH=src:/path/to/deepmimo python tests/channels/data/make_samples.py deepmimo

* ``sionna_umi_cir.npz`` — Sionna PHY's TR 38.901 UMi model (downlink): ``a`` ``[batch, num_rx,
  num_rx_ant, num_tx, num_tx_ant, num_paths, num_time_steps]`` complex64 and ``tau`` ``[batch, num_rx,
  num_tx, num_paths]``, as ``model(num_time_samples, sampling_frequency)`` returns them.
* ``sionna_umi_uplink_cir.npz`` — the same model with ``direction="uplink"`` (the UEs transmit):
  ``a`` ``[batch, num_rx=1, num_rx_ant=N_t, num_tx=UEs, num_tx_ant=1, num_paths, 1]``, ``tau``.
* ``sionna_umi_ofdm.h5`` — ``sionna.phy.channel.cir_to_ofdm_channel`` of the downlink ``a``/``tau`` above:
  dataset ``h_freq`` ``[batch, num_rx, num_rx_ant, num_tx, num_tx_ant, num_time_steps, fft_size]``
  complex64 (h5py's native complex type).
* ``deepmimo_v4.npz`` — DeepMIMO v4 (the ``deepmimo`` package, 4.0.5) ``Dataset.compute_channels`` on
  hand-made ray-tracing paths (the package needs a scenario for real paths; downloading one is not
  possible here, so each user's paths — powers, phases, delays, angles — are drawn at random and handed
  to DeepMIMO's own channel generator): ``channel`` ``[users, rx ant, tx ant, subcarriers]`` (frequency
  domain), ``channel_td`` ``[users, rx ant, tx ant, paths]`` (time domain, ``freq_domain=0``),
  ``rx_pos`` ``[users, 3]`` and ``total_subcarriers`` (the OFDM size the subcarriers were picked from).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _umi(direction: str, num_ut: int, batch: int, seed: int):
    """TR 38.901 UMi ``a`` and ``tau`` from Sionna PHY for a 4×4 BS panel and single-antenna UEs."""
    import torch  # deferred: only to pass Sionna its tensors
    from sionna.phy import config
    from sionna.phy.channel import gen_single_sector_topology
    from sionna.phy.channel.tr38901 import PanelArray, UMi

    config.seed = seed
    fc = 3.5e9
    common = dict(precision="single", device="cpu")
    bs = PanelArray(
        num_rows_per_panel=4,
        num_cols_per_panel=4,
        polarization="single",
        polarization_type="V",
        antenna_pattern="38.901",
        carrier_frequency=fc,
        **common,
    )
    ut = PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=1,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni",
        carrier_frequency=fc,
        **common,
    )
    model = UMi(
        carrier_frequency=fc, o2i_model="low", ut_array=ut, bs_array=bs, direction=direction, **common
    )
    topo = gen_single_sector_topology(
        batch_size=batch, num_ut=num_ut, scenario="umi", indoor_probability=0.0, **common
    )
    model.set_topology(*topo)
    a, tau = model(num_time_samples=1, sampling_frequency=1.0)
    assert isinstance(a, torch.Tensor)
    return a, tau


def make_sionna() -> None:
    """The three Sionna samples (TR 38.901 UMi: downlink and uplink CIR, and the OFDM channel)."""
    import h5py
    import sionna
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    a, tau = _umi("downlink", num_ut=6, batch=2, seed=1)
    meta = np.array(f"sionna {sionna.__version__}: TR 38.901 UMi downlink, 3.5 GHz, 4x4 BS panel")
    np.savez_compressed(HERE / "sionna_umi_cir.npz", a=a.numpy(), tau=tau.numpy(), source=meta)
    freqs = subcarrier_frequencies(12, 30e3, precision="single", device="cpu")
    h_freq = cir_to_ofdm_channel(freqs, a, tau, normalize=False)
    with h5py.File(HERE / "sionna_umi_ofdm.h5", "w") as f:
        f.create_dataset("h_freq", data=h_freq.numpy(), compression="gzip")
        f.attrs["source"] = (
            f"sionna {sionna.__version__}: cir_to_ofdm_channel of sionna_umi_cir.npz, 12 x 30 kHz"
        )
    a_ul, tau_ul = _umi("uplink", num_ut=6, batch=2, seed=2)
    meta_ul = np.array(f"sionna {sionna.__version__}: TR 38.901 UMi uplink, 3.5 GHz, 4x4 BS panel")
    np.savez_compressed(
        HERE / "sionna_umi_uplink_cir.npz", a=a_ul.numpy(), tau=tau_ul.numpy(), source=meta_ul
    )


def make_deepmimo() -> None:
    """DeepMIMO v4 channels (frequency and time domain) of 24 users with random hand-made paths."""
    import deepmimo as dm

    rng = np.random.default_rng(0)
    n_ue, n_paths, total_sc = 24, 4, 64
    data = {
        "power": rng.uniform(-130.0, -90.0, (n_ue, n_paths)),  # dBW
        "phase": rng.uniform(-180.0, 180.0, (n_ue, n_paths)),  # degrees
        "delay": rng.uniform(1e-7, 2e-6, (n_ue, n_paths)),  # seconds
        "aoa_az": rng.uniform(-180.0, 180.0, (n_ue, n_paths)),
        "aoa_el": rng.uniform(-30.0, 30.0, (n_ue, n_paths)),
        "aod_az": rng.uniform(-180.0, 180.0, (n_ue, n_paths)),
        "aod_el": rng.uniform(-30.0, 30.0, (n_ue, n_paths)),
        "rx_pos": rng.uniform(-100.0, 100.0, (n_ue, 3)),
        "tx_pos": np.array([[0.0, 0.0, 10.0]]),
        "inter": np.zeros((n_ue, n_paths)),
    }
    bs = {"shape": [4, 4]}
    ofdm = {"subcarriers": total_sc, "selected_subcarriers": np.arange(8), "bandwidth": 10e6}
    channels = []
    for freq_domain in (1, 0):
        ds = dm.Dataset(dict(data))
        ds.scene = dm.Scene()  # an empty scene: no moving objects, no Doppler
        params = dm.ChannelParameters(bs_antenna=bs, ofdm=ofdm, freq_domain=freq_domain)
        channels.append(ds.compute_channels(params))
    freq, td = channels
    np.savez_compressed(
        HERE / "deepmimo_v4.npz",
        channel=np.asarray(freq),
        channel_td=np.asarray(td),
        rx_pos=data["rx_pos"],
        total_subcarriers=np.array(total_sc),
        source=np.array(f"deepmimo {dm.__version__}: Dataset.compute_channels on hand-made paths"),
    )


if __name__ == "__main__":
    {"sionna": make_sionna, "deepmimo": make_deepmimo}[sys.argv[1]]()
