"""Bounded resources on hostile and huge files (issue 27): refused before reading, links out refused, blocks
give the same site as a whole read, the memory budget, atomic output under kill -9, --force over a symlink."""

import json
import os
import random
import signal
import time

import h5py
import numpy as np
import pytest
import scipy.io

import mimofm.channels.io as chio
from mimofm.channels import limits
from mimofm.channels.bundled import bundled_dir
from mimofm.channels.io import import_site, load_channels, open_channels, site_info
from mimofm.channels.store import read_site
from mimofm.core.validation import MimofmInputError

from .hostile import CASES, site_external_link, write_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_refused_before_reading(case, tmp_path):
    path = write_case(case, tmp_path)
    _, error, text = CASES[case]
    out = tmp_path / "out.h5"
    t0 = time.perf_counter()
    with pytest.raises(MimofmInputError) as e:
        import_site(path, out)
    assert time.perf_counter() - t0 < 5
    assert type(e.value).__name__ == error, str(e.value)
    assert text in str(e.value) and str(path) in str(e.value)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(type(e.value)):
        load_channels(path)


def test_site_file_with_external_h_refused(tmp_path):
    p = site_external_link(tmp_path / "site.h5", bundled_dir() / "etoile-open.h5")
    with pytest.raises(limits.ExternalDataError, match="external link"):
        read_site(p)
    with pytest.raises(limits.ExternalDataError):
        site_info(p)


def test_var_path_through_an_external_group_refused(tmp_path):
    from .hostile import hdf5_external_link

    p = hdf5_external_link(tmp_path / "g.h5", via="group")
    with pytest.raises(limits.ExternalDataError, match="`run` is an HDF5 external link"):
        load_channels(p, var="run/H")


def _h(n, nt, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, nt)) + 1j * rng.normal(size=(n, nt))).astype(np.complex64)


def _write(kind, p, a, **extra):
    if kind == "npz":
        np.savez_compressed(p, **{"H": a}, **extra)
    elif kind == "npy":
        np.save(p, a)
    elif kind == "hdf5":
        with h5py.File(p, "w") as f:
            f.create_dataset("H", data=a, chunks=True, compression="gzip")
            for k, v in extra.items():
                f[k] = v
    elif kind == "mat73":
        with h5py.File(p, "w", userblock_size=512) as f:
            f["H"] = np.transpose(a)  # MATLAB stores column-major: axes reversed
            for k, v in extra.items():
                f[k] = np.transpose(v)  # as above
        with open(p, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file")
    return p


@pytest.mark.parametrize(
    "kind, suffix", [("npz", ".npz"), ("npy", ".npy"), ("hdf5", ".h5"), ("mat73", ".mat")]
)
@pytest.mark.parametrize(
    "shape, options",
    [
        ((300, 8), {}),
        ((30, 1, 8, 6), {"subcarrier": "all"}),  # DeepMIMO: every subcarrier a position
        ((30, 1, 8, 6), {}),  # DeepMIMO: subcarrier mean
        ((8, 300), {"layout": "ntx,n"}),  # transposed: positions on axis 1
    ],
)
def test_blocks_give_the_same_site_as_a_whole_read(tmp_path, monkeypatch, kind, suffix, shape, options):
    rng = np.random.default_rng(7)
    a = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    src = _write(kind, tmp_path / f"src{suffix}", a)
    whole = load_channels(src, **options)
    monkeypatch.setattr(chio, "BLOCK_BYTES", 1000)  # many blocks of a few entries
    seen = []
    stream = import_site(
        src,
        tmp_path / "s.h5",
        options=chio.ImportOptions(**options),
        progress=lambda done, total: seen.append((done, total)),
    )
    site = read_site(tmp_path / "s.h5")
    np.testing.assert_array_equal(site.h.numpy(), whole.h.numpy())
    assert stream.read_as.line() == chio.read_channels(src, None, chio.ImportOptions(**options))[1].line()
    streams = kind in ("hdf5", "mat73") or options.get("layout") != "ntx,n"
    assert len(seen) > 3 if streams else len(seen) >= 1
    assert seen[-1] == (whole.num_positions, whole.num_positions)
    info = site_info(src, chio.ImportOptions(**options))
    g = (whole.h.abs() ** 2).sum(-1).double()
    assert info["median_gain_db"] == pytest.approx(10 * np.log10(g.median().item()))


def test_invalid_row_in_a_late_block_named_and_nothing_written(tmp_path, monkeypatch):
    h = _h(400, 8)
    h[321] = 0
    np.save(tmp_path / "z.npy", h)
    monkeypatch.setattr(chio, "BLOCK_BYTES", 64 * 20)  # 20 rows per block
    out = tmp_path / "out.h5"
    with pytest.raises(MimofmInputError, match=r"at least 1 all-zero rows \(first: 321\)"):
        import_site(tmp_path / "z.npy", out)
    assert not out.exists()
    h[321] = np.nan
    np.save(tmp_path / "z.npy", h)
    with pytest.raises(MimofmInputError, match=r"NaN/Inf entries in 1 positions \(first: 321\)"):
        import_site(tmp_path / "z.npy", out)
    h[321] = 1e-16  # -301 dB: the gain floor needs every row: refused after the last block, nothing written
    np.save(tmp_path / "z.npy", h)
    with pytest.raises(MimofmInputError, match=r"1 positions with a gain below -300 dB \(first: 321"):
        import_site(tmp_path / "z.npy", out)
    assert not out.exists()


def test_memory_budget(tmp_path, monkeypatch):
    np.save(tmp_path / "h.npy", _h(40_000, 16))  # 5 MiB
    with pytest.raises(limits.MemoryBudgetError, match=r"more than the memory budget of 2\.0 MiB"):
        load_channels(tmp_path / "h.npy", max_memory="2M")
    monkeypatch.setattr(chio, "BLOCK_BYTES", 64 * 1024)
    stream = import_site(tmp_path / "h.npy", tmp_path / "s.h5", options=chio.ImportOptions(max_memory="2M"))
    assert stream.shape == (40_000, 16) and read_site(tmp_path / "s.h5").num_positions == 40_000
    # a transposed .npy cannot stream (positions are not its first axis): read whole, refused by the budget
    np.save(tmp_path / "t.npy", np.ascontiguousarray(_h(40_000, 16).T))
    with pytest.raises(limits.MemoryBudgetError, match="is read whole"):
        import_site(
            tmp_path / "t.npy", tmp_path / "t.h5", options=chio.ImportOptions(max_memory="2M", layout="ntx,n")
        )
    with pytest.raises(MimofmInputError, match="--max-memory"):
        limits.parse_memory("lots")
    assert limits.parse_memory("1.5G") == 3 * 2**29 and limits.parse_memory(None) > 0


def test_mat5_declared_size_checked_before_reading(tmp_path):
    scipy.io.savemat(tmp_path / "h.mat", {"H": _h(20_000, 16)})
    with pytest.raises(limits.MemoryBudgetError, match="`H`"):
        load_channels(tmp_path / "h.mat", max_memory="1M")
    assert load_channels(tmp_path / "h.mat").num_positions == 20_000


def test_kill_9_during_import_leaves_the_old_or_the_new_site(tmp_path):
    np.save(tmp_path / "h.npy", _h(20_000, 32, seed=3))  # 5 MiB: an import takes ~0.1 s
    out = tmp_path / "site.h5"
    import_site(tmp_path / "h.npy", out, name="old")
    old = read_site(out)
    rng = random.Random(0)
    names = set()
    for i in range(20):
        pid = os.fork()
        if pid == 0:  # the child imports again and again until it is killed
            try:
                while True:
                    import_site(tmp_path / "h.npy", out, name=f"new{i}")
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        site = read_site(out)  # checksum verified: complete, never half-written
        assert site.name == "old" or site.name.startswith("new")
        np.testing.assert_array_equal(site.h.numpy(), old.h.numpy())
        names.add(site.name)
    assert len(names) > 1  # some kills landed after a completed import
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("h.npy", "site.h5")]
    assert all(n.startswith(".site.h5.") and n.endswith(".tmp") for n in leftovers)
    # each import sweeps what killed writers left: at most the last child's temporary file remains
    assert len(leftovers) <= 1
    import_site(tmp_path / "h.npy", out, name="final")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npy", "site.h5"]


def test_no_overwrite_refuses_a_file_that_appears(tmp_path):
    np.save(tmp_path / "h.npy", _h(100, 4))
    out = tmp_path / "s.h5"
    import_site(tmp_path / "h.npy", out, name="first", overwrite=False)
    with pytest.raises(MimofmInputError, match="already exists"):
        import_site(tmp_path / "h.npy", out, name="second", overwrite=False)
    assert read_site(out).name == "first"


def test_streams_keep_los_positions_split(tmp_path, monkeypatch):
    h = _h(500, 8)
    los = np.arange(500) % 2 == 0
    pos = np.random.default_rng(0).normal(size=(500, 3))
    split = (np.arange(500) % 3).astype(np.int8)
    np.savez(tmp_path / "a.npz", H=h, los=los, positions=pos, split=split)
    monkeypatch.setattr(chio, "BLOCK_BYTES", 640)
    with open_channels(tmp_path / "a.npz") as s:
        cs = s.read_all()
    np.testing.assert_array_equal(cs.h.numpy(), h)
    import_site(tmp_path / "a.npz", tmp_path / "s.h5")
    site = read_site(tmp_path / "s.h5")
    np.testing.assert_array_equal(site.los.numpy(), los)
    np.testing.assert_array_equal(site.split.numpy(), split)
    np.testing.assert_allclose(site.positions.numpy(), pos)


def test_a_write_sweeps_dead_writers_temporary_files_only(tmp_path):
    import socket
    import subprocess

    from mimofm._io import write_json

    host = socket.gethostname()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".r.json.{host}-{dead.pid}.abc.tmp"
    live = tmp_path / f".r.json.{host}-{os.getpid()}.def.tmp"
    other_host = tmp_path / f".r.json.elsewhere-{dead.pid}.ghi.tmp"
    for p in (stale, live, other_host):
        p.write_text("partial")
    write_json(tmp_path / "r.json", {"a": 1})
    assert not stale.exists() and live.exists() and other_host.exists()
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}
