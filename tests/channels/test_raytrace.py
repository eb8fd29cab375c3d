"""Ray tracing for real, at a budget of seconds: a few UEs, low depth, few rays."""

import numpy as np
import pytest
import torch

from mimofm.channels.catalog import get_site
from mimofm.channels.io import load_channels
from mimofm.channels.raytrace import RTSettings, SiteSpec, SiteTracer, ensure_llvm, iter_site_chunks
from mimofm.channels.store import PartialSite
from mimofm.core.validation import MimofmInputError

try:
    ensure_llvm()
except MimofmInputError as e:  # pragma: no cover - CI installs libllvm19 via make bootstrap
    pytest.skip(str(e), allow_module_level=True)

TINY = RTSettings(max_depth=1, samples_per_src=20_000, chunk=6)


@pytest.fixture(scope="module")
def tracer():
    return SiteTracer(get_site("canyon"), TINY)


def test_site_generation_end_to_end(tmp_path):
    from mimofm.channels.generate import generate_site_file

    path, _ = generate_site_file(get_site("canyon"), tmp_path, 12, seed=0, settings=TINY)
    cs = load_channels(path)
    assert cs.h.shape == (12, 64) and cs.h.dtype == torch.complex64
    assert bool(torch.isfinite(cs.h).all()) and bool((cs.h.abs().amax(1) > 0).all())
    gains_db = 10 * torch.log10(cs.h.abs().square().sum(1))
    assert float(gains_db.max()) < 0 and float(gains_db.min()) > -200  # raw path gains
    d = np.hypot(*(cs.positions[:, :2].numpy() - np.array(cs.meta["bs_position_m"][:2])).T)
    assert d.min() >= 10.0 and d.max() <= 90.0
    assert cs.meta["scene"] == "simple_street_canyon" and cs.meta["settings"]["max_depth"] == 1
    assert not list(tmp_path.glob("*partial*"))


def test_same_seed_same_channels_and_resume(tmp_path, tracer):
    """Chunk i depends only on (seed, i): an interrupted generation resumes to the same file."""
    full = list(iter_site_chunks(tracer, 12, seed=3))
    again = list(iter_site_chunks(tracer, 12, seed=3))
    for a, b in zip(full, again):  # Sionna RT repeats itself to float32 round-off, not bit for bit
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-12)
        np.testing.assert_array_equal(a[3], b[3])  # the same positions
    # crash after the first chunk, then resume
    ps = PartialSite(tmp_path / "s.h5", name="s", num_bs_ant=64, meta={"k": 1})
    _, h, los, pts = full[0]
    ps.append(h, los=los, positions=pts)
    del ps
    assert not (tmp_path / "s.h5").exists()
    ps = PartialSite(tmp_path / "s.h5", name="s", num_bs_ant=64, meta={"k": 1})
    assert ps.chunks_done == 1
    for _, h, los, pts in iter_site_chunks(tracer, 12, seed=3, start_chunk=ps.chunks_done):
        ps.append(h, los=los, positions=pts)
    cs = load_channels(ps.finalize())
    np.testing.assert_allclose(cs.h.numpy(), np.concatenate([c[1] for c in full]), rtol=1e-5, atol=1e-12)
    np.testing.assert_array_equal(cs.positions.numpy(), np.concatenate([c[3] for c in full]))


def test_geometry_los_flag_and_outdoor_positions(tracer):
    rng = np.random.default_rng(0)
    pts = tracer.candidates(50, rng)
    assert len(pts) > 10
    ok, ground = tracer.outdoors(pts[:, 0], pts[:, 1])
    assert ok.all() and np.allclose(pts[:, 2], ground + 1.5)
    bs = tracer.bs_position
    assert not tracer.line_of_sight(np.array([[bs[0] + 20.0, bs[1], -50.0]]))[0]  # under the ground


def test_line_of_sight_channel_follows_friis():
    """LOS-only tracing of a UE in line of sight: every antenna sees the free-space gain (λ/4πd)²."""
    t = SiteTracer(get_site("canyon"), RTSettings(max_depth=0, samples_per_src=20_000))
    pts = t.candidates(200, np.random.default_rng(1))
    los = t.line_of_sight(pts)
    assert los.any() and (~los).any()
    p = pts[los][:3]
    h, flags = t.trace(p, seed=0)
    assert flags.all()
    d = np.linalg.norm(p - t.bs_position, axis=1)
    lam = 299_792_458.0 / t.settings.frequency_hz
    friis = (lam / (4 * np.pi * d)) ** 2
    np.testing.assert_allclose(np.abs(h) ** 2, np.broadcast_to(friis[:, None], h.shape), rtol=0.05)
    h_nlos, _ = t.trace(pts[~los][:3], seed=0)
    assert np.abs(h_nlos).max() == 0  # no path at depth 0 without line of sight


def test_bad_site_spec():
    with pytest.raises(MimofmInputError, match="unknown scene"):
        SiteTracer(SiteSpec("x", "atlantis", (0.0, 0.0)), TINY)
    with pytest.raises(MimofmInputError, match="max_depth"):
        RTSettings(max_depth=11).validate()
