"""Site files: roundtrip, checksum, tamper detection, resumable generation."""

import hashlib
import json

import h5py
import numpy as np
import pytest
import torch

from mimofm.channels.io import load_channels, site_info
from mimofm.channels.store import (
    SCHEMA_VERSION,
    PartialSite,
    canonical_json,
    is_site_file,
    partial_path,
    read_site,
    site_checksum,
    write_site,
)
from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError


def _cs(n=24, a=8, seed=0, name="site-a"):
    rng = np.random.default_rng(seed)
    gain = 10 ** (rng.uniform(-12, -8, size=(n, 1)) / 2)  # raw gains with path loss
    h = ((rng.normal(size=(n, a)) + 1j * rng.normal(size=(n, a))) * gain).astype(np.complex64)
    los = rng.random(n) < 0.4
    pos = rng.uniform(-100, 100, size=(n, 3))
    meta = {"scene": "toy", "fc_hz": 3.5e9, "bs": {"position": [0, 0, 25], "array": [4, 2]}, "seed": seed}
    return ChannelSet(name, torch.from_numpy(h), torch.from_numpy(los), torch.from_numpy(pos), meta)


def _same(a: ChannelSet, b: ChannelSet) -> None:
    assert a.name == b.name and a.meta == b.meta
    assert torch.equal(a.h, b.h)
    for x, y in ((a.los, b.los), (a.positions, b.positions), (a.split, b.split)):
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.equal(x, y)


def test_roundtrip_schema_and_checksum(tmp_path):
    cs = _cs()
    split = np.arange(cs.num_positions) % 3
    p = write_site(tmp_path / "a.h5", cs, split=split)
    assert [q.name for q in tmp_path.iterdir()] == ["a.h5"]  # no temp file left behind
    back = read_site(p)
    _same(
        back,
        ChannelSet(cs.name, cs.h, cs.los, cs.positions, cs.meta, torch.from_numpy(split.astype(np.int8))),
    )
    assert back.h.dtype == torch.complex64 and back.split.dtype == torch.int8
    with h5py.File(p, "r") as f:
        assert set(f.keys()) == {"H", "los", "positions", "split"}
        assert int(f.attrs["mimofm_site_schema"]) == SCHEMA_VERSION == 1
        assert f["H"].dtype == np.complex64 and f["los"].dtype == bool and f["positions"].dtype == np.float64
        assert f["split"].dtype == np.int8
        stored = f.attrs["checksum_sha256"]
        assert json.loads(f.attrs["meta_json"]) == cs.meta
        assert f.attrs["created_utc"].endswith("+00:00")
    # the documented checksum definition, recomputed independently
    d = hashlib.sha256(b"mimofm-site-v1\n")
    for key, arr in (
        ("H", cs.h.numpy()),
        ("los", cs.los.numpy()),
        ("positions", cs.positions.numpy()),
        ("split", split.astype(np.int8)),
    ):
        d.update(f"{key} {arr.dtype.str} {json.dumps(list(arr.shape), separators=(',', ':'))}\n".encode())
        d.update(np.ascontiguousarray(arr).tobytes())
    d.update(json.dumps({"meta": cs.meta, "name": cs.name}, sort_keys=True, separators=(",", ":")).encode())
    assert (
        stored
        == d.hexdigest()
        == site_checksum(
            cs.name,
            {"H": cs.h.numpy(), "los": cs.los.numpy(), "positions": cs.positions.numpy(), "split": split},
            cs.meta,
        )
    )
    # load_channels dispatches site files to read_site
    _same(load_channels(p), back)
    assert is_site_file(p) and load_channels(p, name="renamed").name == "renamed"


def test_minimal_site_and_conversions(tmp_path):
    """Only H is required; complex128 is stored as complex64; 2-D positions get z = 0."""
    rng = np.random.default_rng(1)
    h = rng.normal(size=(5, 3)) + 1j * rng.normal(size=(5, 3))
    write_site(tmp_path / "m.h5", ChannelSet("m", torch.from_numpy(h)))
    back = read_site(tmp_path / "m.h5")
    assert back.los is None and back.positions is None and back.split is None and back.meta == {}
    torch.testing.assert_close(back.h, torch.from_numpy(h.astype(np.complex64)))
    cs = ChannelSet("p", torch.from_numpy(h), positions=torch.ones(5, 2, dtype=torch.float64))
    pos = read_site(write_site(tmp_path / "p.h5", cs)).positions
    assert pos.shape == (5, 3) and bool((pos[:, 2] == 0).all())


def test_checksum_is_deterministic(tmp_path):
    cs = _cs()
    write_site(tmp_path / "a.h5", cs)
    write_site(tmp_path / "b.h5", cs)
    assert site_info(tmp_path / "a.h5")["checksum_sha256"] == site_info(tmp_path / "b.h5")["checksum_sha256"]


@pytest.mark.parametrize(
    "cs_kw, match",
    [
        ({"h": torch.ones(3, 2)}, "complex"),
        ({"h": torch.zeros(3, 2, dtype=torch.complex64)}, "all-zero"),
        ({"h": torch.full((3, 2), float("nan"), dtype=torch.complex64)}, "NaN"),
        ({"h": torch.full((3, 2), 1e300, dtype=torch.complex128)}, "NaN/Inf"),  # overflows complex64
        ({"los": torch.ones(4, dtype=torch.bool)}, "`los`"),
        ({"positions": torch.ones(3, 4, dtype=torch.float64)}, "`positions`"),
        ({"split": torch.tensor([0, 1, 3])}, "`split`"),
        ({"meta": {"x": float("nan")}}, "JSON"),
        ({"meta": {"x": object()}}, "JSON"),
        ({"name": ""}, "name"),
    ],
)
def test_write_rejects_bad_input(tmp_path, cs_kw, match):
    kw = {"name": "s", "h": torch.ones(3, 2, dtype=torch.complex64), **cs_kw}
    with pytest.raises(MimofmInputError, match=match):
        write_site(tmp_path / "s.h5", ChannelSet(**kw))
    assert not list(tmp_path.iterdir())
    with pytest.raises(MimofmInputError, match=r"\.h5 or \.hdf5"):
        write_site(tmp_path / "s.npz", ChannelSet("s", torch.ones(3, 2, dtype=torch.complex64)))


# --- tampering: every change is rejected on load with a message naming the file and the problem ---


def _flip_h(f):
    h = f["H"][()]
    # [P, N] complex64 -> [P, 8N] bytes
    raw = h.view(np.uint8).copy()
    raw[5] ^= 0x01  # one bit of one byte
    # [P, 8N] bytes -> [P, N] complex64
    f["H"][...] = raw.view(np.complex64).reshape(h.shape)


def _retype_h(f):
    h = f["H"][()]
    del f["H"]
    f.create_dataset("H", data=h.astype(np.complex128))


def _vlen_los(f):
    del f["los"]
    f.create_dataset("los", data=np.array(["a"] * 24, dtype=object), dtype=h5py.string_dtype())


def _nan_h(f):
    h = f["H"][()]
    h[3, 1] = np.nan
    f["H"][...] = h


def _zero_row(f):
    h = f["H"][()]
    h[2] = 0
    f["H"][...] = h


def _short_los(f):
    los = f["los"][()]
    del f["los"]
    f["los"] = los[:-1]


@pytest.mark.parametrize(
    "tamper, match",
    [
        (_flip_h, "checksum mismatch"),
        (lambda f: f.attrs.__setitem__("name", "other"), "checksum mismatch"),
        (lambda f: f.attrs.__setitem__("meta_json", json.dumps({"scene": "edited"})), "checksum mismatch"),
        (lambda f: f.attrs.__setitem__("checksum_sha256", "0" * 64), "checksum mismatch"),
        (lambda f: f.attrs.__setitem__("meta_json", "{not json"), "not valid JSON"),
        (lambda f: f.attrs.__setitem__("mimofm_site_schema", 2), "schema version 2"),
        (lambda f: f.attrs.__delitem__("checksum_sha256"), "missing root attribute.*checksum_sha256"),
        (lambda f: f.attrs.__setitem__("extra", 1), "unexpected root attribute.*extra"),
        (lambda f: f.create_dataset("extra", data=np.zeros(3)), "unexpected member `extra`"),
        (lambda f: f.create_group("H2"), "unexpected member `H2`"),
        (_retype_h, "`H` must have dtype complex64, got complex128"),
        (_vlen_los, "`los` must have dtype bool"),
        (_short_los, r"`los` must have shape \[24\]"),
        (_nan_h, "NaN/Inf"),
        (_zero_row, "all-zero rows"),
    ],
)
def test_tampered_files_rejected(tmp_path, tamper, match):
    p = write_site(tmp_path / "t.h5", _cs())
    with h5py.File(p, "r+") as f:
        tamper(f)
    with pytest.raises(MimofmInputError, match=match) as e:
        read_site(p)
    assert str(p) in str(e.value)
    with pytest.raises(MimofmInputError, match=match):
        load_channels(p)


def test_flipped_byte_on_disk_rejected(tmp_path):
    """One byte of H's raw storage flipped outside h5py (bit rot) is caught by the checksum."""
    cs = _cs()
    p = write_site(tmp_path / "t.h5", cs)
    with h5py.File(p, "r") as f:
        offset = f["H"].id.get_offset()
    raw = bytearray(p.read_bytes())
    raw[offset + 13] ^= 0x10
    p.write_bytes(bytes(raw))
    with pytest.raises(MimofmInputError, match="checksum mismatch"):
        read_site(p)
    info = site_info(p)  # info reports rather than raises
    assert info["checksum_ok"] is False


def test_truncated_file_rejected(tmp_path):
    p = write_site(tmp_path / "t.h5", _cs())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(MimofmInputError, match="truncated or corrupt") as e:
        read_site(p)
    assert str(p) in str(e.value)
    with pytest.raises(MimofmInputError, match="truncated or corrupt"):
        load_channels(p)
    p.write_bytes(data[:100])
    with pytest.raises(MimofmInputError, match=r"truncated or corrupt|not an HDF5"):
        load_channels(p)


def test_site_info(tmp_path):
    cs = _cs()
    p = write_site(tmp_path / "a.h5", cs, split=np.r_[np.zeros(20), np.ones(2), 2 * np.ones(2)].astype(int))
    info = site_info(p)
    g = (np.abs(cs.h.numpy().astype(np.complex128)) ** 2).sum(1)
    assert info["name"] == "site-a" and info["schema"] == 1 and info["format"] == "mimofm-site"
    assert (info["num_positions"], info["num_bs_ant"]) == (24, 8)
    assert info["los_ratio"] == pytest.approx(float(cs.los.float().mean()))
    # lower median for an even count, as torch.median and mimofm.core.linkbudget.median_gain
    assert info["median_gain_db"] == pytest.approx(10 * np.log10(np.sort(g)[(g.size - 1) // 2]))
    assert info["split_counts"] == {"train": 20, "val": 2, "test": 2}
    assert info["meta"] == cs.meta and info["checksum_ok"] is True
    assert info["file_size_bytes"] == p.stat().st_size
    json.dumps(info)  # JSON-able
    np.savez(tmp_path / "b.npz", H=cs.h.numpy())
    info = site_info(tmp_path / "b.npz")
    assert info["format"] == "npz" and info["schema"] is None and info["checksum_ok"] is None
    assert info["los_ratio"] is None and info["split_counts"] is None


# --- resumable generation -----------------------------------------------------------------------


def _chunks(cs: ChannelSet, k: int):
    for idx in np.array_split(np.arange(cs.num_positions), k):
        yield cs.h[idx], cs.los[idx], cs.positions[idx]


def test_partial_resume_equals_uninterrupted_run(tmp_path):
    cs = _cs(n=30)
    chunks = list(_chunks(cs, 4))
    split = np.arange(30) % 3

    ref = PartialSite(tmp_path / "ref.h5", name=cs.name, num_bs_ant=8, meta=cs.meta)
    for h, los, pos in chunks:
        ref.append(h, los=los, positions=pos)
    ref.finalize(split=split)

    final = tmp_path / "run.h5"
    ps = PartialSite(final, name=cs.name, num_bs_ant=8, meta=cs.meta)
    assert ps.chunks_done == 0 and ps.work_path == partial_path(final) == tmp_path / "run.h5.partial.h5"
    for h, los, pos in chunks[:2]:
        ps.append(h, los=los, positions=pos)
        assert not final.exists()
    del ps  # "crash": dropped without finalize

    assert not final.exists() and partial_path(final).exists()
    with pytest.raises(MimofmInputError, match="unfinished partial"):
        load_channels(partial_path(final))  # a work file is never mistaken for a plain HDF5 import
    ps = PartialSite(final, name=cs.name, num_bs_ant=8, meta=cs.meta)
    assert ps.chunks_done == 2 and ps.num_positions == sum(c[0].shape[0] for c in chunks[:2])
    for h, los, pos in chunks[ps.chunks_done :]:
        ps.append(h, los=los, positions=pos)
        assert not final.exists()
    assert ps.finalize(split=split) == final
    assert final.exists() and not partial_path(final).exists()

    a, b = read_site(final), read_site(tmp_path / "ref.h5")
    _same(a, b)
    _same(
        a, ChannelSet(cs.name, cs.h, cs.los, cs.positions, cs.meta, torch.from_numpy(split.astype(np.int8)))
    )
    assert site_info(final)["checksum_sha256"] == site_info(tmp_path / "ref.h5")["checksum_sha256"]


def test_partial_drops_uncommitted_rows(tmp_path):
    """A crash after writing a chunk's rows but before committing its counter: the rows are dropped."""
    cs = _cs(n=20)
    chunks = list(_chunks(cs, 4))
    final = tmp_path / "s.h5"
    ps = PartialSite(final, name=cs.name, num_bs_ant=8, meta=cs.meta)
    ps.append(*chunks[0][:1], los=chunks[0][1], positions=chunks[0][2])
    with h5py.File(ps.work_path, "r+") as f:  # half an append: rows written, counters not
        for key in ("H", "los", "positions"):
            f[key].resize(f[key].shape[0] + 3, axis=0)
    ps = PartialSite(final, name=cs.name, num_bs_ant=8, meta=cs.meta)
    assert ps.chunks_done == 1 and ps.num_positions == 5
    for h, los, pos in chunks[1:]:
        ps.append(h, los=los, positions=pos)
    _same(read_site(ps.finalize()), cs)


def test_partial_guards(tmp_path):
    cs = _cs(n=8)
    final = tmp_path / "g.h5"
    ps = PartialSite(final, name="g", num_bs_ant=8, meta={"seed": 1})
    with pytest.raises(MimofmInputError, match="no positions"):
        ps.finalize()
    with pytest.raises(MimofmInputError, match="4 antennas"):
        ps.append(cs.h[:, :4])
    ps.append(cs.h[:4], los=cs.los[:4])
    with pytest.raises(MimofmInputError, match="same arrays"):
        ps.append(cs.h[4:])
    with pytest.raises(MimofmInputError, match="different meta"):
        PartialSite(final, name="g", num_bs_ant=8, meta={"seed": 2})
    with pytest.raises(MimofmInputError, match="different name, num_bs_ant"):
        PartialSite(final, name="h", num_bs_ant=4, meta={"seed": 1})
    ps.append(cs.h[4:], los=cs.los[4:])
    ps.finalize()
    with pytest.raises(MimofmInputError, match="already exists"):
        PartialSite(final, name="g", num_bs_ant=8, meta={"seed": 1})
    ps2 = PartialSite(final, name="g", num_bs_ant=8, meta={"seed": 1}, overwrite=True)
    ps2.discard()
    assert not ps2.work_path.exists()
    # a damaged work file gives a clear instruction
    ps3 = PartialSite(tmp_path / "d.h5", name="d", num_bs_ant=8)
    ps3.work_path.write_bytes(ps3.work_path.read_bytes()[:200])
    with pytest.raises(MimofmInputError, match="delete it"):
        PartialSite(tmp_path / "d.h5", name="d", num_bs_ant=8)


def test_canonical_json_is_order_free():
    assert (
        canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    )
