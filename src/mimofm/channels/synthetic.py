"""A small clustered geometric channel model: the bundled stand-in sites until ray-traced sites ship.

This is *not* ray tracing. Each synthetic site is a base station with an 8×8 half-wavelength UPA at
2 GHz, 25 m high, serving a 120° sector with UEs 50-350 m away at 1.5 m. A site owns a fixed set of
scatterer directions (its "buildings"); every UE draws its multipath clusters around them, so
channels of one site share structure that differs between sites. LOS probability falls with
distance at a site-specific rate (mostly-LOS, mixed, mostly-NLOS sites). Path loss and shadowing
follow 3GPP TR 38.901 UMi street canyon; LOS users get a Rician direct path (K = 9 dB).

Row ``n`` of ``H`` is the channel from the BS antennas to UE ``n``: ``y_n = H[n] @ x`` (raw gains).
Generation is deterministic in the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mimofm.channels.io import ChannelSet

__all__ = ["SyntheticSite", "BUNDLED_SYNTHETIC", "generate_site"]

C = 299_792_458.0


@dataclass(frozen=True)
class SyntheticSite:
    name: str
    los_decay_m: float  # P_LOS(d) = exp(-d / los_decay_m)
    num_scatterers: int
    seed: int
    num_positions: int = 600
    rows: int = 8
    cols: int = 8
    fc_hz: float = 2e9
    bs_height_m: float = 25.0
    ue_height_m: float = 1.5
    d_min_m: float = 50.0
    d_max_m: float = 350.0


BUNDLED_SYNTHETIC = (
    SyntheticSite("synth-open", los_decay_m=900.0, num_scatterers=4, seed=11),
    SyntheticSite("synth-mixed", los_decay_m=260.0, num_scatterers=7, seed=12),
    SyntheticSite("synth-dense", los_decay_m=90.0, num_scatterers=11, seed=13),
)


def _upa_response(az: np.ndarray, el: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Half-wavelength UPA in the y-z plane facing +x: ``[..., rows*cols]`` unit-modulus response."""
    uy = np.cos(el) * np.sin(az)  # direction cosines
    uz = np.sin(el)
    m = np.arange(cols)
    n = np.arange(rows)
    # [..., rows, cols] phase = π (m·uy + n·uz)
    ph = np.pi * (uy[..., None, None] * m[None, :] + uz[..., None, None] * n[:, None])
    return np.exp(1j * ph).reshape(*az.shape, rows * cols)


def _pathloss_db(d3: np.ndarray, los: np.ndarray, fc_ghz: float, h_ut: float) -> np.ndarray:
    pl_los = 32.4 + 21.0 * np.log10(d3) + 20.0 * np.log10(fc_ghz)
    pl_nlos = 22.4 + 35.3 * np.log10(d3) + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    return np.where(los, pl_los, np.maximum(pl_los, pl_nlos))


def generate_site(site: SyntheticSite) -> ChannelSet:
    """Generate one synthetic site: ``h`` complex64 ``[num_positions, rows*cols]`` raw gains."""
    rng = np.random.default_rng(site.seed)
    p = site.num_positions
    n_ant = site.rows * site.cols
    scat_az = rng.uniform(-np.pi / 3, np.pi / 3, site.num_scatterers)  # the site's fixed "buildings"
    scat_el = rng.uniform(-0.05, 0.25, site.num_scatterers)

    d2 = np.sqrt(rng.uniform(site.d_min_m**2, site.d_max_m**2, p))  # uniform over the annulus sector
    az = rng.uniform(-np.pi / 3, np.pi / 3, p)
    dz = site.bs_height_m - site.ue_height_m
    d3 = np.hypot(d2, dz)
    el = -np.arctan2(dz, d2)  # UE below the array
    los = rng.uniform(size=p) < np.exp(-d2 / site.los_decay_m)
    shadow_db = rng.normal(size=p) * np.where(los, 4.0, 7.82)
    gain_db = -_pathloss_db(d3, los, site.fc_hz / 1e9, site.ue_height_m) + shadow_db

    num_clusters, rays = 5, 6
    h = np.zeros((p, n_ant), dtype=np.complex128)
    for i in range(p):
        # clusters around the site's scatterers (weighted towards the UE's own direction)
        closeness = np.exp(-np.abs(scat_az - az[i]) / 0.6)
        pick = rng.choice(site.num_scatterers, size=num_clusters, p=closeness / closeness.sum())
        c_az = scat_az[pick] + rng.normal(scale=0.05, size=num_clusters)
        c_el = scat_el[pick] + rng.normal(scale=0.02, size=num_clusters)
        c_pow = rng.exponential(size=num_clusters)
        r_az = c_az[:, None] + rng.laplace(scale=np.deg2rad(2.0), size=(num_clusters, rays))
        r_el = c_el[:, None] + rng.laplace(scale=np.deg2rad(1.0), size=(num_clusters, rays))
        r_amp = np.sqrt(np.repeat(c_pow[:, None] / rays, rays, axis=1))
        r_ph = np.exp(2j * np.pi * rng.uniform(size=(num_clusters, rays)))
        coef = (r_amp * r_ph).ravel()
        coef /= np.linalg.norm(coef)
        scattered = coef @ _upa_response(r_az.ravel(), r_el.ravel(), site.rows, site.cols)
        if los[i]:
            k = 10 ** (9.0 / 10.0)
            direct = np.exp(2j * np.pi * rng.uniform()) * _upa_response(az[i : i + 1], el[i : i + 1], site.rows, site.cols)[0]
            hi = np.sqrt(k / (k + 1)) * direct + np.sqrt(1 / (k + 1)) * scattered
        else:
            hi = scattered
        h[i] = hi * 10 ** (gain_db[i] / 20.0)
    positions = np.stack([d2 * np.cos(az), d2 * np.sin(az), np.full(p, site.ue_height_m)], axis=1)
    meta = {
        "generator": "mimofm.channels.synthetic (clustered geometric stand-in, not ray tracing)",
        "site": {k: getattr(site, k) for k in site.__dataclass_fields__},
        "array": f"{site.rows}x{site.cols} UPA, half-wavelength",
        "frequency_hz": site.fc_hz,
    }
    return ChannelSet(
        name=site.name,
        h=torch.from_numpy(h.astype(np.complex64)),
        los=torch.from_numpy(los),
        positions=torch.from_numpy(positions),
        meta=meta,
    )
